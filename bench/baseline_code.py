"""`--baseline DIR`: the benches' way to measure the code before a change in the same run.

DIR holds another checkout's `labkit/` package (for example `git archive REV labkit | tar
-x -C DIR`). The bench restarts the application server on it, then on this checkout,
alternately, so both are measured on the same machine at the same load.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from labkit.stack import Stack


def add_baseline_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--baseline", type=Path, help="a directory with another labkit package")


def check_baseline(parser: argparse.ArgumentParser, baseline: Path | None) -> None:
    """Stop with a usage error unless `baseline` is absent or holds a labkit package."""
    if baseline is not None and not (baseline / "labkit" / "__init__.py").exists():
        parser.error(f"{baseline} holds no labkit package (labkit/__init__.py)")


def use_code(stack: Stack, code: Path) -> None:
    """Restart the application server on the labkit package found in `code`."""
    stack.down("server")
    os.environ["PYTHONPATH"] = str(code)
    try:
        stack.ensure("server")
    finally:
        os.environ.pop("PYTHONPATH", None)


def codes_to_measure(checkout: Path, baseline: Path | None) -> list[tuple[str, Path]]:
    """(name, package directory) of each code to measure: the baseline first, when given."""
    codes = [("this checkout", checkout)]
    if baseline is not None:
        codes.insert(0, (f"baseline {baseline}", baseline.resolve()))
    return codes
