"""The object store component: nanio, an S3-compatible server from PyPI, on loopback.

It checks SigV4 signatures (a tampered or expired presigned URL is refused),
honours presigned expiry, and keeps objects as files under `<home>/objects/`, so
they survive a restart. Its keys are generated on the first start into
`<home>/secrets/s3-keys.json` (0600); its options file, which holds them too, is
0600 as well. To use MinIO or another S3 endpoint instead, set
`LABKIT_S3_ENDPOINT` and its keys: clients then ignore this component.
"""

from __future__ import annotations

import json
import sys
import urllib.error
import urllib.request

from labkit.files import write_private
from labkit.objects.endpoint import COMPONENT, S3Keys, embedded_keys
from labkit.stack.component import Component, Launch, Record, register
from labkit.stack.ports import PortAllocator

NANIO_LOG_LEVEL = "warning"


def render_options(keys: S3Keys) -> str:
    """nanio's options file: the one user the stack signs with (pure)."""
    return (
        "# Written by labkit at each start; the keys are in secrets/s3-keys.json.\n"
        "[server]\n"
        f"log_level = {json.dumps(NANIO_LOG_LEVEL)}\n\n"
        "[[users]]\n"
        f"access_key = {json.dumps(keys.access_key)}\n"
        f"secret_key = {json.dumps(keys.secret_key)}\n"
    )


def s3_answers(url: str, timeout: float = 0.5) -> bool:
    """True when an S3 server answers at `url`: it refuses an unsigned request with XML."""
    try:
        with urllib.request.urlopen(f"{url}/", timeout=timeout) as response:
            return 200 <= int(response.status) < 300
    except urllib.error.HTTPError as refused:
        with refused:
            return refused.code == 403 and b"<Error>" in refused.read(4096)
    except (urllib.error.URLError, OSError, ValueError):
        return False


@register
class ObjectStoreComponent(Component):
    """The embedded S3-compatible object store (nanio)."""

    name = COMPONENT
    description = "object store (S3-compatible, nanio)"

    def prepare(self, ports: PortAllocator) -> Launch:
        s3, paths = self.settings.s3, self.settings.paths
        keys = embedded_keys(self.settings, create=True)
        options = paths.secrets_dir / "nanio-options.toml"
        write_private(options, render_options(keys))
        paths.objects_dir.mkdir(parents=True, exist_ok=True)
        port = ports.take(s3.port)
        # Flags rather than the options file for the rest: they win over any NANIO_*
        # variables the user's environment may hold.
        argv = [
            sys.executable,
            "-m",
            "nanio",
            "serve",
            "--options",
            str(options),
            "--data-dir",
            str(paths.objects_dir),
            "--host",
            s3.host,
            "--port",
            str(port),
            "--region",
            s3.region,
            "--workers",
            str(s3.workers),
            "--no-access-log",
        ]
        record = {
            "url": f"http://{s3.host}:{port}",
            "endpoint": f"{s3.host}:{port}",
            "region": s3.region,
            "data_dir": str(paths.objects_dir),
            "keys_file": str(paths.s3_keys_file),
        }
        return Launch(argv=argv, record=record, env=self.child_env())

    def is_healthy(self, record: Record) -> bool:
        return s3_answers(str(record["url"]))
