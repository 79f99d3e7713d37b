"""`python -m labkit classroom up | down | status`: the shared stack plus a JupyterHub."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from labkit.classroom.hub_process import (
    HubError,
    learners_online,
    preflight,
    running_hub,
    start_hub,
    stop_hub,
)
from labkit.classroom.settings import ClassroomSettings
from labkit.settings import Settings
from labkit.stack import Stack


def add_hub_commands(actions: Any) -> None:
    """Add `up`, `down` and `status` to the `classroom` command's subcommands."""
    up = actions.add_parser("up", help="start the stack and the hub; print the hub's URL")
    up.add_argument("--json", action="store_true", help="print the state as JSON")
    up.set_defaults(handler=_up)

    down = actions.add_parser("down", help="stop the hub (learners' servers too), then the stack")
    down.add_argument(
        "--keep-stack", action="store_true", help="stop only the hub; the stack keeps running"
    )
    down.set_defaults(handler=_down)

    status = actions.add_parser("status", help="the hub, the stack and the learners online")
    status.add_argument("--json", action="store_true", help="print the state as JSON")
    status.set_defaults(handler=_status)


def _up(args: argparse.Namespace) -> int:
    settings = Settings()
    classroom = ClassroomSettings()
    preflight(classroom)  # before the stack starts: a refused hub leaves nothing running
    Stack(settings, detach=True).ensure()
    hub = start_hub(settings, classroom)
    if args.json:
        print(json.dumps({"home": str(settings.home), "hub": hub.as_dict()}, indent=2))
    else:
        print(f"labkit classroom in {settings.home}")
        print(f"  hub       {hub.url}/   (pid {hub.pid}; learners log in with their email)")
        print("  stop it with: python -m labkit classroom down")
    return 0


def _down(args: argparse.Namespace) -> int:
    settings = Settings()
    hub = "stopped the hub" if stop_hub(settings) else "no hub was running"
    if args.keep_stack:
        print(f"{hub}; the stack keeps running")
        return 0
    stopped = Stack(settings).down()
    print(f"{hub}; stopped: " + (", ".join(stopped) if stopped else "no stack was running"))
    return 0


def _status(args: argparse.Namespace) -> int:
    settings = Settings()
    stack = Stack(settings).status()
    hub = running_hub(settings)
    online: list[dict[str, Any]] = []
    problem = ""
    if hub is not None:
        try:
            online = learners_online(settings, hub)
        except HubError as exc:
            problem = str(exc)
    running = hub is not None and not problem and all(s.running for s in stack.values())
    if args.json:
        body = {
            "home": str(settings.home),
            "hub": {**hub.as_dict(), "running": True} if hub else {"running": False},
            "components": {name: s.as_dict() for name, s in stack.items()},
            "learners_online": online,
        }
        if problem:
            body["problem"] = problem
        print(json.dumps(body, indent=2))
    else:
        print(f"labkit classroom in {settings.home}")
        print(f"  hub       {'running' if hub else 'stopped':<10} {hub.url if hub else ''}")
        for name, state in stack.items():
            print(f"  {name:<9} {state.state:<10} {state.url or ''}")
        print(f"  learners online: {len(online)}")
        for learner in online:
            print(f"    {learner['name']}  (last active {learner['last_activity']})")
        if problem:
            print(f"  problem: {problem}", file=sys.stderr)
    return 0 if running else 3
