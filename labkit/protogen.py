"""Regenerate the Python code for labkit's protobuf messages.

Runs grpc_tools' bundled ``protoc`` in-process over every ``*.proto`` file in
``proto/`` and writes ``<name>_pb2.py`` and ``<name>_pb2.pyi`` next to this
module (the .pyi gets a ``# mypy: ignore-errors`` first line, see ``PYI_HEADER``).
Run it with ``python -m labkit.protogen`` (or ``make proto``).
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from collections.abc import Iterator, Sequence
from importlib import resources
from pathlib import Path
from typing import Any

from labkit.errors import LabkitError

REPO_ROOT = Path(__file__).resolve().parents[1]
PROTO_DIR = REPO_ROOT / "proto"
OUT_DIR = REPO_ROOT / "labkit" / "protocol"

# Prepended to every generated .pyi. protoc's stubs do not pass `mypy --strict`
# (protobuf ships no stubs, so `Message` is Any; bare `Mapping`), and mypy checks an
# imported stub whatever `exclude` says. The stubs still give callers their types.
PYI_HEADER = "# mypy: ignore-errors\n"


class ProtocError(LabkitError):
    """protoc could not turn the .proto files into Python code."""


def _load_protoc() -> Any:
    """Import grpc_tools' protoc wrapper, or say how to get it."""
    try:
        from grpc_tools import protoc
    except ImportError as exc:
        raise ProtocError(
            "grpc_tools is not installed, so the protobuf code cannot be generated; "
            "install the test dependencies with `pip install -r requirements.txt`."
        ) from exc
    return protoc


def _well_known_include() -> Path:
    """The directory of .proto files bundled with grpc_tools (google/protobuf/*.proto)."""
    return Path(str(resources.files("grpc_tools") / "_proto"))


@contextlib.contextmanager
def _captured_stderr() -> Iterator[list[str]]:
    """Capture what native code writes to file descriptor 2 (protoc reports errors there).

    Yields a list that holds the captured text once the block has finished. If
    descriptor 2 cannot be redirected, nothing is captured and the list stays empty.
    """
    captured: list[str] = []
    try:
        saved = os.dup(2)
    except OSError:
        yield captured
        return
    with tempfile.TemporaryFile() as sink:
        sys.stderr.flush()
        os.dup2(sink.fileno(), 2)
        try:
            yield captured
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            sink.seek(0)
            captured.append(sink.read().decode("utf-8", errors="replace"))


def generate(proto_dir: Path, out_dir: Path) -> list[Path]:
    """Compile every ``*.proto`` in ``proto_dir`` into ``out_dir``.

    Returns the generated files (``<name>_pb2.py`` and ``<name>_pb2.pyi`` for each
    proto file). Raises :class:`ProtocError` if there is nothing to compile or
    protoc fails.
    """
    proto_dir = Path(proto_dir).resolve()
    out_dir = Path(out_dir).resolve()
    protos = sorted(proto_dir.glob("*.proto"))
    if not protos:
        raise ProtocError(f"No .proto files found in {proto_dir}.")
    out_dir.mkdir(parents=True, exist_ok=True)

    protoc = _load_protoc()
    args = [
        "grpc_tools.protoc",
        f"--proto_path={proto_dir}",
        f"--proto_path={_well_known_include()}",
        f"--python_out={out_dir}",
        f"--pyi_out={out_dir}",
        *(str(p) for p in protos),
    ]
    with _captured_stderr() as stderr:
        code = int(protoc.main(args))
    if code != 0:
        details = "".join(stderr).strip() or "(protoc printed nothing)"
        raise ProtocError(
            f"protoc failed (exit code {code}) compiling {', '.join(p.name for p in protos)}:\n"
            f"{details}"
        )

    outputs = [out_dir / f"{p.stem}_pb2{suffix}" for p in protos for suffix in (".py", ".pyi")]
    missing = [str(p) for p in outputs if not p.is_file()]
    if missing:
        raise ProtocError(f"protoc reported success but did not write: {', '.join(missing)}")
    for path in outputs:
        if path.suffix == ".pyi":
            text = path.read_text(encoding="utf-8")
            if not text.startswith(PYI_HEADER):
                path.write_text(PYI_HEADER + text, encoding="utf-8")
    return outputs


def main(argv: Sequence[str] | None = None) -> int:
    """Regenerate ``labkit/protocol/*_pb2.py(i)`` from ``proto/``; returns the exit code."""
    if argv:
        print("usage: python -m labkit.protogen  (takes no arguments)", file=sys.stderr)
        return 2
    try:
        outputs = generate(PROTO_DIR, OUT_DIR)
    except ProtocError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    for path in outputs:
        print(f"wrote {path.relative_to(REPO_ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
