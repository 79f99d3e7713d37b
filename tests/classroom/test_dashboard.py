"""The instructor dashboard behind a real JupyterHub 6.1, watching a real stack.

One hub and one stack for the module; each test registers its own learners. The last
test opens the page in headless Chromium.
"""

from __future__ import annotations

import asyncio
import csv
import io
import re
from typing import Any

import pytest
import requests

from labkit.auth.client import AuthClient, AuthRequestFailed
from labkit.client import connect_as, request
from labkit.discovery import auth_url
from labkit.nsc.names import reserved_reason
from labkit.protocol import EchoRequest, EchoResponse
from labkit.stack import Stack
from tests.classroom.dashboard_fixtures import (  # noqa: F401  (fixtures)
    class_stack,
    hub,
    new_learner,
    proxy_command,
    put_progress,
    put_progress_from_thread,
)
from tests.classroom.dashboard_hub import CURIOUS, INSTRUCTOR, LEARNER, PASSWORD, Hub
from tests.classroom.hub_browser import Chromium, chromium  # noqa: F401  (fixture)

pytestmark = pytest.mark.slow


def xsrf_of(page: str) -> str:
    found = re.search(r'"xsrf": "([^"]+)"', page)
    assert found, "the page carries no xsrf token"
    return found.group(1)


def instructor(hub: Hub) -> tuple[requests.Session, str]:
    """The instructor's session on the dashboard (through the hub's OAuth) and its xsrf token."""
    session = hub.login(INSTRUCTOR)
    page = session.get(hub.dashboard_url, timeout=30)
    assert page.status_code == 200, f"{page.status_code} {page.url}\n{hub.log[-4000:]}"
    assert "Class dashboard" in page.text
    return session, xsrf_of(page.text)


def state(hub: Hub, session: requests.Session, xsrf: str) -> dict[str, Any]:
    answer = session.get(hub.dashboard_url + "api/state", headers={"X-XSRFToken": xsrf}, timeout=30)
    assert answer.status_code == 200, answer.text[:300]
    body: dict[str, Any] = answer.json()
    return body


def row_of(body: dict[str, Any], user_id: str) -> dict[str, Any]:
    rows = [row for row in body["learners"] if row["user_id"] == user_id]
    assert rows, f"{user_id} is not on the dashboard: {body['learners']}"
    return rows[0]


def test_instructor_sees_who_is_online_their_progress_and_stats(
    hub: Hub, class_stack: Stack
) -> None:
    settings = class_stack.settings
    alice = new_learner(settings, "alice@example.com")
    session, xsrf = instructor(hub)

    async def scenario() -> dict[str, Any]:
        nc = await alice.login.connect()
        try:
            reply = await request(
                nc,
                f"{alice.login.user_id}.echo",
                EchoRequest(message="hi"),
                EchoResponse,
                timeout=10,
            )
            assert reply.message
            # Not an EchoRequest: the server answers with an error reply, counted as one.
            bad = await nc.request(f"{alice.login.user_id}.echo", b"\xff\xff\xff", timeout=10)
            assert bad.headers
            await put_progress(settings, alice.login.user_id, "lab01.echo", True, 2)
            await put_progress(settings, alice.login.user_id, "lab02.cache", False, 3)
            return await asyncio.to_thread(state, hub, session, xsrf)
        finally:
            await nc.close()

    body = asyncio.run(scenario())
    row = row_of(body, alice.login.user_id)
    assert row["email"] == "alice@example.com"
    assert row["online"] is True and row["connections"] == 1
    assert row["progress"]["lab01.echo"] == {
        "state": "passed",
        "attempts": 2,
        "at": row["progress"]["lab01.echo"]["at"],
    }
    assert row["progress"]["lab02.cache"]["state"] == "trying"
    assert row["progress"]["lab02.cache"]["attempts"] == 3
    assert {"lab01.echo", "lab02.cache"} <= set(body["exercises"])
    assert row["requests"] == 2 and row["errors"] == 1
    assert body["servers_answering"] == 1
    assert body["problems"] == []
    # The class-wide tap saw alice's echo.
    echoes = [r for r in body["tap"]["rows"] if r["subject"] == f"{alice.login.user_id}.echo"]
    assert echoes and echoes[0]["email"] == "alice@example.com"
    # ...and shows learners' traffic only, not the dashboard's own polling.
    assert all(reserved_reason(r["sender"]) is None for r in body["tap"]["rows"]), body["tap"]
    # The instructor is not a learner of the grid; the stack's own users neither.
    assert all(not r["user_id"].startswith("labkit_") for r in body["learners"])

    # Once alice is gone she is offline (and keeps her progress).
    after = row_of(state(hub, session, xsrf), alice.login.user_id)
    assert after["online"] is False and after["progress"]["lab01.echo"]["state"] == "passed"


