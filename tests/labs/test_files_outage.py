"""The file lab while the real object store process is stopped: `objects_unavailable`.

A stack of its own (this test stops its object store), the lab server in this
process, a learner's client over NATS: a transform asked for while the store is
down gets an error reply that names the code and says what to do, and the other
labs keep serving; once the store runs again, so does the file lab.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from labkit.client import connect_as
from labkit.labs import lab_server
from labkit.labs.echo import send_echo
from labkit.labs.files import FileClient
from labkit.nsc.wrapper import Nsc
from labkit.objects.sample import sample_image
from labkit.objects.transforms import encode_png
from labkit.server import RemoteError
from labkit.stack import Stack
from tests.conftest import make_settings

USER = "outage-alice"


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    stack = Stack(make_settings(tmp_path / "home", s3={"port": 0}))
    stack.ensure("nats", "nsc", "objects")
    yield stack
    stack.down()


def test_a_transform_while_the_object_store_is_down_is_objects_unavailable(stack: Stack) -> None:
    settings = stack.settings

    async def scenario() -> tuple[RemoteError, str, str]:
        server = lab_server(settings)
        await server.start()
        # Off this loop, so the lab server in it answers the announcement.
        creds = (await Nsc.from_settings(settings).create_user_in_thread(USER)).creds
        nc = await connect_as(creds, settings=settings)
        files = FileClient(nc, USER)
        try:
            await files.upload(encode_png(sample_image()), "card.png")
            assert "/card.color-BW.png" in await files.transform("card.png", "color", "BW")
            assert stack.down("objects") == ["objects"]  # the real process, stopped
            with pytest.raises(RemoteError) as refused:
                await files.transform("card.png", "rotate", "90")
            echo = await send_echo(nc, USER, "still here")
            stack.ensure("objects")  # back (on another free port): file requests work again
            return refused.value, echo, await files.transform("card.png", "rotate", "90")
        finally:
            files.close()
            await nc.close()
            await server.stop()

    error, echo, after = asyncio.run(scenario())
    assert error.code == "objects_unavailable"
    assert "python -m labkit up" in error.message  # says what to do
    assert echo == "echo still here"
    assert "/card.rotate-90.png" in after
