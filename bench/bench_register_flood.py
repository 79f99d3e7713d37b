"""Does a flood of /register slow other learners' logins, with and without the limit?

Starts a real stack (NATS + NSC service + the auth service as its own waitress
process) in a temporary data directory, twice: once with the default
registrations-per-address limit, once with it lifted (as before the limit). Each
time it measures one learner's sequential logins alone (the baseline, same run),
then again while flooder threads POST /register from another client address
(127.0.0.2) as fast as they can, and prints the slowdown as a ratio.

    .venv/bin/python bench/bench_register_flood.py [--logins 12] [--flooders 4]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import statistics
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

from labkit.auth.client import AuthClient
from labkit.settings import Settings
from labkit.stack import Stack

PASSWORD = "correct horse battery staple"
FLOOD_ADDRESS = "127.0.0.2"


def _configure(home: Path, registrations_per_address: str | None) -> Settings:
    os.environ.update(
        {
            "LABKIT_HOME": str(home),
            "LABKIT_NATS_PORT": "0",
            "LABKIT_NATS_MONITOR_PORT": "0",
            "LABKIT_NSC_SERVICE_PORT": "0",
            "LABKIT_AUTH_PORT": "0",
        }
    )
    os.environ.pop("LABKIT_AUTH_REGISTRATIONS_PER_ADDRESS", None)
    if registrations_per_address is not None:
        os.environ["LABKIT_AUTH_REGISTRATIONS_PER_ADDRESS"] = registrations_per_address
    return Settings()


def _logins(client: AuthClient, email: str, count: int) -> list[float]:
    times = []
    for _ in range(count):
        started = time.perf_counter()
        client.login(email, PASSWORD)
        times.append(time.perf_counter() - started)
    return times


def _flood(url: str, stop: threading.Event, codes: Counter[int], lock: threading.Lock) -> None:
    host, port = url.removeprefix("http://").split(":")
    n = 0
    while not stop.is_set():
        n += 1
        body = json.dumps(
            {"email": f"flood-{threading.get_ident()}-{n}@x.org", "password": PASSWORD}
        )
        connection = http.client.HTTPConnection(
            host, int(port), timeout=60, source_address=(FLOOD_ADDRESS, 0)
        )
        try:
            connection.request("POST", "/register", body, {"Content-Type": "application/json"})
            status = connection.getresponse().status
        finally:
            connection.close()
        with lock:
            codes[status] += 1


def _measure(limit: str | None, logins: int, flooders: int) -> dict[str, object]:
    with tempfile.TemporaryDirectory(prefix="labkit-bench-flood-") as tmp:
        stack = Stack(_configure(Path(tmp) / "home", limit))
        try:
            stack.ensure("nats", "nsc", "auth")
            url = stack.url("auth")
            client = AuthClient(url, timeout=120)
            client.register("learner@example.com", PASSWORD)
            client.login("learner@example.com", PASSWORD)  # warm-up, untimed
            alone = _logins(client, "learner@example.com", logins)
            stop, lock, codes = threading.Event(), threading.Lock(), Counter[int]()
            threads = [
                threading.Thread(target=_flood, args=(url, stop, codes, lock))
                for _ in range(flooders)
            ]
            for thread in threads:
                thread.start()
            try:
                flooded = _logins(client, "learner@example.com", logins)
            finally:
                stop.set()
                for thread in threads:
                    thread.join()
        finally:
            stack.down()
    return {"alone": alone, "flooded": flooded, "codes": dict(codes)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--logins", type=int, default=12, help="timed logins per phase")
    parser.add_argument("--flooders", type=int, default=4, help="threads posting /register")
    args = parser.parse_args()
    print("| register limit | login alone | login during flood | ratio | flood answers |")
    print("|---|---|---|---|---|")
    for label, limit in (("default (30 per 10 min)", None), ("lifted (as before)", "1000000")):
        result = _measure(limit, args.logins, args.flooders)
        alone = statistics.median(result["alone"]) * 1000  # type: ignore[arg-type]
        flooded = statistics.median(result["flooded"]) * 1000  # type: ignore[arg-type]
        codes = ", ".join(f"{n}× {code}" for code, n in sorted(result["codes"].items()))  # type: ignore[attr-defined]
        print(f"| {label} | {alone:.0f} ms | {flooded:.0f} ms | {flooded / alone:.1f}× | {codes} |")


if __name__ == "__main__":
    main()