def test_a_learner_is_refused_the_page_the_json_and_the_actions(
    hub: Hub, class_stack: Stack
) -> None:
    target = new_learner(class_stack.settings, "target@example.com")
    learner = hub.login(LEARNER)
    # The hub's own check: a learner has no access to the service.
    assert learner.get(hub.dashboard_url, timeout=30).status_code == 403
    assert learner.get(hub.dashboard_url + "api/state", timeout=30).status_code == 403
    revoke = f"{hub.dashboard_url}api/users/{target.login.user_id}/revoke"
    assert learner.post(revoke, timeout=30).status_code == 403

    # A learner the hub lets through (a role gives access): the dashboard's admin check.
    curious = hub.login(CURIOUS)
    page = curious.get(hub.dashboard_url, timeout=30)
    assert page.status_code == 403 and "for the class's instructors" in page.text
    token = curious.cookies.get("_xsrf", path="/services/dashboard/") or ""
    answer = curious.get(
        hub.dashboard_url + "api/state", headers={"X-XSRFToken": token}, timeout=30
    )
    assert answer.status_code == 403 and "instructors" in answer.json()["detail"]
    for action in ("revoke", "password"):
        url = f"{hub.dashboard_url}api/users/{target.login.user_id}/{action}"
        refused = curious.post(url, headers={"X-XSRFToken": token}, timeout=30)
        # Past the xsrf check (the token is theirs): refused for not being an admin.
        assert refused.status_code == 403 and "instructors" in refused.json()["detail"]
    exported = curious.post(
        hub.dashboard_url + "export/progress.csv", data={"_xsrf": token}, timeout=30
    )
    assert exported.status_code == 403 and "instructors" in exported.json()["detail"]
    # Nothing happened to the target: their password still works.
    AuthClient(auth_url(class_stack.settings)).login(target.email, target.password)


def test_revoke_cuts_the_learners_live_connection(hub: Hub, class_stack: Stack) -> None:
    settings = class_stack.settings
    bob = new_learner(settings, "bob@example.com")
    session, xsrf = instructor(hub)
    url = f"{hub.dashboard_url}api/users/{bob.login.user_id}/revoke"

    async def scenario() -> dict[str, Any]:
        closed = asyncio.Event()

        async def on_closed() -> None:
            closed.set()

        nc = await connect_as(
            bob.login.nats.creds,
            servers=bob.login.nats.servers,
            allow_reconnect=False,
            closed_cb=on_closed,
        )
        # Without the xsrf token the POST is refused, and bob stays connected.
        refused = await asyncio.to_thread(session.post, url, timeout=30)
        assert refused.status_code == 403
        await nc.flush(timeout=10)
        answer = await asyncio.to_thread(
            session.post, url, headers={"X-XSRFToken": xsrf}, timeout=30
        )
        assert answer.status_code == 200, answer.text
        await asyncio.wait_for(closed.wait(), 30)
        body: dict[str, Any] = answer.json()
        return body

    body = asyncio.run(scenario())
    assert body == {
        "action": "revoke",
        "user_id": bob.login.user_id,
        "email": "bob@example.com",
        "nats_revoked": True,
        "nats_pushed": True,
    }
    # As the auth service's own revoke: every token bob held is refused too.
    with pytest.raises(AuthRequestFailed) as refused:
        AuthClient(auth_url(settings)).refresh(bob.login)
    assert refused.value.status == 401


