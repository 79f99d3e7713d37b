"""The file lab with one heavy user, on the real server and object store.

Pillow is held in its worker (as in tests/labs/test_files_lab.py) so alice's
transforms are provably still running while bob is served and while her extra
transform is refused: no timing, only order.
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any, TypeVar
from urllib.parse import parse_qs, urlsplit

import pytest
from nats.aio.client import Client
from PIL import Image

from labkit.client import connect_as
from labkit.labs import files as files_module
from labkit.labs import lab_server
from labkit.labs.files import FileClient, request_upload_url
from labkit.labs.image_work import ImageWork
from labkit.nsc.wrapper import Nsc
from labkit.objects import transfer
from labkit.objects.errors import TransferRefused
from labkit.objects.transforms import encode_png, transform_image_bytes
from labkit.server import RemoteError
from labkit.server.runner import Server
from labkit.settings import Settings
from labkit.stack import Stack

ALICE = "fair-alice"
BOB = "fair-bob"
Result = TypeVar("Result")
SMALL_PNG = encode_png(Image.linear_gradient("L").resize((120, 80)))


@pytest.fixture(scope="module")
def stack_settings(running_stack: Stack) -> Settings:
    running_stack.ensure("objects")
    return running_stack.settings


def _with_s3(settings: Settings, **changes: object) -> Settings:
    return settings.model_copy(update={"s3": settings.s3.model_copy(update=changes)})


def _rss_bytes() -> int:
    with open(f"/proc/{os.getpid()}/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


class HeldPillow:
    """Pillow's step, held in the worker until released; counts the ones running."""

    def __init__(self) -> None:
        self.running = 0
        self._lock = threading.Lock()
        self.may_finish = threading.Event()

    def __call__(self, *args: Any, **kwargs: Any) -> bytes:
        with self._lock:
            self.running += 1
        try:
            if not self.may_finish.wait(timeout=30):  # a bound for a stuck test
                raise RuntimeError("Pillow was held and never released")
            return transform_image_bytes(*args, **kwargs)
        finally:
            with self._lock:
                self.running -= 1


async def _until(
    condition: Callable[[], bool], what: str, state: Callable[[], object] = lambda: ""
) -> None:
    try:
        async with asyncio.timeout(20):  # a bound for a stuck test, not a speed check
            while not condition():
                await asyncio.sleep(0.01)
    except TimeoutError:
        raise AssertionError(f"{what} {state()}") from None


@asynccontextmanager
async def _lab(settings: Settings) -> AsyncIterator[tuple[Server, dict[str, FileClient]]]:
    server = lab_server(settings)
    await server.start()
    nsc = Nsc.from_settings(settings)
    connections: list[Client] = []
    try:
        clients = {}
        for user in (ALICE, BOB):
            # Off this loop, so the lab server in it answers the announcement.
            issued = await nsc.create_user_in_thread(user)
            nc = await connect_as(issued.creds, settings=settings)
            connections.append(nc)
            clients[user] = FileClient(nc, user)
        yield server, clients
    finally:
        for nc in connections:
            await nc.close()
        await server.stop()


def _run(settings: Settings, scenario: Callable[..., Awaitable[Result]]) -> Result:
    async def main() -> Result:
        async with _lab(settings) as (server, clients):
            work = server.resources[ImageWork]
            assert isinstance(work, ImageWork)
            return await scenario(work, clients[ALICE], clients[BOB])

    return asyncio.run(main())


