"""Memory of one learner's idle JupyterLab server with its kernel: servers per GiB.

Starts a real JupyterLab server (`python -m jupyterlab`, the server a learner's
container runs through jupyterhub-singleuser) on a free loopback port with its own
Jupyter folders, asks for what a browser opening the page asks for, starts a kernel
through its REST API, and measures RSS and PSS
(/proc/<pid>/smaps_rollup) of the server and the kernel after `--idle` seconds:

1. a fresh kernel, idle;
2. the same kernel after a lab's imports (labkit, its widgets, nats, a connection
   to nowhere is not made), idle again: what a learner's kernel holds mid-course.

PSS counts a shared page once across the processes that share it; a learner's
container shares nothing with another's except the image's files in the page cache,
so RSS is the figure to size containers by, PSS the floor on one host.

    .venv/bin/python bench/bench_singleuser_memory.py [--idle 20]
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import psutil
from jupyter_client import BlockingKernelClient

LAB_IMPORTS = (
    "import labkit, labkit.widgets, labkit.labs.echo, labkit.labs.files, nats, ipywidgets\n"
    "from labkit.auth.client import AuthClient\n"
)
BROWSER_LOAD = (
    "/lab",
    "/lab/api/settings",
    "/api/kernelspecs",
    "/api/contents",
    "/lab/api/translations",
    "/api/sessions",
)
STARTUP = 120.0  # seconds: a bound for a stuck start, not a speed claim


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def memory_mb(pid: int) -> tuple[float, float]:
    """(RSS, PSS) of one process, in MB."""
    fields = {}
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()[1:]:
        name, value, *_ = line.split()
        fields[name.rstrip(":")] = int(value)
    return fields["Rss"] / 1024, fields["Pss"] / 1024


def api(base: str, token: str, path: str, method: str = "GET") -> object:
    request = urllib.request.Request(
        f"{base}{path}", method=method, headers={"Authorization": f"token {token}"}
    )
    with urllib.request.urlopen(request, data=b"" if method == "POST" else None, timeout=30) as r:
        return json.loads(r.read() or b"null")


def wait_for_server(base: str, token: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + STARTUP
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"jupyterlab exited with {process.returncode}")
        try:
            api(base, token, "/api/status")
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def measure(server: int, kernel: int, label: str) -> dict[str, float]:
    server_rss, server_pss = memory_mb(server)
    kernel_rss, kernel_pss = memory_mb(kernel)
    figures = {
        "server_rss": server_rss,
        "server_pss": server_pss,
        "kernel_rss": kernel_rss,
        "kernel_pss": kernel_pss,
    }
    total_rss, total_pss = server_rss + kernel_rss, server_pss + kernel_pss
    print(
        f"| {label} | {server_rss:.0f} / {server_pss:.0f} | {kernel_rss:.0f} / {kernel_pss:.0f} "
        f"| {total_rss:.0f} / {total_pss:.0f} | {1024 / total_rss:.1f} / {1024 / total_pss:.1f} |",
        flush=True,
    )
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--idle", type=float, default=20.0, help="seconds idle before measuring")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="labkit-bench-singleuser-") as tmp:
        root = Path(tmp)
        env = {
            **os.environ,
            "JUPYTER_CONFIG_DIR": str(root / "config"),
            "JUPYTER_DATA_DIR": str(root / "data"),
            "JUPYTER_RUNTIME_DIR": str(root / "runtime"),
            "IPYTHONDIR": str(root / "ipython"),
        }
        token, port = secrets.token_hex(16), free_port()
        base = f"http://127.0.0.1:{port}"
        argv = [sys.executable, "-m", "jupyterlab", "--no-browser", f"--ServerApp.port={port}"]
        argv += ["--ServerApp.ip=127.0.0.1", f"--IdentityProvider.token={token}"]
        argv += [f"--ServerApp.root_dir={root}", "--ServerApp.port_retries=0"]
        if os.getuid() == 0:  # a container's root, as here; learners' servers are not root
            argv.append("--ServerApp.allow_root=True")
        log = (root / "jupyterlab.log").open("wb")
        server = subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            try:
                wait_for_server(base, token, server)
            except RuntimeError:
                print((root / "jupyterlab.log").read_text()[-2000:], file=sys.stderr)
                raise
            # What JupyterLab's page asks for when a browser opens it (the page itself,
            # settings, kernel specs, the file browser), so the server holds what it holds
            # for a learner who has the page open.
            for path in BROWSER_LOAD:
                page = urllib.request.Request(
                    f"{base}{path}", headers={"Authorization": f"token {token}"}
                )
                with urllib.request.urlopen(page, timeout=60) as response:
                    response.read()
            kernel = api(base, token, "/api/kernels", method="POST")
            assert isinstance(kernel, dict)
            connection = root / "runtime" / f"kernel-{kernel['id']}.json"
            client = BlockingKernelClient()
            client.load_connection_file(str(connection))
            client.start_channels()
            client.wait_for_ready(timeout=STARTUP)
            (kernel_process,) = psutil.Process(server.pid).children()
            print(f"idle {args.idle:g} s before each measurement\n")
            print("| state | server RSS / PSS MB | kernel RSS / PSS MB | total | per GiB |")
            print("|---|---|---|---|---|")
            time.sleep(args.idle)  # what an idle learner's server settles to
            fresh = measure(server.pid, kernel_process.pid, "fresh kernel")
            reply = client.execute_interactive(LAB_IMPORTS, timeout=STARTUP)
            assert reply["content"]["status"] == "ok", reply["content"]
            time.sleep(args.idle)
            labs = measure(server.pid, kernel_process.pid, "after a lab's imports")
            client.stop_channels()
        finally:
            server.terminate()
            try:
                server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
            log.close()
    if args.json:
        args.json.write_text(json.dumps({"fresh": fresh, "labs": labs}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
