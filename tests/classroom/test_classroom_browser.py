"""A class, end to end, in headless Chromium (`make soak`): the instructor adds three
learners with the CLI; each logs in through the hub's page, gets a JupyterLab of their
own (their own OS account), runs notebook 03 and passes its first exercise by typing
the answer; the instructor's dashboard shows the three online and passed; a learner
sent to the dashboard is refused.

Screenshots, the pages' console and the hub's log go to build/screenshots/.
"""

from __future__ import annotations

import re
import secrets
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from labkit.classroom.learner import read_learner_file
from labkit.classroom.learner_home import LearnerHome
from labkit.classroom.os_accounts import account_name, find_account
from labkit.exercises.lab03 import ex1
from tests.browser.jupyter import SCREENSHOTS
from tests.browser.learner import cell_index, run_cells
from tests.browser.notebook_page import NotebookPage
from tests.classroom.hub_browser import (
    Chromium,
    LearnerLab,
    chromium,
    save_screenshot,
    start_run_above,
    start_run_all,
    submit_login,
    type_into_cell,
)
from tests.classroom.hub_fixtures import ClassroomHub, classroom_hub, server_pid

__all__ = ["chromium", "classroom_hub"]  # fixtures

pytestmark = [pytest.mark.soak, pytest.mark.browser]

NOTEBOOK_03 = "03_identified_echo.ipynb"
NOTEBOOK_05 = "05_ping_pong.ipynb"
DASHBOARD = "/services/dashboard/"
# A page's wait for something the dashboard shows after its next poll.
DASHBOARD_WAIT_MS = 60_000


@dataclass
class Person:
    email: str
    password: str
    page: Any


def _instructor_add(hub: ClassroomHub, email: str) -> str:
    """`python -m labkit instructor add EMAIL`; the first password it prints."""
    done = hub.labkit("instructor", "add", email)
    assert done.returncode == 0, done.stderr
    found = re.search(r"^first password \(shown once\): (\S+)$", done.stdout, re.MULTILINE)
    assert found, f"instructor add printed no first password:\n{done.stdout}"
    return found.group(1)


def _roster_add(hub: ClassroomHub, roster: Path, emails: list[str]) -> dict[str, str]:
    """`python -m labkit classroom roster add FILE`; each learner's first password."""
    roster.write_text("# the class\n" + "\n".join(emails) + "\n")
    done = hub.cli("roster", "add", str(roster))
    assert done.returncode == 0, done.stderr
    printed = dict(
        line.split("\t", 1) for line in done.stdout.splitlines() if line.count("\t") == 1
    )
    assert sorted(printed) == sorted(emails), f"roster add printed:\n{done.stdout}"
    return printed


def _user_id(hub: ClassroomHub, email: str) -> str:
    """The learner's id on the bus, from the learner file the spawner wrote."""
    account = find_account(account_name(email, hub.prefix))
    assert account is not None, f"no OS account for {email}"
    return str(read_learner_file(LearnerHome(account.home).learner_file)["user_id"])


def _cell_text(notebook: NotebookPage, index: int) -> str:
    cell = notebook.cells()[index]
    return "\n".join(output["text"] for output in cell.outputs)


