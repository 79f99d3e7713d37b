"""The dashboard's pure parts: the grid, the stats sums, the connections, the records, the CSV,
and where it finds the stack (a deployment's settings and files, or the stack's own)."""

from __future__ import annotations

import asyncio
import base64
import json
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import pytest

from labkit.auth.database import database_url
from labkit.classroom.dashboard.actions import progress_csv
from labkit.classroom.dashboard.collect import class_view
from labkit.classroom.dashboard.credentials import NoStack, dashboard_creds, observer_creds
from labkit.classroom.dashboard.online import connection_users, monitor_urls, online_users
from labkit.classroom.dashboard.page import page_html
from labkit.classroom.dashboard.progress import ProgressRecord, decode_record, encode_report
from labkit.classroom.dashboard.roster import Member
from labkit.classroom.dashboard.stats import ClassStats, sum_stats
from labkit.files import write_private
from labkit.nsc.wrapper import Nsc
from labkit.stack.ports import free_port
from labkit.stack.state import save_records
from tests.conftest import make_settings

ALICE, BOB, TEACHER = "01alice", "01bob", "01teacher"
MEMBERS = [
    Member(ALICE, "alice@example.com", "learner"),
    Member(BOB, "bob@example.com", "learner"),
    Member(TEACHER, "teacher@example.com", "instructor"),
]


