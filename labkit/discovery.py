"""Find the stack's endpoints: settings first, then the running stack's state file."""

from __future__ import annotations

from labkit.settings import Settings
from labkit.stack.state import component_record


def nats_url(settings: Settings | None = None) -> str:
    """The NATS server clients should connect to."""
    settings = settings or Settings()
    if settings.nats.url:
        return settings.nats.url
    return str(component_record("nats", settings)["url"])


def nsc_service(settings: Settings | None = None) -> tuple[str, str]:
    """The NSC service's (url, bearer token)."""
    settings = settings or Settings()
    token = settings.paths.nsc_token_file.read_text().strip()
    if settings.nsc.service_url:
        return settings.nsc.service_url, token
    return str(component_record("nsc", settings)["url"]), token


def auth_url(settings: Settings | None = None) -> str:
    """The auth service's base URL."""
    settings = settings or Settings()
    if settings.auth.url:
        return settings.auth.url
    return str(component_record("auth", settings)["url"])
