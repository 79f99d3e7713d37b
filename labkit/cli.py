"""`python -m labkit ...`: up, status, down, creds, server, run, lab, reset, deploy-config,
instructor, classroom."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from labkit.errors import LabkitError
from labkit.settings import Settings
from labkit.stack import ComponentStatus, Stack

MAX_CLUSTER_SIZE = 5


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        result: int = args.handler(args)
    except LabkitError as exc:
        print(f"labkit: {exc}", file=sys.stderr)
        return 1
    return result


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m labkit", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    up = commands.add_parser("up", help="start the stack and leave it running until `down`")
    up.add_argument("components", nargs="*", help="only these (and what they need)")
    up.add_argument("--json", action="store_true", help="print the state as JSON")
    up.add_argument(
        "--cluster",
        type=int,
        default=None,
        metavar="N",
        help="run NATS as N nodes joined by routes (remembered in the data dir; 1: one node)",
    )
    up.set_defaults(handler=_up)

    status = commands.add_parser("status", help="show each component's state and urls")
    status.add_argument("--json", action="store_true", help="print the state as JSON")
    status.set_defaults(handler=_status)

    down = commands.add_parser("down", help="stop the stack's processes")
    down.add_argument("components", nargs="*", help="only these (and what needs them)")
    down.set_defaults(handler=_down)

    creds = commands.add_parser(
        "creds", help="print a user's creds, freshly issued (creates the user if new)"
    )
    creds.add_argument("name")
    creds.add_argument("--account", default=None)
    creds.set_defaults(handler=_creds)

    server = commands.add_parser("server", help="start application server replicas")
    server.add_argument("--replicas", type=int, default=None, help="how many (default: settings)")
    server.add_argument("--json", action="store_true", help="print the state as JSON")
    server.set_defaults(handler=_server)

    run = commands.add_parser("run", help="run every notebook in order, headless")
    run.add_argument("notebooks", nargs="*", help="only these notebook files")
    run.add_argument("--output-dir", default="build/notebooks")
    run.set_defaults(handler=_run)

    lab = commands.add_parser(
        "lab", help="start the stack and JupyterLab on your copy of the notebooks (work/)"
    )
    lab.add_argument("--port", type=int, default=8888)
    lab.set_defaults(handler=_lab)

    reset = commands.add_parser(
        "reset", help="put notebooks of your copy (work/) back as the course has them"
    )
    reset.add_argument("notebooks", nargs="+", help="file names or numbers (03)")
    reset.set_defaults(handler=_reset)

    deploy = commands.add_parser(
        "deploy-config",
        help="write the NATS cluster config, keystore and secrets docker/compose.yaml uses",
    )
    deploy.add_argument(
        "--out", type=Path, default=Path("docker/generated"), help="the folder to write"
    )
    deploy.add_argument(
        "--rotate", action="store_true", help="make new secrets instead of keeping the .env ones"
    )
    deploy.set_defaults(handler=_deploy_config)

    # A class (labkit.classroom): instructors, the learners' roster, the hub.
    from labkit.classroom.accounts import add_instructor_command, add_roster_command
    from labkit.classroom.cli import add_hub_commands

    add_instructor_command(commands)
    classroom = commands.add_parser("classroom", help="run a class on one shared stack")
    classroom_commands = classroom.add_subparsers(dest="classroom_command", required=True)
    add_hub_commands(classroom_commands)
    add_roster_command(classroom_commands)
    return parser


def _up(args: argparse.Namespace) -> int:
    settings = Settings()
    if args.cluster is not None:
        if not 1 <= args.cluster <= MAX_CLUSTER_SIZE:
            print(f"labkit: --cluster must be 1 to {MAX_CLUSTER_SIZE}", file=sys.stderr)
            return 2
        settings.nats.cluster_size = args.cluster
    stack = Stack(settings, detach=True)
    stack.ensure(*args.components)
    _print_state(stack, stack.status(), as_json=args.json)
    return 0


def _server(args: argparse.Namespace) -> int:
    settings = Settings()
    if args.replicas is not None:
        if args.replicas < 1:
            print("labkit: --replicas must be at least 1", file=sys.stderr)
            return 2
        settings.server.replicas = args.replicas
    stack = Stack(settings, detach=True)
    stack.ensure("server")
    _print_state(stack, stack.status(), as_json=args.json)
    return 0


def _status(args: argparse.Namespace) -> int:
    stack = Stack()
    statuses = stack.status()
    _print_state(stack, statuses, as_json=args.json)
    return 0 if all(s.running for s in statuses.values()) else 3


def _down(args: argparse.Namespace) -> int:
    stopped = Stack().down(*args.components)
    print("stopped: " + (", ".join(stopped) if stopped else "nothing was running"))
    return 0


def _creds(args: argparse.Namespace) -> int:
    from labkit.nsc.wrapper import Nsc

    nsc = Nsc.from_settings(Settings())
    nsc.setup()
    if args.name in nsc.users(args.account):
        # An existing user keeps its permissions (the server's are not the template).
        issued = nsc.edit_user(args.name, args.account)
    else:
        issued = nsc.create_user(args.name, args.account)
    sys.stdout.write(issued.creds)
    return 0


def _run(args: argparse.Namespace) -> int:
    from labkit.course import run_course

    return run_course(args.notebooks, output_dir=args.output_dir)


def _lab(args: argparse.Namespace) -> int:
    from labkit.course import run_lab

    return run_lab(port=args.port)


def _reset(args: argparse.Namespace) -> int:
    from labkit.course import notebooks_dir
    from labkit.workcopy import WORK_DIR, reset_notebook

    course = notebooks_dir()
    for name in args.notebooks:
        restored = reset_notebook(course, course.parent / WORK_DIR, name)
        print(f"restored {restored} from {course / restored.name}")
    return 0


def _deploy_config(args: argparse.Namespace) -> int:
    from labkit.deploy import write_deploy_config

    written = write_deploy_config(args.out, rotate=args.rotate)
    secrets = "kept from" if written.kept_secrets else "generated into"
    print(f"deployment config in {written.out}")
    print(f"  operator {written.operator!r}, accounts {', '.join(written.accounts)}")
    print(f"  {len(written.node_configs)} NATS node configs in {written.out / 'nats'}")
    print(f"  secrets {secrets} {written.env_file} (0600)")
    print(f"next: docker compose -f docker/compose.yaml --env-file {written.env_file} up -d")
    return 0


def _print_state(stack: Stack, statuses: dict[str, ComponentStatus], *, as_json: bool) -> None:
    if as_json:
        body = {
            "home": str(stack.settings.home),
            "components": {name: s.as_dict() for name, s in statuses.items()},
        }
        print(json.dumps(body, indent=2))
        return
    print(f"labkit stack in {stack.settings.home}")
    for name, status in statuses.items():
        pid = f"pid {status.pid}" if status.pid else ""
        print(f"  {name:<9} {status.state:<10} {status.url or '':<28} {pid}")
        if status.details.get("ws_url"):
            print(f"  {'':<9} {'':<10} {status.details['ws_url']:<28} browsers (WebSocket)")
