"""The browser chat's JavaScript bundle is what js/ builds, byte for byte, and it ships.

The bundle (labkit/widgets/static/browser_chat.mjs) is committed so a learner needs no
node; these tests rebuild it from js/ (the lockfile's packages, `npm ci`) and fail when
the committed file is stale, like the protobuf check in tests/protocol/. They need node
and npm: without them they skip on a person's machine and fail under CI.
"""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from labkit.widgets.browser_chat import BUNDLE
from tests.browser.conftest import in_ci

REPO = Path(__file__).resolve().parents[2]
JS = REPO / "js"
PROTO = REPO / "proto" / "labkit.proto"
SOURCES = ("package.json", "package-lock.json", "build.mjs", "src")
# Offline when this environment has setuptools (Python 3.11's venvs do; 3.12's do not).
PIP_WHEEL = [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q"] + (
    ["--no-build-isolation"] if importlib.util.find_spec("setuptools") else []
)


def _needs_node() -> None:
    missing = [tool for tool in ("node", "npm") if shutil.which(tool) is None]
    if missing:
        reason = f"{' and '.join(missing)} not found: the bundle check needs node and npm"
        if in_ci():
            pytest.fail(f"CI must rebuild the bundle, but {reason}", pytrace=False)
        pytest.skip(f"{reason} (sudo apt-get install nodejs npm)")


def _run(command: list[str], cwd: Path) -> str:
    done = subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, f"{' '.join(command)} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout


@pytest.fixture(scope="module")
def builder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of js/ (not the repository's, never its node_modules) after `npm ci`."""
    _needs_node()
    copy = tmp_path_factory.mktemp("js")
    for name in SOURCES:
        source = JS / name
        if source.is_dir():
            shutil.copytree(source, copy / name)
        else:
            shutil.copyfile(source, copy / name)
    _run(["npm", "ci", "--no-audit", "--no-fund", "--ignore-scripts"], copy)
    return copy


def _build(builder: Path, out: Path, proto: Path = PROTO) -> bytes:
    _run(["node", "build.mjs", "--out", str(out), "--proto", str(proto)], builder)
    return out.read_bytes()


def test_the_committed_bundle_is_what_js_builds(builder: Path, tmp_path: Path) -> None:
    assert BUNDLE.is_file(), f"{BUNDLE} is missing: run `make bundle` and commit it."
    assert _build(builder, tmp_path / "browser_chat.mjs") == BUNDLE.read_bytes(), (
        "labkit/widgets/static/browser_chat.mjs is stale: it does not match js/ (its sources, "
        "its lockfile) or proto/labkit.proto. Run `make bundle` and commit the result."
    )


def test_a_changed_proto_makes_the_committed_bundle_stale(builder: Path, tmp_path: Path) -> None:
    proto = tmp_path / "labkit.proto"
    text = PROTO.read_text(encoding="utf-8")
    anchor = "  string message = 3;\n}"
    assert anchor in text
    proto.write_text(text.replace(anchor, "  string message = 3;\n  string mood = 4;\n}", 1))
    rebuilt = _build(builder, tmp_path / "browser_chat.mjs", proto)
    assert rebuilt != BUNDLE.read_bytes()
    assert b'mood:{type:"string",id:4' in rebuilt  # the page's PingRequest follows the proto


def test_the_bundle_holds_the_labs_messages_and_no_parser() -> None:
    bundle = BUNDLE.read_text(encoding="utf-8")
    for name in ("PingRequest", "ErrorReply", "destination", "origin"):
        assert name in bundle, name
    assert "export{" in bundle and "default" in bundle  # an ES module anywidget can load
    # The messages come as JSON: protobufjs's .proto parser stays out of the page.
    assert "illegal token" not in bundle


def test_the_wheel_ships_the_bundle(tmp_path: Path) -> None:
    """A learner installs labkit and gets the bundle: it is package data of the wheel."""
    project = tmp_path / "project"  # (a build writes build/ and *.egg-info next to it)
    shutil.copytree(REPO / "labkit", project / "labkit", ignore=shutil.ignore_patterns("__py*"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copyfile(REPO / name, project / name)
    done = subprocess.run(
        [*PIP_WHEEL, "-w", str(tmp_path), str(project)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    (wheel,) = tmp_path.glob("labkit-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        shipped = archive.read("labkit/widgets/static/browser_chat.mjs")
    assert shipped == BUNDLE.read_bytes()
