"""The file lab end to end: the real NATS server, the real object store, an in-process server.

Clients ask for presigned URLs over NATS and move bytes over plain HTTP, as a
learner's notebook does. Every transformation and mode, every refusal (each
changing nothing), and the wall between users are checked here.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from nats.aio.client import Client
from PIL import Image

from labkit.client import connect_as
from labkit.labs import files as files_module
from labkit.labs import lab_server
from labkit.labs.echo import send_echo
from labkit.labs.files import FileClient, request_transform, request_upload_url
from labkit.nsc.wrapper import Nsc
from labkit.objects.sample import sample_image
from labkit.objects.store import ObjectStore
from labkit.objects.transforms import (
    ImageLimits,
    encode_png,
    transform_image_bytes,
)
from labkit.protocol import ImageRequest
from labkit.server import RemoteError
from labkit.settings import Settings
from labkit.stack import Stack
from labkit.subjects import SEND_FILE, user_subject

# Users of these tests (prefixed: the NSC store and the bucket are shared by the test run).
ALICE = "files-alice"
BOB = "files-bob"
SAMPLE = sample_image()
SAMPLE_PNG = encode_png(SAMPLE)
LIMITS = ImageLimits()

Result = TypeVar("Result")


@pytest.fixture(scope="module")
def stack_settings(running_stack: Stack) -> Settings:
    """The shared stack's settings, with its object store running."""
    running_stack.ensure("objects")
    return running_stack.settings


@dataclass
class FilesLab:
    """A lab server and one connected FileClient per user, plus direct access to the store."""

    settings: Settings
    clients: dict[str, FileClient]
    store: ObjectStore

    def __getitem__(self, user: str) -> FileClient:
        return self.clients[user]

    def keys_of(self, user: str) -> list[str]:
        return self.store.list_keys(f"{user}/")


@asynccontextmanager
async def files_lab(settings: Settings, *users: str) -> AsyncIterator[FilesLab]:
    server = lab_server(settings)
    await server.start()
    nsc = Nsc.from_settings(settings)
    connections: list[Client] = []
    try:
        clients = {}
        for user in users or (ALICE, BOB):
            # Off this loop, so the lab server in it answers the announcement.
            issued = await nsc.create_user_in_thread(user)
            nc = await connect_as(issued.creds, settings=settings)
            connections.append(nc)
            clients[user] = FileClient(nc, user)
        yield FilesLab(settings, clients, ObjectStore.from_settings(settings))
    finally:
        for nc in connections:
            await nc.close()
        await server.stop()


def run(settings: Settings, scenario: Callable[[FilesLab], Awaitable[Result]]) -> Result:
    async def main() -> Result:
        async with files_lab(settings) as lab:
            return await scenario(lab)

    return asyncio.run(main())


def refusal(settings: Settings, scenario: Callable[[FilesLab], Awaitable[object]]) -> RemoteError:
    """The error reply `scenario` gets; asserts that alice's objects did not change."""

    async def main(lab: FilesLab) -> RemoteError:
        before = lab.keys_of(ALICE)
        with pytest.raises(RemoteError) as caught:
            await scenario(lab)
        assert lab.keys_of(ALICE) == before
        return caught.value

    return run(settings, main)


# --- the happy path ------------------------------------------------------------


TRANSFORMS = [
    ("color", "BW", None),
    ("color", "RED", None),
    ("color", "GREEN", None),
    ("color", "BLUE", None),
    ("crop", "", (10, 20, 110, 70)),
    ("rotate", "90", None),
    ("rotate", "180", None),
    ("rotate", "270", None),
    ("thumbnail", "64", None),
]


