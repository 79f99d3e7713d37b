"""SIGTERM (and Ctrl-C) stop the HTTP services cleanly: exit 0, a log line, no traceback.

Before, waitress died of SIGTERM (exit -15, nothing in the log), and Ctrl-C
printed a traceback.
"""

from __future__ import annotations

import signal
from pathlib import Path

import pytest
import requests

from labkit.stack import Stack
from tests.security.identity_processes import free_port, service_env, start_service

SERVICES = {"nsc": "labkit.nsc.service", "auth": "labkit.auth.app"}


@pytest.mark.parametrize("service", sorted(SERVICES))
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_stops_the_service_cleanly(
    running_stack: Stack, tmp_path: Path, service: str, sig: signal.Signals
) -> None:
    env = service_env(
        running_stack.settings,
        database_url=f"sqlite:///{tmp_path / 'auth.db'}",
        nsc_service_url=running_stack.url("nsc"),
        nats_url=running_stack.url("nats"),
    )
    port = free_port()
    process = start_service(SERVICES[service], port, env, tmp_path / f"{service}.log")
    try:
        assert requests.get(f"http://127.0.0.1:{port}/healthz", timeout=10).ok
        assert process.popen is not None
        process.popen.send_signal(sig)
        code = process.popen.wait(timeout=60)
    finally:
        process.stop()
    output = process.output()
    assert code == 0, output
    assert "Traceback" not in output, output
    assert f"labkit-{service} stopped ({sig.name})" in output
