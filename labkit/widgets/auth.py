"""A login panel for the auth service: register, log in, log out, see who you are on NATS.

Everything a click does is also a method (`register`, `login`, `logout`), and what
the panel shows is readable (`login_result`, `identity`, `messages`), so a later
notebook cell can drive the panel and assert on it.

Errors: a method raises `AuthRequestFailed` (or `NotLoggedIn`) after writing the
error to the message area; a click only writes it there, since a click has no
caller to raise to. Enter in the email or password box logs in. A click in the
browser runs on the thread that runs the notebook's cells (`CellLoop`).
"""

from __future__ import annotations

import contextlib
import html
from collections.abc import Callable
from typing import Any

import ipywidgets as widgets

from labkit.auth.client import AuthClient, AuthRequestFailed, Login
from labkit.errors import LabkitError
from labkit.widgets.base import LogView
from labkit.widgets.callbacks import CellLoop, NoCellLoop, from_the_page, on_enter
from labkit.widgets.typed import TypedText

IDENTITY_LABELS = {
    "user_id": "user id",
    "email": "email",
    "publish": "may publish to",
    "subscribe": "may subscribe to",
    "creds_expire": "NATS creds expire",
}


class NotLoggedIn(LabkitError):
    """Log out was asked for while nobody is logged in on this panel."""


class MissingField(LabkitError):
    """A button was clicked with the email or password box empty."""


