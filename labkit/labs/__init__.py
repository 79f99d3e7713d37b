"""The labs: one module each, with the server's router and the client helpers."""

from __future__ import annotations

from typing import Any

from nats.aio.client import Client

from labkit.classroom import progress_routes
from labkit.classroom.progress_store import ProgressStore
from labkit.discovery import jetstream_replicas
from labkit.labs import caching, echo, files, ping_pong, roster, stream_echo
from labkit.labs.directory import NscDirectory, UserDirectory
from labkit.labs.image_work import ImageWork
from labkit.labs.reply_consumers import REPLY_ACK_WAIT, ReplyConsumers
from labkit.nsc.wrapper import Nsc
from labkit.objects.transforms import ImageLimits
from labkit.server.cache import Cache, open_cache
from labkit.server.router import Router
from labkit.server.runner import Server
from labkit.settings import Settings


def lab_router() -> Router:
    """Every lab's routes, as the application server serves them."""
    app = Router("labkit labs")
    for lab in (echo, caching, ping_pong, stream_echo, files, roster):
        app.include_router(lab.router)
    # Not a lab: the exercises' progress reports, for the instructor (classroom).
    app.include_router(progress_routes.router)
    return app


def lab_server(settings: Settings | None = None, **options: Any) -> Server:
    """The lab server as the stack runs it: cache from settings, users from the NSC store."""
    settings = settings or Settings()
    replicas = jetstream_replicas(settings)  # 3 on a NATS cluster of 3 or more, else 1

    async def cache(nc: Client) -> tuple[type, Any]:
        return Cache, await open_cache(nc, settings.server, replicas=replicas)

    async def progress(nc: Client) -> tuple[type, Any]:
        return ProgressStore, await ProgressStore.open(nc, settings.progress, replicas=replicas)

    async def reply_consumers(nc: Client) -> tuple[type, Any]:
        return ReplyConsumers, ReplyConsumers(nc.jetstream(), REPLY_ACK_WAIT)

    options.setdefault("queue", settings.server.queue)
    options.setdefault("max_in_flight", settings.server.max_in_flight)
    return Server(
        lab_router(),
        settings=settings,
        resources={
            UserDirectory: NscDirectory(Nsc.from_settings(settings)),
            roster.Roster: roster.Roster(),
            ImageLimits: files.image_limits(settings.s3),
            ImageWork: ImageWork.from_settings(settings.s3),
            files.UploadExpiry: files.UploadExpiry(settings.s3.upload_url_expiry),
        },
        resource_factories=[
            cache,
            reply_consumers,
            progress,
            files.object_store_resource(settings),
        ],
        streams=[stream_echo.echo_stream_config(settings.stream, replicas)],
        **options,
    )