def test_every_transformation_and_mode_end_to_end(stack_settings: Settings) -> None:
    async def scenario(lab: FilesLab) -> dict[str, Image.Image]:
        assert await lab[ALICE].upload(SAMPLE_PNG, "card.png") == "card.png"
        results = {}
        for kind, mode, crop in TRANSFORMS:
            results[f"{kind}-{mode}"] = await lab[ALICE].transformed("card.png", kind, mode, crop)
        stored = lab.keys_of(ALICE)
        assert {f"{ALICE}/card.color-BW.png", f"{ALICE}/card.crop-10-20-110-70.png"} <= set(stored)
        return results

    results = run(stack_settings, scenario)
    bw = results["color-BW"]
    assert bw.getbands() == ("L",) and bw.tobytes() == SAMPLE.convert("L").tobytes()
    for mode, band in (("RED", 0), ("GREEN", 1), ("BLUE", 2)):
        image = results[f"color-{mode}"]
        assert image.getchannel(band).tobytes() == SAMPLE.getchannel(band).tobytes()
        assert all(image.getchannel(i).getextrema() == (0, 0) for i in range(3) if i != band)
    crop = results["crop-"]
    assert crop.size == (100, 50) and crop.tobytes() == SAMPLE.crop((10, 20, 110, 70)).tobytes()
    assert results["rotate-90"].tobytes() == SAMPLE.transpose(Image.Transpose.ROTATE_270).tobytes()
    assert results["rotate-180"].tobytes() == SAMPLE.transpose(Image.Transpose.ROTATE_180).tobytes()
    assert results["rotate-270"].tobytes() == SAMPLE.transpose(Image.Transpose.ROTATE_90).tobytes()
    assert results["thumbnail-64"].size == (64, 48)


def test_results_can_be_transformed_again(stack_settings: Settings) -> None:
    async def scenario(lab: FilesLab) -> Image.Image:
        await lab[ALICE].upload(SAMPLE_PNG, "again.png")
        await lab[ALICE].transform("again.png", "rotate", "90")
        return await lab[ALICE].transformed("again.rotate-90.png", "color", "BW")

    result = run(stack_settings, scenario)
    assert result.size == (240, 320) and result.mode == "L"


def test_the_upload_url_is_for_the_users_own_object_and_expires(stack_settings: Settings) -> None:
    async def scenario(lab: FilesLab) -> str:
        return await request_upload_url(lab[ALICE].nc, ALICE, "cat.png", 1_000)

    url = urlsplit(run(stack_settings, scenario))
    assert url.scheme == "http" and url.hostname == "127.0.0.1"
    assert url.path == f"/{stack_settings.s3.bucket}/{ALICE}/cat.png"
    query = parse_qs(url.query)
    assert query["X-Amz-Expires"] == ["300"]  # five minutes by default: ask, then upload
    assert query["X-Amz-SignedHeaders"] == ["content-length;host"]  # for 1,000 bytes only

    shorter = stack_settings.model_copy(
        update={
            "s3": stack_settings.s3.model_copy(update={"upload_url_expiry": timedelta(seconds=30)})
        }
    )
    assert parse_qs(urlsplit(run(shorter, scenario)).query)["X-Amz-Expires"] == ["30"]


