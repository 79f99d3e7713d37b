"""How long do `make run` and the notebook tests take, per notebook, and where does it go?

Measures, on this machine, in data directories of their own on free ports:

- `make run`: `labkit.course.run_course` on every notebook (the stack starts once,
  before the first notebook; each notebook is one papermill kernel);
- the notebook tests: `pytest notebooks/` in a subprocess (nbval; each notebook's
  kernel starts the components it needs, and they stop with that kernel);
- kernel start: papermill on a one-cell notebook (median of 3);
- stack start: `Stack().ensure()` of every component in an empty data directory, and
  of each notebook's components in a data directory that exists (what a notebook's
  kernel does under pytest: keys exist, no process runs);
- lab work: the rest of each notebook's time.

Prints Markdown tables (the target is under 4 minutes for each of the two runs).

    .venv/bin/python bench/bench_course.py [--skip-run] [--skip-pytest]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ElementTree
from collections import defaultdict
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_notebook

from labkit.course import course_notebooks, run_course, run_notebook
from labkit.settings import Settings
from labkit.stack import Stack

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"
TARGET_SECONDS = 240.0
PORT_VARIABLES = ("NATS_PORT", "NATS_MONITOR_PORT", "NSC_SERVICE_PORT", "AUTH_PORT", "S3_PORT")
_ENSURE = re.compile(r"\.ensure\(([^)]*)\)")
_COMPONENTS_PARAMETER = re.compile(r"components\s*=\s*\(([^)]*)\)")
_NAME = re.compile(r"[\"']([a-z#0-9]+)[\"']")
_NOTEBOOK_FILE = re.compile(r"[^./]+\.ipynb")


def _isolate(home: Path) -> None:
    """This process (and the kernels it starts) use `home` and free ports."""
    os.environ["LABKIT_HOME"] = str(home)
    for variable in PORT_VARIABLES:
        os.environ[f"LABKIT_{variable}"] = "0"


def _components_of(notebook: Path) -> tuple[str, ...]:
    """The components a notebook ensures, read from its code (its `ensure(...)` calls)."""
    found: list[str] = []
    cells = nbformat.read(notebook, as_version=4).cells
    source = "\n".join(cell.source for cell in cells if cell.cell_type == "code")
    for arguments in _ENSURE.findall(source):
        names = _NAME.findall(arguments)
        if not names and "components" in arguments:
            parameter = _COMPONENTS_PARAMETER.search(source)
            names = _NAME.findall(parameter.group(1)) if parameter else []
        found += [name for name in names if name not in found]
    return tuple(found)


def kernel_start_seconds(folder: Path, runs: int = 3) -> float:
    """papermill on a one-cell notebook: kernel start, execution, shutdown."""
    notebook = new_notebook(cells=[new_code_cell("1 + 1")])
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3"}
    path = folder / "trivial.ipynb"
    nbformat.write(notebook, path)
    times = []
    for _ in range(runs):
        result = run_notebook(path, folder / "trivial.out.ipynb")
        assert result.ok, result.error
        times.append(result.seconds)
    return statistics.median(times)


def stack_start_seconds(
    folder: Path, sets: set[tuple[str, ...]], runs: int = 3
) -> tuple[float, dict[str, float]]:
    """Cold `ensure()` of everything in an empty data dir; then of each set (median of runs)."""
    settings = Settings(home=folder / "stack-home")
    with Stack(settings) as stack:
        began = time.perf_counter()
        stack.ensure()
        everything = time.perf_counter() - began
        stack.down()
        per_set = {}
        for names in sorted(sets):
            if not names:
                continue
            times = []
            for _ in range(runs):
                began = time.perf_counter()
                stack.ensure(*names)
                times.append(time.perf_counter() - began)
                stack.down()
            per_set[",".join(names)] = statistics.median(times)
    return everything, per_set


def make_run(folder: Path) -> tuple[float, dict[str, tuple[float, bool]]]:
    """`run_course` on every notebook: wall seconds, and each notebook's seconds and result."""
    _isolate(folder / "run-home")
    output = io.StringIO()
    began = time.perf_counter()
    cwd = Path.cwd()
    os.chdir(ROOT)
    try:
        with contextlib.redirect_stdout(output):
            run_course(None, output_dir=folder / "build" / "notebooks")
    finally:
        os.chdir(cwd)
    wall = time.perf_counter() - began
    rows = {}
    for line in output.getvalue().splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[0].endswith(".ipynb") and parts[1] in ("ok", "failed"):
            rows[parts[0]] = (float(parts[2]), parts[1] == "ok")
    return wall, rows