def fake_jwt(claims: dict[str, object]) -> str:
    def part(value: dict[str, object]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

    return f"{part({'typ': 'JWT', 'alg': 'ed25519-nkey'})}.{part(claims)}.c2ln"


def test_a_report_reads_back_as_the_record_of_its_key() -> None:
    at = datetime(2026, 12, 5, 10, 30, tzinfo=UTC)
    record = decode_record(f"{ALICE}.lab01.echo", encode_report("lab01.echo", True, 3, at))
    assert record == ProgressRecord(ALICE, "lab01.echo", True, 3, at.isoformat())
    assert record.state == "passed"
    assert decode_record("no-dot", encode_report("x", True, 1, at)) is None
    assert decode_record(f"{ALICE}.x", b"\xff\xff\xff") is None


def test_the_grid_has_every_learner_and_no_instructor_or_stack_user() -> None:
    records = [
        ProgressRecord(ALICE, "lab01", True, 2, ""),
        ProgressRecord(ALICE, "lab02", False, 5, ""),
        ProgressRecord(TEACHER, "lab09", True, 1, ""),
    ]
    stats = ClassStats(servers=2, requests=Counter({ALICE: 7, "labkit_server": 3}))
    online = Counter({ALICE: 2, "labkit_dashboard": 1, "01stranger": 1})
    view = class_view(MEMBERS, online, records, stats)
    rows = {row["user_id"]: row for row in view["learners"]}
    # The roster's learners, then an id seen only on the bus; never the stack's users.
    assert list(rows) == [ALICE, BOB, "01stranger"]
    assert rows[ALICE]["online"] and rows[ALICE]["connections"] == 2
    assert rows[ALICE]["progress"]["lab02"] == {"state": "trying", "attempts": 5, "at": ""}
    assert rows[ALICE]["requests"] == 7
    assert not rows[BOB]["online"] and rows[BOB]["progress"] == {}
    assert rows["01stranger"]["email"] == ""
    assert view["exercises"] == ["lab01", "lab02"]  # the instructor's own run is not a column
    assert view["online_count"] == 2 and view["servers_answering"] == 2


def test_stats_of_every_replica_add_up_per_learner() -> None:
    def answer(requests: dict[str, int], errors: dict[str, int]) -> dict[str, object]:
        data = {"requests_by_user": requests, "errors_by_user": errors, "busy_by_user": {}}
        return {"type": "io.nats.micro.v1.stats_response", "endpoints": [{"data": data}]}

    stats = sum_stats(
        [
            answer({ALICE: 3}, {ALICE: 1}),
            answer({ALICE: 2, BOB: 4}, {}),
            {"type": "io.nats.micro.v1.ping_response"},  # not a stats answer: left out
        ]
    )
    assert stats.servers == 2
    assert stats.requests == Counter({ALICE: 5, BOB: 4})
    assert stats.errors == Counter({ALICE: 1})


def test_connections_count_by_the_name_in_their_jwt() -> None:
    connections = [
        {"cid": 1, "jwt": fake_jwt({"name": ALICE})},
        {"cid": 2, "jwt": fake_jwt({"name": ALICE})},
        {"cid": 3, "jwt": fake_jwt({"name": BOB})},
        {"cid": 4},  # no JWT (not operator mode): nobody to show
        {"cid": 5, "jwt": "not-a-jwt"},
    ]
    assert connection_users(connections) == Counter({ALICE: 2, BOB: 1})


def test_csv_has_one_row_per_record_and_no_formulas() -> None:
    members = [*MEMBERS, Member("01evil", "=HYPERLINK(1)@example.com", "learner")]
    records = [
        ProgressRecord(BOB, "lab01", False, 1, ""),
        ProgressRecord(ALICE, "lab01", True, 2, "2026-12-05T10:00:00+00:00"),
        ProgressRecord("01evil", "lab01", True, 1, ""),
    ]
    lines = progress_csv(members, records).splitlines()
    assert lines[0] == "user_id,email,exercise_id,state,attempts,at"
    assert lines[1:] == [
        "01evil,'=HYPERLINK(1)@example.com,lab01,passed,1,",
        "01alice,alice@example.com,lab01,passed,2,2026-12-05T10:00:00+00:00",
        "01bob,bob@example.com,lab01,trying,1,",
    ]


def test_the_page_escapes_what_it_is_given() -> None:
    page = page_html("/services/dashboard/", "tok</script>", "<b>eve</b>")
    assert "&lt;b&gt;eve&lt;/b&gt;" in page
    assert "tok</script>" not in page


def test_an_unreadable_monitoring_endpoint_is_a_problem_not_a_crash(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "home")
    counts, problems = asyncio.run(online_users(settings))
    assert not counts and "start the stack (`python -m labkit up`)" in problems[0]
    closed = free_port("127.0.0.1")  # nothing listens there
    save_records(
        settings.paths.state_file,
        settings.home,
        {"nats": {"url": "nats://x", "monitor_url": f"http://127.0.0.1:{closed}"}},
    )
    counts, problems = asyncio.run(online_users(settings))
    assert not counts and f"127.0.0.1:{closed} did not answer" in problems[0]


def test_a_deployments_monitoring_urls_come_before_the_state_file(tmp_path: Path) -> None:
    nodes = "http://nats-1:8222, http://nats-2:8222,http://nats-3:8222"
    settings = make_settings(tmp_path / "home", nats={"monitor_url": nodes})
    save_records(
        settings.paths.state_file,
        settings.home,
        {"nats": {"url": "nats://x", "monitor_url": "http://127.0.0.1:1"}},
    )
    assert monitor_urls(settings) == [f"http://nats-{n}:8222" for n in (1, 2, 3)]
    alone = make_settings(tmp_path / "home")
    assert monitor_urls(alone) == ["http://127.0.0.1:1"]


def test_a_deployments_files_stand_for_the_keystore_and_the_database_setting(
    tmp_path: Path,
) -> None:
    settings = make_settings(tmp_path / "home", database={"url": None})
    assert database_url(settings) == f"sqlite:///{settings.paths.auth_database}"
    with pytest.raises(NoStack, match="deploy-config"):
        dashboard_creds(settings)
    url = "postgresql+psycopg://labkit:pw@postgres:5432/labkit"
    write_private(settings.paths.database_url_file, url + "\n")
    write_private(settings.paths.dashboard_creds_file, "the dashboard's creds")
    write_private(settings.paths.observer_creds_file, "the observer's creds")
    assert database_url(settings) == url
    assert dashboard_creds(settings) == "the dashboard's creds"
    assert observer_creds(settings) == "the observer's creds"
    assert not Nsc.from_settings(settings).is_set_up  # read, never minted
    # LABKIT_DATABASE_URL still wins over the file.
    chosen = make_settings(tmp_path / "home", database={"url": "sqlite:///elsewhere.db"})
    assert database_url(chosen) == "sqlite:///elsewhere.db"
