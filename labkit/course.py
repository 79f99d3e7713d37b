"""Run the course: every notebook headless with papermill (`run`), or JupyterLab (`lab`).

Both start the stack first, in this process: each notebook's kernel then calls
`Stack().ensure(...)` on the same data directory and reuses the running
components instead of starting its own. At the end they stop what they started.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

from labkit.errors import LabkitError
from labkit.report import ReportRow, link, notebook_html, render_report
from labkit.stack import ComponentStatus, Stack
from labkit.workcopy import WORK_DIR, WorkCopy, prepare_work_copy

NOTEBOOKS_DIR = Path("notebooks")
NOTEBOOK_PATTERN = "[0-9][0-9]_*.ipynb"
KERNEL_NAME = "python3"
# Seconds a notebook waits for a browser to show its page (notebook 09 reads it).
PAGE_WAIT = "LABKIT_PAGE_WAIT"
LAB_GRACE_SECONDS = 5.0
LAB_STOP_TIMEOUT = 15.0
_ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;]*m")
_MARKED_LINE = re.compile(r"^---->\s*(\d+)\s(.*)$", re.MULTILINE)
CELL_TIMEOUT = 300  # seconds; a stuck cell fails its notebook instead of hanging the run


class CourseError(LabkitError):
    """The notebooks to run (or serve) cannot be found."""


@dataclass(frozen=True)
class NotebookResult:
    """How one notebook's headless run went."""

    notebook: Path
    ok: bool
    seconds: float
    error: str = ""


def notebooks_dir(root: Path | None = None) -> Path:
    """The course's `notebooks/` folder under `root` (default: the current directory)."""
    folder = ((root or Path.cwd()) / NOTEBOOKS_DIR).resolve()
    if not folder.is_dir():
        raise CourseError(
            f"no {NOTEBOOKS_DIR}/ folder in {folder.parent}; run this from the labkit "
            "repository's top folder (where `make run` works)"
        )
    return folder


def course_notebooks(folder: Path) -> list[Path]:
    """The numbered notebooks of the course, in order (00_..., 01_..., ...)."""
    return sorted(folder.glob(NOTEBOOK_PATTERN))


def run_course(
    notebooks: list[str] | None,
    output_dir: str | Path = "build/notebooks",
    report: str | Path | None = None,
) -> int:
    """Execute notebooks in order (all numbered ones when None); 0 if every one passed.

    Executed copies go to `output_dir`, each with its HTML rendering; a table of results
    is printed as they finish, and written as `report` (default: `report.html` beside
    `output_dir`) with a relative link to each notebook's HTML. Components that were
    already running (`python -m labkit up`) keep running.
    """
    paths = [Path(n).resolve() for n in notebooks] if notebooks else _all_notebooks()
    missing = [str(path) for path in paths if not path.is_file()]
    if missing:
        raise CourseError(f"no such notebook: {', '.join(missing)}")
    output = Path(output_dir)
    output.mkdir(parents=True, exist_ok=True)
    results: list[NotebookResult] = []
    # Leaving the `with` stops what this run started; a stack that was already up stays up.
    with _stop_cleanly_on_sigterm(), _no_browser_for_kernels(), Stack() as stack:
        _share_data_dir(stack)
        stack.ensure()
        width = max(len(path.name) for path in paths)
        print(f"{'notebook':<{width}}  {'result':<6}  seconds", flush=True)
        kernel_log = output / "kernels.log"
        for path in paths:
            with _stderr_to(kernel_log):
                result = run_notebook(path, output / path.name)
            results.append(result)
            outcome = "ok" if result.ok else "failed"
            print(f"{path.name:<{width}}  {outcome:<6}  {result.seconds:7.1f}", flush=True)
    report_path = write_report(results, output, Path(report) if report else None)
    failed = [result for result in results if not result.ok]
    for result in failed:
        print(f"\n{result.notebook.name} failed: {result.error}")
        print(f"  executed copy with the failing cell marked: {output / result.notebook.name}")
        print(f"  what the kernels wrote to stderr: {output / 'kernels.log'}")
    print(f"\n{len(results) - len(failed)} of {len(results)} notebooks ran without errors")
    print(f"report: {report_path}")
    return 1 if failed else 0


def write_report(
    results: list[NotebookResult], output_dir: Path, report: Path | None = None
) -> Path:
    """Render each executed notebook in `output_dir` as HTML; write the report page."""
    report = report or output_dir.parent / "report.html"
    rows = []
    for result in results:
        executed = output_dir / result.notebook.name
        href = None
        if executed.is_file():
            try:
                href = link(notebook_html(executed), report.parent)
            except Exception as exc:  # a broken copy must not hide the other notebooks
                print(f"could not render {executed} as HTML: {type(exc).__name__}: {exc}")
        rows.append(ReportRow(result.notebook.name, result.ok, result.seconds, href, result.error))
    report.parent.mkdir(parents=True, exist_ok=True)
    report.write_text(render_report(rows), encoding="utf-8")
    return report


@contextmanager
def _stderr_to(path: Path) -> Iterator[None]:
    """Send this process's stderr, and so the kernels' (they inherit it), to `path`."""
    sys.stderr.flush()
    saved = os.dup(2)
    with open(path, "a") as log:
        os.dup2(log.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)