@pytest.mark.timeout(1800)
def test_a_class_in_chromium_learners_pass_an_exercise_the_instructor_watches(
    classroom_hub: ClassroomHub, chromium: Chromium, tmp_path: Path
) -> None:
    hub = classroom_hub
    run = secrets.token_hex(2)  # (a second try in the same hub adds new people)
    teacher_email = f"teacher.{run}@example.com"
    teacher_password = _instructor_add(hub, teacher_email)
    emails = [f"{name}.{run}@example.com" for name in ("ada", "bo", "cy")]
    passwords = _roster_add(hub, tmp_path / "roster.txt", emails)

    try:
        # Three learners log in through the hub's page at once: three spawns together.
        learners = [Person(email, passwords[email], chromium.person(email)) for email in emails]
        for learner in learners:
            submit_login(learner.page, hub, learner.email, learner.password, "%2Fhub%2Fspawn")
        labs = {learner.email: LearnerLab.after_login(learner.page, hub) for learner in learners}

        # Each server runs as the learner's own OS account, with the learner's own login.
        uids = set()
        for learner in learners:
            os_name = account_name(learner.email, hub.prefix)
            account = find_account(os_name)
            assert account is not None, f"no OS account for {learner.email}"
            assert Path(f"/proc/{server_pid(os_name)}").stat().st_uid == account.uid
            uids.add(account.uid)
        assert len(uids) == len(learners)

        # Notebook 03 in each, run up to its clean-up (the learner stays connected: the
        # dashboard shows them online), all three at once.
        notebooks = {}
        for learner in learners:
            notebook = NotebookPage(learner.page, labs[learner.email], NOTEBOOK_03)  # type: ignore[arg-type]
            notebook.open()
            notebooks[learner.email] = notebook
        first = notebooks[emails[0]]
        clean_up = cell_index(first, containing="## Clean up")
        imports = cell_index(first, containing="from labkit.exercises.lab03 import")
        answer = cell_index(first, containing=f"{ex1.answer_name} = ____")
        check = cell_index(first, containing=ex1.check_code)
        for notebook in notebooks.values():
            start_run_above(notebook, clean_up)
        for email, notebook in notebooks.items():
            notebook.wait_until_done()
            problems = notebook.problems(upto=clean_up - 1)
            assert not problems, f"{email}'s notebook 03:\n" + "\n".join(problems)

        # Exercise 1: each types the answer into the answer cell, then runs the check.
        for email, notebook in notebooks.items():
            type_into_cell(notebook, answer, ex1.solution_code)
            typed = "".join(notebook.save()["cells"][answer]["source"])
            assert typed.strip() == ex1.solution_code.strip(), (
                f"the editor holds another text than was typed:\n{typed}"
            )
            run_cells(notebook, imports, check)
            verdict = _cell_text(notebook, check)
            assert "Correct" in verdict, f"{email}'s check says: {verdict}"
            notebook.screenshot(SCREENSHOTS / f"classroom-{email.split('.')[0]}-03.png")

        # Two of them ping-pong: notebook 05 in a class pairs each with a classmate from
        # the roster of who runs it (only these two), each playing bob to the other's alice.
        pair = learners[:2]
        ping_pong = {}
        for learner in pair:
            notebook = NotebookPage(learner.page, labs[learner.email], NOTEBOOK_05)  # type: ignore[arg-type]
            notebook.open()
            ping_pong[learner.email] = notebook
        for notebook in ping_pong.values():
            start_run_all(notebook)
        for notebook in ping_pong.values():
            notebook.wait_until_done()
        for me, mate in (pair, pair[::-1]):
            notebook = ping_pong[me.email]
            problems = notebook.problems()
            assert not problems, f"{me.email}'s notebook 05:\n" + "\n".join(problems)
            shown = "\n".join(_cell_text(notebook, index) for index in range(len(notebook.cells())))
            assert f"your classmate {mate.email.split('@')[0]!r} plays alice" in shown, shown
            assert f"alice  is {_user_id(hub, mate.email)} on the bus" in shown
            assert f"bob    is {_user_id(hub, me.email)} on the bus" in shown
            assert "bob wrote origin='alice'; alice received origin='bob'" in shown
            assert "ok: alice and bob chatted; bob could not speak as alice" in shown
            notebook.screenshot(SCREENSHOTS / f"classroom-{me.email.split('.')[0]}-05.png")

        # The instructor's dashboard: the three online, exercise 1 passed.
        teacher = chromium.person(teacher_email)
        submit_login(teacher, hub, teacher_email, teacher_password, "%2Fservices%2Fdashboard%2F")
        teacher.wait_for_url(f"{hub.url}{DASHBOARD}**")
        from playwright.sync_api import expect

        for learner in learners:
            row = teacher.locator(f'#grid tr[data-user="{_user_id(hub, learner.email)}"]')
            expect(row.locator("td.who")).to_have_text(learner.email, timeout=DASHBOARD_WAIT_MS)
            expect(row.locator("td[data-online]")).to_have_attribute(
                "data-online", "true", timeout=DASHBOARD_WAIT_MS
            )
            exercise = row.locator(f'td[data-exercise="{ex1.exercise_id}"]')
            expect(exercise).to_have_attribute("data-state", "passed", timeout=DASHBOARD_WAIT_MS)
        expect(teacher.locator("#online-count")).to_have_text(str(len(learners)))
        save_screenshot(teacher, "classroom-dashboard.png")

        # A learner sent to the dashboard's address is refused.
        curious = learners[0].page.context.new_page()
        refused = curious.goto(f"{hub.url}{DASHBOARD}")
        assert refused is not None and refused.status == 403, (
            f"a learner opening the dashboard got {refused and refused.status}: "
            f"{curious.content()[:500]}"
        )
        save_screenshot(curious, "classroom-dashboard-403.png")
    finally:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        if hub.paths.log_file.exists():
            shutil.copyfile(hub.paths.log_file, SCREENSHOTS / "classroom-hub.log")
