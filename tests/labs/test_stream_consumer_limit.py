"""The persistence lab's stream sets its own consumer limit: a class is not capped at 1,000.

Each learner gets a reply consumer of their own on the one stream. nats-server 2.15
gives a stream that sets no limit 1,000 consumers (and reads -1 as "use the default"),
so the 1,000th learner of a class was refused (`bench/bench_classroom.py` found it).
The stream now carries `LABKIT_STREAM_MAX_CONSUMERS`, and the real server keeps it.
"""

from __future__ import annotations

import asyncio

from labkit.labs.stream_echo import echo_stream_config
from labkit.settings import Settings, StreamSettings
from labkit.stack import Stack
from labkit.subjects import ECHO_STREAM_NAME
from tests.labs.streams import running_lab_server, server_connection

NATS_SERVER_DEFAULT = 1_000


def test_the_stream_asks_for_room_for_a_large_class() -> None:
    assert echo_stream_config(StreamSettings()).max_consumers == 10_000
    assert echo_stream_config(StreamSettings(max_consumers=2_500)).max_consumers == 2_500


def test_the_real_server_keeps_the_streams_consumer_limit(running_stack: Stack) -> None:
    settings: Settings = running_stack.settings

    async def limit_on_the_server() -> int | None:
        async with running_lab_server(settings):  # it creates (or updates) the stream
            nc = await server_connection(settings)
            try:
                info = await nc.jetstream().stream_info(ECHO_STREAM_NAME)
            finally:
                await nc.close()
        return info.config.max_consumers

    limit = asyncio.run(limit_on_the_server())
    assert limit == settings.stream.max_consumers > NATS_SERVER_DEFAULT
