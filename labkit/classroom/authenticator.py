"""JupyterHub's login for a class: the learner's labkit email and password.

The hub's form goes to the auth service's /login. The answer (tokens and NATS
credentials) is kept in the hub's encrypted auth_state and becomes the learner file at
each spawn. A session that ended at the auth service (logged out anywhere, revoked by
an instructor) is found at the next check: `refresh_user` asks for a new login, and
`pre_spawn_start` refuses to start a server with it. Logging out of the hub logs out
of labkit too, which revokes the learner's NATS credentials and cuts their connections.
"""

from __future__ import annotations

import asyncio
from typing import Any

from jupyterhub.auth import Authenticator
from jupyterhub.handlers.login import LogoutHandler
from tornado import web
from traitlets import Unicode

from labkit.classroom import auth_session
from labkit.classroom.auth_session import AuthServiceUnavailable, LoginRefused

# The spawner reads the live session from this attribute (set just before its start).
SESSION_ATTRIBUTE = "labkit_session"


class LabkitAuthenticator(Authenticator):  # type: ignore[misc]
    """Log learners in against the labkit auth service; instructors become hub admins."""

    # Not `login_url`: a trait of that name hides Authenticator.login_url() (every
    # /hub/login then fails with 500).
    auth_service_url = Unicode(help="the labkit auth service's base URL").tag(config=True)

    async def authenticate(
        self, handler: web.RequestHandler, data: dict[str, str]
    ) -> dict[str, Any] | None:
        email = (data.get("username") or "").strip().lower()
        password = data.get("password") or ""
        if not email or not password:
            return None
        try:
            result = await asyncio.to_thread(
                auth_session.log_in, self.auth_service_url, email, password
            )
        except AuthServiceUnavailable as exc:
            raise web.HTTPError(503, str(exc)) from None
        if isinstance(result, LoginRefused):
            self.log.warning("labkit login refused for %s: %s", email, result.error)
            return None
        return {
            "name": email,
            "admin": auth_session.is_instructor(result),
            "auth_state": result,
        }

    async def refresh_user(
        self, user: Any, handler: web.RequestHandler | None = None
    ) -> bool | dict[str, Any]:
        session = await user.get_auth_state()
        if not session or "answer" not in session:
            return False
        try:
            alive = await asyncio.to_thread(auth_session.live_session, session)
        except AuthServiceUnavailable as exc:
            # A blip of the auth service must not log the whole class out; a spawn
            # still checks (pre_spawn_start) and refuses until it answers.
            self.log.warning("cannot check %s's labkit session: %s", user.name, exc)
            return True
        if alive is None:
            self.log.info("%s's labkit session ended (logout or revocation)", user.name)
            if handler is not None and not hasattr(handler, "_token_authenticated"):
                # JupyterHub 6.1 reads this attribute, set only for token requests, when
                # a refresh fails: a cookie-authenticated API call (the spawn button)
                # would answer 500 instead of 403 without its default.
                setattr(handler, "_token_authenticated", False)  # noqa: B010
            return False
        return {"admin": auth_session.is_instructor(alive), "auth_state": alive}

    async def pre_spawn_start(self, user: Any, spawner: Any) -> None:
        session = await user.get_auth_state()
        if not session or "answer" not in session:
            raise web.HTTPError(403, "no labkit login is stored for you: log out and in again")
        try:
            alive = await asyncio.to_thread(auth_session.live_session, session)
        except AuthServiceUnavailable as exc:
            raise web.HTTPError(503, f"your server cannot start now: {exc}") from None
        if alive is None:
            raise web.HTTPError(
                403,
                "your labkit session has ended (you logged out, or your instructor "
                "revoked it): log out of the hub and log in again",
            )
        if alive != session:
            await user.save_auth_state(alive)
        setattr(spawner, SESSION_ATTRIBUTE, alive)

    def get_handlers(self, app: Any) -> list[tuple[str, type]]:
        # Before the hub's own /logout in tornado's routing: ours ends the labkit session too.
        return [*super().get_handlers(app), ("/logout", LabkitLogoutHandler)]


class LabkitLogoutHandler(LogoutHandler):  # type: ignore[misc]
    """The hub's logout, which first logs the learner out of labkit (NATS cut)."""

    async def default_handle_logout(self) -> None:
        # Before the hub stops the learner's server (shutdown_on_logout), which takes
        # seconds: the credentials die first.
        user = self.current_user
        if user is not None:
            session = await user.get_auth_state()
            if session and "answer" in session:
                try:
                    await asyncio.to_thread(auth_session.log_out, session)
                except AuthServiceUnavailable as exc:
                    self.log.error("labkit logout of %s failed: %s", user.name, exc)
            # The tokens are dead (or unreachable): keep nothing of them.
            await user.save_auth_state(None)
        await super().default_handle_logout()
