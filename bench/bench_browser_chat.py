"""How fast is the page as a NATS client, next to the kernel's nats-py?

Starts a real stack (nats-server with its WebSocket listener, the NSC service, the
application server with the ping relay) in a temporary data directory on free ports,
then measures the chat's round trip, page -> server relay -> page: a PingRequest to
oneself on `<user>.ping`, relayed by the application server to `<user>.inbox`, and the
server's receipt on the private inbox (`_INBOX.<user>.…`). Two clients, each its own
user, in turn, in the same run (ABAB... rounds, so drift on the machine hits both):

- page:   the shipped bundle (labkit/widgets/static/browser_chat.mjs, its ChatClient)
          in Debian's Chromium (headless, playwright), over WebSocket: nats.js, the
          protobuf encoded and decoded in the page.
- kernel: nats-py over TCP, protobuf by the generated Python code: what every other
          notebook uses.

One line at a time: the relay time is from the send to the relayed line's arrival on
the inbox; the receipt time from the send to the server's answer. Medians and p99
over every round. Then the bundle's size, minified and gzipped (level 9).

    .venv/bin/python bench/bench_browser_chat.py [--rounds 3] [--count 500] [--warmup 50]
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import functools
import gzip
import http.server
import shutil
import statistics
import tempfile
import threading
import time
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, ClassVar

from nats.aio.msg import Msg

from labkit.client import connect_as
from labkit.discovery import nats_urls, nats_ws_urls
from labkit.nsc.wrapper import Nsc
from labkit.protocol import PingRequest
from labkit.settings import Settings
from labkit.stack import Stack
from labkit.subjects import INBOX, PING, user_subject
from labkit.widgets.browser_chat import BUNDLE

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run"]
PAGE_USER, KERNEL_USER = "bench-page", "bench-kernel"
TIMEOUT = 10.0

PAGE = """<!doctype html><meta charset="utf-8"><title>labkit browser chat bench</title>
<script type="module">
import { ChatClient } from "./browser_chat.mjs";
window.runRound = async ({ servers, creds, count, warmup }) => {
  let waiting = null;
  const client = new ChatClient({
    servers, creds, name: "bench page",
    on: { line: () => { const done = waiting; waiting = null; done?.(performance.now()); } },
  });
  const connectStart = performance.now();
  await client.connect();
  const connectMs = performance.now() - connectStart;
  const relay = [], receipt = [];
  for (let i = 0; i < warmup + count; i++) {
    const arrived = new Promise((resolve) => { waiting = resolve; });
    const start = performance.now();
    const answered = client.send({ destination: client.user, message: `line ${i}` })
      .then((outcome) => {
        if (!outcome.receipt) throw new Error(JSON.stringify(outcome));
        return performance.now();
      });
    const [lineAt, receiptAt] = await Promise.all([arrived, answered]);
    if (i >= warmup) { relay.push(lineAt - start); receipt.push(receiptAt - start); }
  }
  await client.close();
  return { connectMs, relay, receipt };
};
window.benchReady = true;
</script>
"""


async def kernel_round(settings: Settings, creds: str, count: int, warmup: int) -> dict[str, Any]:
    """The same round trips from nats-py (one line at a time, to oneself)."""
    connect_start = time.perf_counter()
    nc = await connect_as(creds, servers=nats_urls(settings))
    connect_ms = (time.perf_counter() - connect_start) * 1000
    arrived: asyncio.Queue[float] = asyncio.Queue()

    async def on_line(msg: Msg) -> None:
        PingRequest.FromString(msg.data)  # decoded, as the page decodes it
        arrived.put_nowait(time.perf_counter())

    await nc.subscribe(user_subject(KERNEL_USER, INBOX), cb=on_line)
    await nc.flush()
    relay, receipt = [], []
    try:
        for i in range(warmup + count):
            data = PingRequest(destination=KERNEL_USER, message=f"line {i}").SerializeToString()
            start = time.perf_counter()
            reply = await nc.request(user_subject(KERNEL_USER, PING), data, timeout=TIMEOUT)
            receipt_at = time.perf_counter()
            PingRequest.FromString(reply.data)
            line_at = await asyncio.wait_for(arrived.get(), TIMEOUT)
            if i >= warmup:
                relay.append((line_at - start) * 1000)
                receipt.append((receipt_at - start) * 1000)
    finally:
        await nc.close()
    return {"connectMs": connect_ms, "relay": relay, "receipt": receipt}


def serve_page(folder: Path) -> tuple[http.server.ThreadingHTTPServer, str]:
    (folder / "index.html").write_text(PAGE)
    shutil.copyfile(BUNDLE, folder / "browser_chat.mjs")
    handler = functools.partial(_QuietHandler, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}/index.html"


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    extensions_map: ClassVar[dict[str, str]] = {
        **http.server.SimpleHTTPRequestHandler.extensions_map,
        ".mjs": "text/javascript",
    }

    def log_message(self, format: str, *args: Any) -> None:
        pass


def _in_thread(coroutine: Coroutine[Any, Any, dict[str, Any]]) -> dict[str, Any]:
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--count", type=int, default=500, help="round trips per round")
    parser.add_argument("--warmup", type=int, default=50)
    args = parser.parse_args()

    from playwright.sync_api import sync_playwright

    results: dict[str, dict[str, list[float]]] = {
        who: {"relay": [], "receipt": [], "connect": []} for who in ("page", "kernel")
    }
    with tempfile.TemporaryDirectory(prefix="labkit-bench-chat-") as tmp:
        settings = Settings(
            home=Path(tmp) / "home",
            nats={"port": 0, "monitor_port": 0, "ws_port": 0},
            nsc={"service_port": 0},
        )
        with Stack(settings) as stack:
            stack.ensure("server")
            nsc = Nsc.from_settings(settings)
            page_creds = nsc.create_user(PAGE_USER).creds
            kernel_creds = nsc.create_user(KERNEL_USER).creds
            server, url = serve_page(Path(tmp))
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(
                    executable_path=CHROMIUM, args=CHROMIUM_FLAGS, headless=True
                )
                page = browser.new_page()
                page.goto(url)
                page.wait_for_function("window.benchReady === true")
                for _ in range(args.rounds):
                    page_round = page.evaluate(
                        "(options) => window.runRound(options)",
                        {
                            "servers": nats_ws_urls(settings),
                            "creds": page_creds,
                            "count": args.count,
                            "warmup": args.warmup,
                        },
                    )
                    # (playwright's sync API holds this thread's event loop: another thread)
                    kernel = _in_thread(
                        kernel_round(settings, kernel_creds, args.count, args.warmup)
                    )
                    for who, measured in (("page", page_round), ("kernel", kernel)):
                        results[who]["relay"] += measured["relay"]
                        results[who]["receipt"] += measured["receipt"]
                        results[who]["connect"].append(measured["connectMs"])
                browser.close()
            server.shutdown()

    print(f"{args.rounds} rounds x {args.count} round trips each (after {args.warmup} warm-up)")
    print("| client | relay p50 ms | relay p99 ms | receipt p50 ms | receipt p99 ms | connect ms |")
    print("|---|---:|---:|---:|---:|---:|")
    names = {"page": "page: nats.js over WebSocket, Chromium", "kernel": "kernel: nats-py, TCP"}
    for who, values in results.items():
        print(
            f"| {names[who]} | {statistics.median(values['relay']):.2f} "
            f"| {percentile(values['relay'], 0.99):.2f} "
            f"| {statistics.median(values['receipt']):.2f} "
            f"| {percentile(values['receipt'], 0.99):.2f} "
            f"| {statistics.median(values['connect']):.0f} |"
        )
    ratio = statistics.median(results["page"]["relay"]) / statistics.median(
        results["kernel"]["relay"]
    )
    print(f"page/kernel relay round trip (medians): {ratio:.2f}x")
    data = BUNDLE.read_bytes()
    print(
        f"bundle {BUNDLE.name}: {len(data) / 1024:.0f} KiB minified, "
        f"{len(gzip.compress(data, 9)) / 1024:.0f} KiB gzip -9"
    )


if __name__ == "__main__":
    main()