def run_notebook(notebook: Path, output: Path) -> NotebookResult:
    """Execute one notebook with papermill in its own folder; never raises on a cell error."""
    import papermill
    from papermill.exceptions import PapermillExecutionError

    began = time.monotonic()
    try:
        papermill.execute_notebook(
            str(notebook),
            str(output),
            kernel_name=KERNEL_NAME,
            cwd=str(notebook.parent),
            progress_bar=False,
            execution_timeout=CELL_TIMEOUT,
        )
    except PapermillExecutionError as exc:
        message = _first_line(exc.evalue) or _failing_line(exc.traceback)
        error = f"cell {exc.cell_index}: {exc.ename}" + (f": {message}" if message else "")
        return NotebookResult(notebook, False, time.monotonic() - began, error)
    except Exception as exc:  # a dead kernel, a broken file: report it, run the next notebook
        error = f"{type(exc).__name__}: {_first_line(str(exc))}"
        return NotebookResult(notebook, False, time.monotonic() - began, error)
    return NotebookResult(notebook, True, time.monotonic() - began)


def run_lab(port: int = 8888) -> int:
    """Start the stack, then JupyterLab on the learner's copy until Ctrl-C; then stop both.

    JupyterLab serves `work/` (see `labkit.workcopy`), never `notebooks/`. Components
    that were already running (`python -m labkit up`) keep running.
    """
    course = notebooks_dir()
    work = prepare_work_copy(course, course.parent / WORK_DIR)
    folder = work.folder
    argv = [
        sys.executable,
        "-m",
        "jupyterlab",
        f"--ServerApp.root_dir={folder}",
        "--ServerApp.ip=127.0.0.1",
        f"--ServerApp.port={port}",
        "--ServerApp.open_browser=False",
        # One Ctrl-C stops the server (and its kernels) without asking.
        "--ServerApp.answer_yes=True",
    ]
    if os.geteuid() == 0:
        argv.append("--allow-root")
    with _stop_cleanly_on_sigterm(), _no_browser_for_kernels(), Stack() as stack:
        _share_data_dir(stack)
        statuses = stack.ensure()
        print(lab_banner(stack, statuses, work, port), flush=True)
        lab = _start_jupyterlab(argv)
        try:
            return lab.wait()
        except KeyboardInterrupt:
            _stop_lab(lab)
            return 0


def lab_banner(
    stack: Stack, statuses: dict[str, ComponentStatus], work: WorkCopy, port: int
) -> str:
    """What `make lab` says before JupyterLab starts: the stack, where things are, how to stop."""
    lines = [f"labkit stack in {stack.settings.home}"]
    for name, status in statuses.items():
        pid = f"pid {status.pid}" if status.pid else ""
        lines.append(f"  {name:<9} {status.state:<10} {status.url or '':<28} {pid}".rstrip())
    if work.copied:
        lines.append(f"your copy of the notebooks: {work.folder} (new: {', '.join(work.copied)})")
    else:
        lines.append(f"your copy of the notebooks: {work.folder}")
    lines += [
        "  JupyterLab saves your work there, never in notebooks/; "
        "`python -m labkit reset NOTEBOOK` restores one",
        f"JupyterLab: http://127.0.0.1:{port}/lab (the address with its token follows below)",
        "everything keeps running until you press Ctrl+C here",
    ]
    return "\n".join(lines)


def _start_jupyterlab(argv: list[str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(argv)


def _all_notebooks() -> list[Path]:
    folder = notebooks_dir()
    found = course_notebooks(folder)
    if not found:
        raise CourseError(f"no notebooks named like {NOTEBOOK_PATTERN} in {folder}")
    return found


def _share_data_dir(stack: Stack) -> None:
    # Kernels run in notebooks/, where a relative LABKIT_HOME would name another
    # directory: hand them the absolute one this stack uses.
    os.environ["LABKIT_HOME"] = str(stack.settings.home)


@contextmanager
def _no_browser_for_kernels() -> Iterator[None]:
    """Tell the kernels no browser will show their pages (notebook 09 would wait for one).

    The kernels inherit LABKIT_PAGE_WAIT=0; the previous value is back afterwards.
    """
    before = os.environ.get(PAGE_WAIT)
    os.environ[PAGE_WAIT] = "0"
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(PAGE_WAIT, None)
        else:
            os.environ[PAGE_WAIT] = before


@contextmanager
def _stop_cleanly_on_sigterm() -> Iterator[None]:
    # `kill`, `timeout` or a container stop send SIGTERM, which would end Python without
    # running `finally`: treat it like Ctrl-C so JupyterLab, kernels and stack stop too.
    def interrupt(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    if threading.current_thread() is not threading.main_thread():
        yield  # only the main thread may set signal handlers
        return
    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _stop_lab(lab: subprocess.Popen[bytes]) -> None:
    # A terminal's Ctrl-C reached JupyterLab too and it is stopping its kernels: give it
    # a moment, then SIGTERM, then SIGKILL (at once if the user presses Ctrl-C again).
    try:
        try:
            lab.wait(timeout=LAB_GRACE_SECONDS)
        except subprocess.TimeoutExpired:
            lab.terminate()
            lab.wait(timeout=LAB_STOP_TIMEOUT)
    except (subprocess.TimeoutExpired, KeyboardInterrupt):
        lab.kill()
        lab.wait()


def _failing_line(traceback: list[str]) -> str:
    # A bare `assert` has no message: show the line IPython marked with "---->" instead.
    text = _ANSI_ESCAPE.sub("", "\n".join(traceback))
    marked = _MARKED_LINE.findall(text)
    return f"line {marked[-1][0]}: {marked[-1][1].strip()}" if marked else ""


def _first_line(text: str) -> str:
    lines = text.strip().splitlines()
    return lines[0] if lines else ""
