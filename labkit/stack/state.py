"""The state file: each running component's pid, start time, ports and urls.

Clients and notebooks find endpoints here, never from hard-coded ports.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from labkit.files import write_atomic
from labkit.settings import Settings
from labkit.stack.errors import StackError

Records = dict[str, dict[str, Any]]


def load_records(path: Path) -> Records:
    """The component records saved in the state file ({} when there is none)."""
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except ValueError:
        return {}  # a torn or hand-edited file: treat as empty, the sweep cleans up
    components = data.get("components", {}) if isinstance(data, dict) else {}
    return {name: dict(record) for name, record in components.items() if isinstance(record, dict)}


def save_records(path: Path, home: Path, records: Records) -> None:
    write_atomic(path, json.dumps({"home": str(home), "components": records}, indent=2) + "\n")


def component_record(name: str, settings: Settings | None = None) -> dict[str, Any]:
    """The saved record of a running component, e.g. `component_record("nats")["url"]`."""
    settings = settings or Settings()
    record = load_records(settings.paths.state_file).get(name)
    if record is None:
        raise StackError(
            f"the {name!r} component is not running in {settings.home}; start it with "
            f"`python -m labkit up` or `Stack().ensure({name!r})`"
        )
    return record
