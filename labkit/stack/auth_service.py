"""The auth service component: register/login over HTTP, served by waitress."""

from __future__ import annotations

from labkit.stack.component import PythonHttpService, register


@register
class AuthService(PythonHttpService):
    """Flask + flask-jwt-extended; logins get NATS creds from the NSC service."""

    name = "auth"
    description = "auth service (/register, /login)"
    requires = ("nats", "nsc")
    module = "labkit.auth.app"

    def address(self) -> tuple[str, int]:
        return self.settings.auth.host, self.settings.auth.port