class AuthPanel:
    """Email and password fields, Register / Log in / Log out buttons, and who you are.

    The panel shows one login at a time, the latest. Logging in another user does not
    log out the previous one: that login (and its NATS creds) stays valid until
    `AuthClient.logout` is called with it. The password field is emptied after every
    click, so the password does not linger in the widget (or in saved widget state).
    """

    def __init__(self, client: AuthClient | None = None) -> None:
        self.client = client or AuthClient()
        self.login_result: Login | None = None
        self.email = widgets.Text(description="email", placeholder="you@example.com")
        self.password = widgets.Password(description="password")
        self.buttons: dict[str, Any] = {
            "register": widgets.Button(description="Register", icon="user-plus"),
            "login": widgets.Button(description="Log in", button_style="primary", icon="sign-in"),
            "logout": widgets.Button(description="Log out", icon="sign-out"),
        }
        self._cell_loop = CellLoop()
        self._typed = (TypedText(self.email), TypedText(self.password))
        self.buttons["register"].on_click(self._on_click(self._register_from_fields))
        self.buttons["login"].on_click(self._on_click(self._login_from_fields))
        self.buttons["logout"].on_click(self._on_click(self.logout))
        for box in (self.email, self.password):
            on_enter(box, lambda: self._on_click(self._login_from_fields)(None), self._cell_loop)
        self.identity_view = widgets.HTML()
        # `out` keeps the lines (what `messages` reads); `log_area.view` shows the newest in view.
        self.log_area = LogView(max_height="10em")
        self.out = self.log_area.out
        self.widget = widgets.VBox(
            [
                widgets.HTML("<b>labkit auth service</b>"),
                self.email,
                self.password,
                widgets.HBox(list(self.buttons.values())),
                self.identity_view,
                self.log_area.view,
            ]
        )
        self._show()

    # what a notebook cell reads
    @property
    def identity(self) -> dict[str, str]:
        """What the identity panel shows, as text; empty while nobody is logged in."""
        login = self.login_result
        if login is None:
            return {}
        expires = login.nats.expires_at
        return {
            "user_id": login.user_id,
            "email": login.email,
            "publish": ", ".join(login.nats.publish),
            "subscribe": ", ".join(login.nats.subscribe),
            "creds_expire": expires.strftime("%Y-%m-%d %H:%M %Z") if expires else "never",
        }

    @property
    def messages(self) -> list[str]:
        """The lines written to the message area so far."""
        return self.log_area.lines

    # what a click does
    def register(self, email: str, password: str) -> dict[str, Any]:
        """Create an account; returns the service's answer `{id, email}`."""
        try:
            account = self.client.register(email, password)
        except AuthRequestFailed as exc:
            self._report_error(f"could not register {email}: {_explain(exc)}")
            raise
        self._say(f"registered {account['email']} (user id {account['id']}); now log in")
        return account

    def login(self, email: str, password: str) -> Login:
        """Log in; the panel then shows this user and their NATS permissions."""
        try:
            login = self.client.login(email, password)
        except AuthRequestFailed as exc:
            self._report_error(f"could not log in {email}: {_explain(exc)}")
            raise
        self.login_result = login
        self._show()
        self._say(f"logged in as {login.email} (user id {login.user_id})")
        return login

    def use(self, login: Login) -> None:
        """Show `login` (made here or elsewhere): Log out then acts on it."""
        self.login_result = login
        self._show()
        self._say(f"showing {login.email} (user id {login.user_id})")

    def logout(self) -> dict[str, Any]:
        """Log out the user shown: revokes their tokens and NATS creds (cuts connections)."""
        login = self.login_result
        if login is None:
            message = "nobody is logged in on this panel; log in first"
            self._report_error(message)
            raise NotLoggedIn(message)
        try:
            answer = self._logout(login)
        except AuthRequestFailed as exc:
            self._report_error(f"could not log out {login.email}: {_explain(exc)}")
            raise
        self.login_result = None
        self._show()
        revoked = "NATS creds revoked" if answer.get("nats_revoked") else "no NATS creds to revoke"
        self._say(f"logged out {login.email}; {revoked}")
        return answer

    # display
    def _repr_mimebundle_(self, **kwargs: Any) -> dict[str, Any]:
        bundle: dict[str, Any] = self.widget._repr_mimebundle_(**kwargs)
        bundle["text/plain"] = repr(self)
        return bundle

    def __repr__(self) -> str:
        login = self.login_result
        who = f"logged in as {login.email}" if login else "nobody logged in"
        return f"AuthPanel({who})"

    # internals
    def _logout(self, login: Login) -> dict[str, Any]:
        try:
            return self.client.logout(login)
        except AuthRequestFailed as exc:
            if exc.status != 401 or exc.error != "token_expired":
                raise
        # A panel left open past the access token's lifetime must still revoke the creds.
        return self.client.logout(self.client.refresh(login))

    def _register_from_fields(self) -> object:
        self._require_fields("register")
        return self.register(self.email.value.strip(), self.password.value)

    def _login_from_fields(self) -> object:
        self._require_fields("log in")
        return self.login(self.email.value.strip(), self.password.value)

    def _require_fields(self, action: str) -> None:
        missing = [
            name
            for name, box in (("email", self.email), ("password", self.password))
            if not box.value.strip()
        ]
        if missing:
            message = f"nothing sent: type {' and '.join(missing)} first, then {action}"
            self._report_error(message)
            raise MissingField(message)

    def _on_click(self, action: Callable[[], object]) -> Callable[[Any], None]:
        # The password is read now, on the click's own thread, before the box is emptied.
        def act(email: str, password: str) -> None:
            self.email.value, self.password.value = email, password
            try:
                # The error is already in the message area; a click has no caller to raise to.
                with contextlib.suppress(LabkitError):
                    action()
            finally:
                self.password.value = ""

        async def act_when_typed() -> None:
            # A click from the page may have overtaken the last letters typed.
            email, password = [await typed.settled() for typed in self._typed]
            act(email, password)

        def handle(_button: Any) -> None:
            if from_the_page():
                try:
                    self._cell_loop.submit(act_when_typed())
                    return
                except NoCellLoop:
                    pass  # (built in a script: nothing runs concurrently, read them now)
            email, password = self.email.value, self.password.value
            self._cell_loop.call(lambda: act(email, password))

        return handle

    def _show(self) -> None:
        self.buttons["logout"].disabled = self.login_result is None
        identity = self.identity
        if not identity:
            self.identity_view.value = "<i>nobody is logged in</i>"
            return
        rows = "".join(
            f"<tr><td style='padding-right:1em; vertical-align:top'>{label}</td>"
            f"<td>{_as_lines(identity[key])}</td></tr>"
            for key, label in IDENTITY_LABELS.items()
        )
        self.identity_view.value = f"<table>{rows}</table>"

    def _say(self, line: str) -> None:
        self.log_area.say(line)

    def _report_error(self, line: str) -> None:
        self.log_area.error(line)


def _explain(exc: AuthRequestFailed) -> str:
    return f"{exc.detail} ({exc.status} {exc.error})" if exc.detail else str(exc)


def _as_lines(value: str) -> str:
    """One `<code>` line per item of a ", "-joined list (subjects never contain ", ")."""
    return "<br>".join(f"<code>{html.escape(item)}</code>" for item in value.split(", "))