def test_a_large_file_uploads_from_a_path_with_a_progress_bar(
    stack_settings: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "noise.png"
    Image.effect_noise((1200, 1200), 100).save(path, compress_level=0)  # about 1.4 MB

    async def scenario(lab: FilesLab) -> Image.Image:
        assert await lab[ALICE].upload(path, progress=True) == "noise.png"
        return await lab[ALICE].transformed("noise.png", "thumbnail", "100")

    result = run(stack_settings, scenario)
    assert result.size == (100, 100) and result.mode == "L"
    assert "upload" in capsys.readouterr().err  # tqdm writes its bar to stderr


# --- every refusal, each changing nothing ----------------------------------------


@pytest.mark.parametrize(
    "name", ["../bob/cat.png", "bob/cat.png", "..", "a\x00b.png", "line\nbreak.png", "", ".env"]
)
def test_unsafe_names_are_refused_for_upload_and_transform(
    stack_settings: Settings, name: str
) -> None:
    upload = refusal(
        stack_settings, lambda lab: request_upload_url(lab[ALICE].nc, ALICE, name, 100)
    )
    assert upload.code == "invalid_name"
    transform = refusal(
        stack_settings, lambda lab: request_transform(lab[ALICE].nc, ALICE, name, "color", "BW")
    )
    assert transform.code == "invalid_name"


def test_an_object_that_does_not_exist(stack_settings: Settings) -> None:
    error = refusal(stack_settings, lambda lab: lab[ALICE].transform("never-sent.png", "rotate"))
    assert error.code == "not_found"
    assert error.message == (
        "no object 'never-sent.png' for you yet: upload it first "
        f"(request a URL on {ALICE}.send_file)"
    )


def test_a_file_that_is_not_an_image(stack_settings: Settings) -> None:
    async def scenario(lab: FilesLab) -> None:
        await lab[ALICE].upload(b"just some text", "notes.png")
        before = lab.keys_of(ALICE)
        with pytest.raises(RemoteError) as caught:
            await lab[ALICE].transform("notes.png", "color", "BW")
        assert caught.value.code == "not_an_image"
        assert lab.keys_of(ALICE) == before

    run(stack_settings, scenario)


@pytest.mark.parametrize(
    ("limits", "size", "message"),
    [
        ({"max_image_pixels": 10_000}, (101, 100), "10,100 pixels; the limit is 10,000"),
        ({"max_image_pixels": 10_000}, (400, 400), "the limit is 10,000"),
        ({"max_image_bytes": 1_000}, (64, 64), "the limit is 1,000"),
    ],
)
@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")
def test_images_over_the_limits_are_refused(
    stack_settings: Settings, limits: dict[str, int], size: tuple[int, int], message: str
) -> None:
    limited = stack_settings.model_copy(update={"s3": stack_settings.s3.model_copy(update=limits)})
    noise = Image.effect_noise(size, 64)  # noise does not compress below 1,000 bytes
    name = f"big-{size[0]}.png"

    async def scenario(lab: FilesLab) -> None:
        before = lab.keys_of(ALICE)
        if "max_image_bytes" in limits:  # refused before any byte moves: no URL for it
            with pytest.raises(RemoteError) as caught:
                await lab[ALICE].upload(encode_png(noise), name)
        else:
            await lab[ALICE].upload(encode_png(noise), name)
            before = lab.keys_of(ALICE)
            with pytest.raises(RemoteError) as caught:
                await lab[ALICE].transform(name, "rotate")
        assert caught.value.code == "too_large"
        assert message in caught.value.message
        assert lab.keys_of(ALICE) == before

    run(limited, scenario)


@pytest.mark.parametrize(
    ("kind", "mode", "crop", "message"),
    [
        ("crop", "", (0, 0, 321, 240), "reaches outside the 320×240 image"),
        ("crop", "", (300, 200, 400, 300), "reaches outside"),
        ("crop", "", (50, 50, 50, 80), "is empty"),
        ("crop", "", (0, 0, 0, 0), "is empty"),
        ("crop", "", None, "crop needs a crop box"),
        ("crop", "", (-5, 0, 10, 10), "negative"),
        ("blur", "", None, "unknown transformation 'blur'"),
        ("color", "PURPLE", None, "unknown color mode 'PURPLE'"),
        ("rotate", "45", None, "unknown rotate mode '45'"),
        ("thumbnail", "-1", None, "unknown thumbnail mode '-1'"),
    ],
)
def test_bad_transformations_are_refused(
    stack_settings: Settings,
    kind: str,
    mode: str,
    crop: tuple[int, int, int, int] | None,
    message: str,
) -> None:
    async def scenario(lab: FilesLab) -> None:
        await lab[ALICE].upload(SAMPLE_PNG, "bad.png")
        before = lab.keys_of(ALICE)
        with pytest.raises(RemoteError) as caught:
            await lab[ALICE].transform("bad.png", kind, mode, crop)
        assert caught.value.code == "invalid_transformation"
        assert message in caught.value.message
        assert lab.keys_of(ALICE) == before

    run(stack_settings, scenario)


def test_a_payload_that_is_not_a_confirmation(stack_settings: Settings) -> None:
    async def scenario(lab: FilesLab) -> str:
        reply = await lab[ALICE].nc.request(user_subject(ALICE, SEND_FILE), b"\xff\xff", timeout=5)
        return reply.headers.get("Labkit-Error", "") if reply.headers else ""

    assert run(stack_settings, scenario) == "invalid_payload"


# --- users are walled off ---------------------------------------------------------


def test_alice_cannot_reach_bobs_objects(stack_settings: Settings) -> None:
    async def scenario(lab: FilesLab) -> None:
        await lab[BOB].upload(SAMPLE_PNG, "private.png")
        bob_url = await lab[BOB].transform("private.png", "color", "RED")
        # Her own prefix has no such file: the name cannot point into bob's.
        with pytest.raises(RemoteError) as missing:
            await lab[ALICE].transform("private.png", "color", "RED")
        assert missing.value.code == "not_found"
        for name in (f"../{BOB}/private.png", f"{BOB}/private.png"):
            with pytest.raises(RemoteError) as escape:
                await request_upload_url(lab[ALICE].nc, ALICE, name, 100)
            assert escape.value.code == "invalid_name"
        # Asking on bob's subject: the NATS server refuses alice's publish, nobody answers.
        with pytest.raises(asyncio.TimeoutError):
            await lab[ALICE].nc.request(
                user_subject(BOB, SEND_FILE),
                ImageRequest(name="x.png", size=10).SerializeToString(),
                0.3,
            )
        # A URL of her own, pointed at bob's object, no longer matches its signature.
        await lab[ALICE].upload(SAMPLE_PNG, "mine.png")
        mine = await lab[ALICE].transform("mine.png", "color", "RED")
        forged = mine.replace(f"/{ALICE}/mine.color-RED.png", f"/{BOB}/private.color-RED.png")
        assert forged != mine
        assert requests.get(forged, timeout=10).status_code == 403
        assert requests.get(bob_url, timeout=10).status_code == 200  # bob's own URL works

    run(stack_settings, scenario)


# --- Pillow does not stall the event loop --------------------------------------------


def test_a_transform_in_progress_does_not_hold_up_other_users(
    stack_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Pillow's work is held (in whatever thread runs it) until alice has had her echo:
    # on the event loop it would hold the whole server, and her echo could never come.
    pillow_running, pillow_may_finish = threading.Event(), threading.Event()

    def held_transform(*args: Any, **kwargs: Any) -> bytes:
        pillow_running.set()
        if not pillow_may_finish.wait(timeout=20):  # a bound for a stuck test
            raise RuntimeError("Pillow was held and never released: it blocked the event loop")
        return transform_image_bytes(*args, **kwargs)

    monkeypatch.setattr(files_module, "transform_image_bytes", held_transform)

    async def scenario(lab: FilesLab) -> tuple[str, str]:
        await lab[BOB].upload(SAMPLE_PNG, "huge.png")
        transform = asyncio.create_task(lab[BOB].transform("huge.png", "thumbnail", "64"))
        try:
            assert await asyncio.to_thread(pillow_running.wait, 20), "Pillow never started"
            echo = await send_echo(lab[ALICE].nc, ALICE, "still there?", timeout=10)
        finally:
            pillow_may_finish.set()
        return echo, await transform

    echo, url = run(stack_settings, scenario)
    assert echo == "echo still there?"
    assert "/huge.thumbnail-64.png" in url


# --- the notebook's panel, driven from code ----------------------------------------------


def test_the_panel_uploads_crops_and_recolours(stack_settings: Settings) -> None:
    from labkit.widgets.files import FilesPanel

    async def scenario(lab: FilesLab) -> FilesPanel:
        panel = FilesPanel(lab[ALICE])
        # What the browser's upload control sets when a file is chosen.
        chosen = {"name": "panel.png", "type": "image/png", "size": len(SAMPLE_PNG)}
        when = datetime.now(UTC)
        panel.upload.value = ({**chosen, "content": memoryview(SAMPLE_PNG), "last_modified": when},)
        await panel.idle()
        assert panel.name == "panel.png" and panel.crop_x.max == 320 and panel.crop_y.max == 240
        panel.transformation.value = "crop"
        assert panel.mode.disabled and not panel.crop_x.disabled
        panel.crop_x.value, panel.crop_y.value = (40, 200), (30, 150)
        panel.apply_button.click()
        await panel.idle()
        assert panel.after is not None and panel.after.size == (160, 120)
        panel.transformation.value = "color"
        assert panel.mode.options == ("BW", "RED", "GREEN", "BLUE") and panel.crop_x.disabled
        panel.mode.value = "BLUE"
        blue = await panel.apply()
        assert blue.getchannel("B").tobytes() == SAMPLE.getchannel("B").tobytes()
        panel.transformation.value = "crop"
        panel.crop_x.value = (0, 0)  # an empty box: refused, shown in the panel
        panel.apply_button.click()
        await panel.idle()
        return panel

    panel = run(stack_settings, scenario)
    assert panel.messages[0] == f"uploaded “panel.png” ({len(SAMPLE_PNG):,} bytes, 320×240)"
    assert panel.messages[1:3] == [
        "crop (40, 30, 200, 150): 160×120 RGB",
        "color BLUE: 320×240 RGB",
    ]
    assert len(panel.errors) == 1 and "is empty" in panel.errors[0]
    assert panel.messages[3] == panel.errors[0]  # errors show in the panel too
    assert repr(panel) == f"FilesPanel(user={ALICE!r}, image='panel.png')"


def test_the_panel_clicked_from_a_subshell_then_driven_from_cells(
    stack_settings: Settings,
) -> None:
    """Clicks arrive on another thread and loop in JupyterLab; the cells await their work."""
    from labkit.widgets.files import FilesPanel
    from tests.widgets.subshell import click_from_another_loop

    async def scenario(lab: FilesLab) -> tuple[FilesPanel, list[str]]:
        panel = FilesPanel(lab[ALICE])
        assert panel.before_view.layout.display == "none"  # no broken-image icon yet
        click_from_another_loop(panel.apply_button.click)  # Transform before any upload
        await panel.idle()
        when = datetime.now(UTC)
        not_an_image = {"name": "notes.txt", "type": "text/plain", "size": 4}
        click_from_another_loop(
            lambda: setattr(
                panel.upload,
                "value",
                ({**not_an_image, "content": memoryview(b"text"), "last_modified": when},),
            )
        )
        await panel.idle()
        explored = list(panel.errors)
        chosen = {"name": "panel.png", "type": "image/png", "size": len(SAMPLE_PNG)}
        click_from_another_loop(
            lambda: setattr(
                panel.upload,
                "value",
                ({**chosen, "content": memoryview(SAMPLE_PNG), "last_modified": when},),
            )
        )
        await panel.idle()
        panel.transformation.value = "crop"
        panel.crop_x.value, panel.crop_y.value = (40, 200), (30, 150)
        click_from_another_loop(panel.apply_button.click)
        await panel.idle()
        panel.transformation.value = "rotate"
        await panel.apply()  # a cell, after the clicks: the same loop, the same client
        return panel, explored

    panel, explored = run(stack_settings, scenario)
    assert [error.split(":")[0] for error in explored] == [
        "upload an image first",
        "upload of “notes.txt” failed",
    ]
    assert panel.messages[-2:] == [
        "crop (40, 30, 200, 150): 160×120 RGB",
        "rotate 90: 240×320 RGB",
    ]
    assert panel.before_view.layout.display is None and panel.after_view.layout.display is None