def test_bob_is_served_while_alices_transforms_run_and_her_extra_one_is_busy(
    stack_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    held = HeldPillow()
    monkeypatch.setattr(files_module, "transform_image_bytes", held)
    settings = _with_s3(stack_settings, transforms_per_user=2, image_workers=3)
    big = encode_png(Image.linear_gradient("L").resize((2000, 2000)))

    async def scenario(work: ImageWork, alice: FileClient, bob: FileClient) -> dict[str, Any]:
        await alice.upload(big, "big.png")
        await bob.upload(SMALL_PNG, "small.png")
        alices = [asyncio.create_task(alice.transform("big.png", "rotate", "90")) for _ in "ab"]
        seen: dict[str, Any] = {}
        try:
            await _until(lambda: held.running == 2, "alice's two transforms never reached Pillow")
            with pytest.raises(RemoteError) as busy:
                await alice.transform("big.png", "rotate", "180")
            seen["busy"] = busy.value
            # bob: an upload URL and a transform of his own while alice's two are held
            seen["bob_url"] = await request_upload_url(bob.nc, BOB, "next.png", 10)
            bobs = asyncio.create_task(bob.transform("small.png", "rotate", "90"))
            await _until(lambda: held.running == 3, "bob's transform waited behind alice's")
            seen["alice_still_running"] = work.running(ALICE)
        finally:
            held.may_finish.set()
        seen["bob_result"] = await bobs
        seen["alice_results"] = await asyncio.gather(*alices)
        seen["after"] = work.running(ALICE)
        return seen

    seen = _run(settings, scenario)
    busy: RemoteError = seen["busy"]
    assert busy.code == "busy"
    assert "2 transforms running" in busy.message and "retry" in busy.message
    assert f"/{BOB}/next.png" in seen["bob_url"]
    assert seen["alice_still_running"] == 2
    assert "/small.rotate-90.png" in seen["bob_result"]
    assert all("/big.rotate-90.png" in url for url in seen["alice_results"])
    assert seen["after"] == 0


def test_decoded_pixels_in_flight_stay_within_the_budget(
    stack_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    held = HeldPillow()
    monkeypatch.setattr(files_module, "transform_image_bytes", held)
    pixels = 1000 * 800
    settings = _with_s3(stack_settings, max_pixels_in_flight=pixels + pixels // 2)
    image = encode_png(Image.linear_gradient("L").resize((1000, 800)))

    async def scenario(work: ImageWork, alice: FileClient, bob: FileClient) -> dict[str, Any]:
        await alice.upload(image, "wide.png")
        await bob.upload(SMALL_PNG, "small.png")
        alices = [asyncio.create_task(alice.transform("wide.png", "color", "BW")) for _ in "ab"]
        seen: dict[str, Any] = {}
        try:
            # one decodes; the other waits for pixels, not in Pillow
            await _until(
                lambda: held.running == 1 and work.waiting_for_pixels == 1,
                "the second image did not wait for the pixel budget",
                lambda: (held.running, work.waiting_for_pixels, work.pixels_in_flight),
            )
            seen["in_flight"] = work.pixels_in_flight
            # a small image fits beside it: bob is not held up by the budget
            bobs = asyncio.create_task(bob.transform("small.png", "thumbnail", "32"))
            await _until(lambda: held.running == 2, "bob's small image did not fit beside")
            seen["with_bob"] = work.pixels_in_flight
            seen["still_waiting"] = work.waiting_for_pixels
        finally:
            held.may_finish.set()
        await bobs
        await asyncio.gather(*alices)
        seen["after"] = work.pixels_in_flight
        return seen

    seen = _run(settings, scenario)
    assert seen["in_flight"] == pixels
    assert seen["with_bob"] == pixels + 120 * 80 and seen["still_waiting"] == 1
    assert seen["after"] == 0


def test_large_images_from_one_user_keep_memory_bounded(stack_settings: Settings) -> None:
    # 4000×4000 RGB: 48 MB decoded, as much again for the result. Without the limits
    # eight asked at once were all decoded together (the process grew by ~1 GB); now
    # two are let in (her limit) and one is decoded at a time (the 25M-pixel budget).
    settings = _with_s3(stack_settings, transforms_per_user=2)
    big = encode_png(Image.linear_gradient("L").resize((4000, 4000)).convert("RGB"))

    async def scenario(work: ImageWork, alice: FileClient, bob: FileClient) -> dict[str, int]:
        await alice.upload(big, "huge.png")
        before = _rss_bytes()
        peak, peak_pixels, done = before, 0, asyncio.Event()

        async def sample() -> None:
            nonlocal peak, peak_pixels
            while not done.is_set():
                peak = max(peak, _rss_bytes())
                peak_pixels = max(peak_pixels, work.pixels_in_flight)
                await asyncio.sleep(0.005)

        sampler = asyncio.create_task(sample())
        outcomes = await asyncio.gather(
            *(alice.transform("huge.png", "rotate", "90") for _ in range(8)),
            return_exceptions=True,
        )
        done.set()
        await sampler
        busy = sum(isinstance(o, RemoteError) and o.code == "busy" for o in outcomes)
        served = sum(isinstance(o, str) for o in outcomes)
        return {"growth": peak - before, "busy": busy, "served": served, "pixels": peak_pixels}

    seen = _run(settings, scenario)
    # at least her two; the rest told `busy` (or served, had one finished meanwhile)
    assert seen["served"] >= 2 and seen["served"] + seen["busy"] == 8, seen
    assert seen["pixels"] == 16_000_000, seen  # never two decoded at once
    assert seen["growth"] < 400 * 1024**2, seen


def test_an_upload_url_takes_only_its_size_and_expires(stack_settings: Settings) -> None:
    settings = _with_s3(stack_settings, upload_url_expiry=timedelta(seconds=1))

    async def scenario(work: ImageWork, alice: FileClient, bob: FileClient) -> list[str]:
        url = await request_upload_url(alice.nc, ALICE, "once.png", len(SMALL_PNG))
        outcomes = []
        for body in (SMALL_PNG + b"more", SMALL_PNG[:-1]):  # other sizes: the store refuses
            try:
                await asyncio.to_thread(transfer.put_to_url, url, body)
            except TransferRefused as refused:
                outcomes.append(str(refused))
        await asyncio.to_thread(transfer.put_to_url, url, SMALL_PNG, content_type="image/png")
        await alice.transform("once.png", "rotate", "90")  # the server has read it
        signed_for = int(parse_qs(urlsplit(url).query)["X-Amz-Expires"][0])
        await asyncio.sleep(signed_for + 1.5)  # past its expiry (a wait, not a speed check)
        try:
            await asyncio.to_thread(transfer.put_to_url, url, SMALL_PNG, content_type="image/png")
        except TransferRefused as refused:
            outcomes.append(str(refused))
        return outcomes

    outcomes = _run(settings, scenario)
    assert len(outcomes) == 3, outcomes
    assert all("HTTP 403" in outcome for outcome in outcomes)
