"""The Python that learners' servers run: this venv's packages, an interpreter they may run.

Learners run as their own OS accounts, so every file their server loads must be
readable by others: the venv, labkit, the course, and the interpreter itself. A venv
made from a Python under /root (pyenv's, say) fails that last test: /root is 0700.
Then labkit makes a small venv next to this one, from a system Python of the same
version (`/usr/bin/python3.11`), whose one `.pth` line adds this venv's site-packages:
the same packages, an interpreter learners can run, nothing installed twice.
"""

from __future__ import annotations

import stat
import subprocess
import sys
import sysconfig
from pathlib import Path

from labkit.errors import LabkitError

BRIDGE_NAME = "learner-python"
BRIDGE_PTH = "labkit-venv.pth"


class LearnerPythonError(LabkitError):
    """No Python that learners' OS accounts could run was found."""


def unreachable_by_others(path: Path, *, executable: bool = False) -> Path | None:
    """The first folder or file on `path` (symlinks followed) closed to other users.

    Folders on the way must let others through (x); a folder at the end must also be
    listable (r), a file readable (r) and, when `executable`, runnable (x).
    """
    resolved = path.resolve()
    for part in [*reversed(resolved.parents), resolved]:
        needed = stat.S_IXOTH
        if part == resolved:
            needed = stat.S_IROTH | (stat.S_IXOTH if part.is_dir() or executable else 0)
        if part.stat().st_mode & needed != needed:
            return part
    return None


def learner_python(preferred: Path | None = None) -> Path:
    """The interpreter for learners' servers (made, when needed, as a bridge venv)."""
    site_packages = Path(sysconfig.get_paths()["purelib"])
    blocked = unreachable_by_others(site_packages)
    if blocked is not None:
        raise LearnerPythonError(
            f"learners cannot read this venv's packages ({blocked} is closed to others); "
            "install labkit where every user may read it (e.g. /opt/labkit)"
        )
    if preferred is None and unreachable_by_others(Path(sys.executable), executable=True) is None:
        return Path(sys.executable)
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    base = preferred or Path(f"/usr/bin/python{version}")
    if not base.exists() or unreachable_by_others(base, executable=True) is not None:
        closed = unreachable_by_others(Path(sys.executable), executable=True)
        raise LearnerPythonError(
            f"learners cannot run this venv's Python ({sys.executable}: {closed} is "
            "closed to others) and there is "
            f"no usable {base}: install Python {version} for everyone (Debian: "
            f"python{version}) or set LABKIT_CLASSROOM_LEARNER_PYTHON to one"
        )
    return _bridge_venv(base, site_packages, version)


def _bridge_venv(base: Path, site_packages: Path, version: str) -> Path:
    bridge = Path(sys.prefix) / BRIDGE_NAME
    python = bridge / "bin" / "python"
    if not python.exists():
        subprocess.run([str(base), "-m", "venv", "--without-pip", str(bridge)], check=True)
    found = subprocess.run(
        [str(python), "-c", "import sys; print(f'{sys.version_info[0]}.{sys.version_info[1]}')"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    if found != version:
        raise LearnerPythonError(
            f"{base} is Python {found}, this venv is {version}: their packages do not mix; "
            f"set LABKIT_CLASSROOM_LEARNER_PYTHON to a Python {version}"
        )
    own_site = Path(
        subprocess.run(
            [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    )
    # An `import` line in a .pth runs at start-up; addsitedir also reads that folder's
    # own .pth files (labkit's editable install is one).
    (own_site / BRIDGE_PTH).write_text(f"import site; site.addsitedir({str(site_packages)!r})\n")
    # Jupyter looks for its config under sys.prefix/etc/jupyter (the file that enables
    # JupyterLab's server extension: without it /lab answers 404) and for JupyterLab's
    # assets and kernelspecs under sys.prefix/share/jupyter. The bridge's prefix is not
    # the venv's: both point into the venv.
    for folder in ("etc/jupyter", "share/jupyter"):
        _link_into(bridge / folder, Path(sys.prefix) / folder)
    return python


def _link_into(link: Path, target: Path) -> None:
    """`link` as a symlink to `target` (made, or mended when it points elsewhere)."""
    if not target.is_dir() or (link.is_symlink() and link.readlink() == target):
        return
    if link.is_symlink():
        link.unlink()
    elif link.exists():
        raise LearnerPythonError(
            f"{link} is in the way of a link to {target}: remove it and start the classroom again"
        )
    link.parent.mkdir(parents=True, exist_ok=True)
    link.symlink_to(target)
