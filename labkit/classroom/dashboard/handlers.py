"""The dashboard's tornado handlers: every one for a hub admin only, every POST xsrf-checked.

The hub itself refuses the OAuth login of a user without access to this service;
`InstructorHandler.prepare` checks the `admin` flag of whoever got through, for every
page, file and action. POSTs go through JupyterHub's xsrf check (the token is tied to
the OAuth session; the page sends it in `X-XSRFToken`, forms as `_xsrf`); a POST
without it is refused before the handler runs.
"""

from __future__ import annotations

import asyncio
import json
import re
from dataclasses import asdict
from typing import Any

from jupyterhub.services.auth import HubOAuth, HubOAuthenticated
from tornado import web

from labkit.classroom.dashboard.actions import (
    ActionRefused,
    learner_to_act_on,
    progress_csv,
    reset_password,
    revoke_learner,
)
from labkit.classroom.dashboard.collect import Classroom
from labkit.classroom.dashboard.page import page_html
from labkit.classroom.dashboard.progress import ProgressUnavailable
from labkit.classroom.dashboard.roster import RosterUnavailable

NOT_INSTRUCTOR = (
    "this dashboard is for the class's instructors (JupyterHub admins); "
    "ask the instructor if you need something from it"
)
_API = re.compile(r"/(api|export)")


class InstructorHandler(HubOAuthenticated, web.RequestHandler):  # type: ignore[misc]
    """Base: the visitor must be logged in through the hub and be an admin."""

    def initialize(self, classroom: Classroom, hub_auth: HubOAuth) -> None:
        self.classroom = classroom
        self.hub_auth = hub_auth

    def prepare(self) -> None:
        user = self.current_user
        if user is None:
            if self.request.method in ("GET", "HEAD") and not self._is_api():
                self.redirect(self.get_login_url())  # the hub's OAuth login, then back
                return
            raise web.HTTPError(403, "log in through JupyterHub first")
        if not user.get("admin"):
            raise web.HTTPError(403, NOT_INSTRUCTOR)

    def _is_api(self) -> bool:
        return bool(_API.search(self.request.path))

    def write_json(self, body: Any, status: int = 200) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/json; charset=utf-8")
        self.set_header("Cache-Control", "no-store")
        self.finish(json.dumps(body))

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        exc = kwargs.get("exc_info", (None, None, None))[1]
        detail = exc.log_message if isinstance(exc, web.HTTPError) and exc.log_message else ""
        detail = detail or self._reason
        if self._is_api():
            self.write_json({"error": self._reason, "detail": detail}, status_code)
        else:
            self.set_header("Content-Type", "text/plain; charset=utf-8")
            self.finish(f"{status_code} {self._reason}: {detail}\n")


class PageHandler(InstructorHandler):
    def get(self) -> None:
        prefix = self.reverse_url("page")
        self.set_header("Cache-Control", "no-store")
        self.finish(page_html(prefix, self.xsrf_token.decode(), self.current_user["name"]))


class StateHandler(InstructorHandler):
    """The JSON the page polls: the whole class, read now."""

    async def get(self) -> None:
        self.write_json(await self.classroom.snapshot())


class ExportHandler(InstructorHandler):
    """POST: the progress records as a CSV download."""

    async def post(self) -> None:
        try:
            members = await self.classroom.members()
            records = await self.classroom.records()
        except (RosterUnavailable, ProgressUnavailable) as exc:
            raise web.HTTPError(503, str(exc)) from exc
        self.set_header("Content-Type", "text/csv; charset=utf-8")
        self.set_header("Content-Disposition", 'attachment; filename="labkit-progress.csv"')
        self.set_header("Cache-Control", "no-store")
        self.finish(progress_csv(members, records))


class LearnerActionHandler(InstructorHandler):
    """POST /api/users/<id>/<action>: revoke, or password (a new one, shown once)."""

    async def post(self, user_id: str, action: str) -> None:
        classroom = self.classroom
        try:
            member = await asyncio.to_thread(learner_to_act_on, classroom.roster, user_id)
            if action == "revoke":
                result: Any = await asyncio.to_thread(
                    revoke_learner, classroom.settings, classroom.roster.engine, member
                )
            elif action == "password":
                result = await asyncio.to_thread(reset_password, classroom.roster.engine, member)
            else:
                raise ActionRefused(404, f"no action {action!r}: use revoke or password")
        except ActionRefused as exc:
            self.write_json({"error": "refused", "detail": str(exc)}, exc.status)
            return
        except RosterUnavailable as exc:
            self.write_json({"error": "unavailable", "detail": str(exc)}, 503)
            return
        self.write_json({"action": action, **asdict(result)})


class AssetHandler(InstructorHandler, web.StaticFileHandler):
    """The page's script and style, from the package (no CDN)."""

    def initialize(  # type: ignore[override]
        self, classroom: Classroom, hub_auth: HubOAuth, path: str
    ) -> None:
        InstructorHandler.initialize(self, classroom, hub_auth)
        web.StaticFileHandler.initialize(self, path)

    def prepare(self) -> None:
        InstructorHandler.prepare(self)
