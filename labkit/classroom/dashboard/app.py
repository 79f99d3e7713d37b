"""The dashboard's tornado application, and `main()` as the hub starts it.

JupyterHub starts a managed service with its settings in the environment
(`JUPYTERHUB_SERVICE_URL` to listen on, `JUPYTERHUB_SERVICE_PREFIX`, the API token and
OAuth client); `HubOAuth()` reads them. The stack is the one of `LABKIT_HOME`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import signal
from urllib.parse import urlsplit

from jupyterhub.services.auth import HubOAuth, HubOAuthCallbackHandler
from jupyterhub.utils import url_path_join
from tornado import web
from tornado.routing import URLSpec

from labkit.classroom.dashboard.collect import Classroom
from labkit.classroom.dashboard.handlers import (
    AssetHandler,
    ExportHandler,
    LearnerActionHandler,
    PageHandler,
    StateHandler,
)
from labkit.classroom.dashboard.page import STATIC_DIR
from labkit.errors import LabkitError
from labkit.settings import Settings

log = logging.getLogger("labkit.classroom.dashboard")
# Between two tries to reach the stack's NATS when the dashboard starts before it.
CONNECT_RETRY_SECONDS = 2.0


class NotAHubService(LabkitError):
    """The dashboard was started without the environment JupyterHub gives a service."""


def make_app(classroom: Classroom, prefix: str, hub_auth: HubOAuth) -> web.Application:
    """The routes under `prefix` (`/services/dashboard/`)."""
    context = {"classroom": classroom, "hub_auth": hub_auth}

    def route(pattern: str, handler: type[web.RequestHandler], **extra: object) -> URLSpec:
        return web.url(url_path_join(prefix, pattern), handler, {**context, **extra})

    return web.Application(
        [
            web.url(prefix, PageHandler, context, name="page"),
            route("api/state", StateHandler),
            route(r"api/users/([A-Za-z0-9]{1,64})/([a-z]+)", LearnerActionHandler),
            route("export/progress.csv", ExportHandler),
            route(r"static/(dashboard\.(?:js|css))", AssetHandler, path=str(STATIC_DIR)),
            # It takes no arguments: it finds `hub_auth` as HubOAuth's singleton.
            web.url(url_path_join(prefix, "oauth_callback"), HubOAuthCallbackHandler),
        ],
        # Cookies of one run: a restarted dashboard sends the instructor through OAuth again.
        cookie_secret=secrets.token_bytes(32),
        xsrf_cookies=True,
    )


def _listen_address() -> tuple[str, int]:
    url = os.environ.get("JUPYTERHUB_SERVICE_URL")
    if not url:
        raise NotAHubService(
            "JUPYTERHUB_SERVICE_URL is not set: the dashboard runs as a JupyterHub managed "
            "service (see `python -m labkit classroom up`), not on its own"
        )
    parts = urlsplit(url)
    return parts.hostname or "127.0.0.1", parts.port or 80


async def _connect(classroom: Classroom, stop: asyncio.Event) -> None:
    while not stop.is_set():
        try:
            await classroom.start()
            log.info("connected to the stack's NATS")
            return
        except Exception as exc:  # nats-py and the keystore raise their own errors
            await classroom.stop()
            log.warning("cannot reach the stack yet (%s); retrying", exc)
        with contextlib.suppress(TimeoutError):  # the retry interval, or a stop
            await asyncio.wait_for(stop.wait(), CONNECT_RETRY_SECONDS)


async def serve() -> None:
    """Serve until SIGTERM or SIGINT, then close the NATS connections."""
    host, port = _listen_address()
    prefix = os.environ.get("JUPYTERHUB_SERVICE_PREFIX", "/services/dashboard/")
    classroom = Classroom(Settings())
    app = make_app(classroom, prefix, HubOAuth.instance(cache_max_age=60))
    server = app.listen(port, address=host)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    log.info(
        "dashboard on http://%s:%s%s (LABKIT_HOME %s)", host, port, prefix, classroom.settings.home
    )
    connecting = asyncio.create_task(_connect(classroom, stop))
    await stop.wait()
    server.stop()
    await connecting
    await classroom.stop()


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    try:
        asyncio.run(serve())
    except NotAHubService as exc:
        raise SystemExit(f"labkit dashboard: {exc}") from None