def pytest_notebooks(folder: Path) -> tuple[float, dict[str, tuple[float, bool]]]:
    """`pytest notebooks/` in a subprocess: wall seconds, each notebook's seconds and result."""
    report = folder / "junit.xml"
    began = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "pytest", "notebooks/", "-q", f"--junitxml={report}"],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        check=False,
    )
    wall = time.perf_counter() - began
    seconds: dict[str, float] = defaultdict(float)
    ok: dict[str, bool] = defaultdict(lambda: True)
    for case in ElementTree.parse(report).iter("testcase"):
        # nbval's cases are the cells, classed by notebook: "notebooks.00_start_here.ipynb".
        found = _NOTEBOOK_FILE.search(case.get("classname", ""))
        if found is None:
            continue
        name = found.group(0)
        seconds[name] += float(case.get("time", 0))
        failed = case.find("failure") is not None or case.find("error") is not None
        ok[name] = ok[name] and not failed
    return wall, {name: (seconds[name], ok[name]) for name in seconds}


def _cell(value: float | None) -> str:
    return "—" if value is None else f"{value:.1f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--skip-run", action="store_true", help="do not time make run")
    parser.add_argument("--skip-pytest", action="store_true", help="do not time pytest")
    args = parser.parse_args()
    notebooks = course_notebooks(NOTEBOOKS)
    components = {path.name: _components_of(path) for path in notebooks}
    with tempfile.TemporaryDirectory(prefix="labkit-bench-course-") as tmp:
        folder = Path(tmp)
        _isolate(folder / "probe-home")
        kernel = kernel_start_seconds(folder)
        stack_all, stack_sets = stack_start_seconds(folder, set(components.values()))
        run_wall, run_rows = make_run(folder) if not args.skip_run else (None, {})
        test_wall, test_rows = pytest_notebooks(folder) if not args.skip_pytest else (None, {})

    cpus = os.cpu_count()
    print(f"{len(notebooks)} notebooks, {cpus} cores, Python {sys.version.split()[0]}\n")
    print(
        "| notebook | components | make run s | lab work s | pytest s | "
        "stack start s | lab work s |"
    )
    print("|---|---|---:|---:|---:|---:|---:|")
    totals = defaultdict(float)
    for path in notebooks:
        name = path.name
        names = components[name]
        stack = stack_sets.get(",".join(names), 0.0)
        run = run_rows.get(name)
        test = test_rows.get(name)
        run_work = run[0] - kernel if run else None
        test_work = test[0] - kernel - stack if test else None
        flags = "" if (not run or run[1]) and (not test or test[1]) else " (failed)"
        print(
            f"| {name}{flags} | {', '.join(names) or '—'} | {_cell(run and run[0])} | "
            f"{_cell(run_work)} | {_cell(test and test[0])} | {stack:.1f} | {_cell(test_work)} |"
        )
        for key, value in (
            ("run", run[0] if run else 0.0),
            ("run_work", run_work or 0.0),
            ("test", test[0] if test else 0.0),
            ("stack", stack),
            ("test_work", test_work or 0.0),
        ):
            totals[key] += value
    print(
        f"| **sum** | | {totals['run']:.1f} | {totals['run_work']:.1f} | {totals['test']:.1f} | "
        f"{totals['stack']:.1f} | {totals['test_work']:.1f} |"
    )
    print(
        f"\nkernel start (papermill, one-cell notebook, median of 3): {kernel:.1f} s per notebook"
    )
    print(f"stack start, every component, empty data dir: {stack_all:.1f} s")
    per_set = ", ".join(f"{names}: {seconds:.1f} s" for names, seconds in stack_sets.items())
    print(f"stack start per component set, existing data dir (median of 3): {per_set}")
    print("lab work = a notebook's time - kernel start - (pytest) its stack start: estimates\n")
    print("| run | wall s | stack start s | kernel starts s | lab work s | other s | target |")
    print("|---|---:|---:|---:|---:|---:|---|")
    count = len(notebooks)
    if run_wall is not None:
        other = run_wall - stack_all - count * kernel - totals["run_work"]
        verdict = "ok" if run_wall < TARGET_SECONDS else "over"
        print(
            f"| make run (run_course) | {run_wall:.1f} | {stack_all:.1f} (once) | "
            f"{count * kernel:.1f} | {totals['run_work']:.1f} | {other:.1f} | "
            f"< {TARGET_SECONDS:.0f} s: {verdict} |"
        )
    if test_wall is not None:
        other = test_wall - totals["stack"] - count * kernel - totals["test_work"]
        verdict = "ok" if test_wall < TARGET_SECONDS else "over"
        print(
            f"| pytest notebooks/ | {test_wall:.1f} | {totals['stack']:.1f} (per notebook) | "
            f"{count * kernel:.1f} | {totals['test_work']:.1f} | {other:.1f} | "
            f"< {TARGET_SECONDS:.0f} s: {verdict} |"
        )


if __name__ == "__main__":
    main()