def test_reset_password_gives_a_new_one_once(hub: Hub, class_stack: Stack) -> None:
    carol = new_learner(class_stack.settings, "carol@example.com")
    session, xsrf = instructor(hub)
    url = f"{hub.dashboard_url}api/users/{carol.login.user_id}/password"
    answer = session.post(url, headers={"X-XSRFToken": xsrf}, timeout=30)
    assert answer.status_code == 200, answer.text
    new_password = answer.json()["password"]
    client = AuthClient(auth_url(class_stack.settings))
    with pytest.raises(AuthRequestFailed) as refused:
        client.login(carol.email, carol.password)
    assert refused.value.status == 401
    assert client.login(carol.email, new_password).user_id == carol.login.user_id


def test_bad_action_input_gets_a_clear_error(hub: Hub, class_stack: Stack) -> None:
    session, xsrf = instructor(hub)
    headers = {"X-XSRFToken": xsrf}
    unknown = session.post(
        f"{hub.dashboard_url}api/users/01nobody/revoke", headers=headers, timeout=30
    )
    assert unknown.status_code == 404
    assert "no account has the id '01nobody'" in unknown.json()["detail"]
    dave = new_learner(class_stack.settings, "dave@example.com")
    wrong = session.post(
        f"{hub.dashboard_url}api/users/{dave.login.user_id}/delete", headers=headers, timeout=30
    )
    assert wrong.status_code == 404 and "use revoke or password" in wrong.json()["detail"]
    forged = session.post(
        f"{hub.dashboard_url}api/users/{dave.login.user_id}/password",
        headers={"X-XSRFToken": "forged"},
        timeout=30,
    )
    assert forged.status_code == 403
    AuthClient(auth_url(class_stack.settings)).login(dave.email, dave.password)  # unchanged


def test_export_has_every_progress_record(hub: Hub, class_stack: Stack) -> None:
    settings = class_stack.settings
    erin = new_learner(settings, "erin@example.com")
    asyncio.run(put_progress(settings, erin.login.user_id, "lab03.ping", True, 1))
    asyncio.run(put_progress(settings, erin.login.user_id, "lab04.files", False, 4))
    session, xsrf = instructor(hub)
    assert session.post(hub.dashboard_url + "export/progress.csv", timeout=30).status_code == 403
    answer = session.post(
        hub.dashboard_url + "export/progress.csv", data={"_xsrf": xsrf}, timeout=30
    )
    assert answer.status_code == 200, answer.text
    assert answer.headers["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(answer.text)))
    mine = {
        (r["email"], r["exercise_id"], r["state"], r["attempts"])
        for r in rows
        if r["user_id"] == erin.login.user_id
    }
    assert mine == {
        ("erin@example.com", "lab03.ping", "passed", "1"),
        ("erin@example.com", "lab04.files", "trying", "4"),
    }


# The page in headless Chromium: tests/classroom/hub_browser.py's `chromium` fixture
# (skipped without Debian's chromium, except under CI where it fails).
@pytest.fixture
def browser_page(chromium: Chromium) -> Any:
    return chromium.person("instructor")


@pytest.mark.browser
def test_the_instructor_sees_the_grid_render_and_refresh(
    hub: Hub, class_stack: Stack, browser_page: Any
) -> None:
    from playwright.sync_api import expect

    settings = class_stack.settings
    frank = new_learner(settings, "frank@example.com")
    put_progress_from_thread(settings, frank.login.user_id, "lab01.echo", False, 1)

    page = browser_page
    page.goto(f"{hub.url}/hub/login?next=%2Fservices%2Fdashboard%2F")
    page.fill("input[name=username]", INSTRUCTOR)
    page.fill("input[name=password]", PASSWORD)
    page.click("input[type=submit], button[type=submit]")
    page.wait_for_url(f"{hub.dashboard_url}**")

    row = page.locator(f'#grid tr[data-user="{frank.login.user_id}"]')
    expect(row.locator("td.who")).to_have_text("frank@example.com")
    cell = row.locator('td[data-exercise="lab01.echo"]')
    expect(cell).to_have_attribute("data-state", "trying")
    expect(cell).to_have_text("trying (1)")

    # A new report reaches the open page by its polling, no reload.
    put_progress_from_thread(settings, frank.login.user_id, "lab01.echo", True, 2)
    expect(cell).to_have_attribute("data-state", "passed")
    expect(cell).to_have_text("passed (2)")
    expect(row.locator("button[data-action=revoke]")).to_be_visible()
    expect(page.locator("#problems")).to_be_hidden()
