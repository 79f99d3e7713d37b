"""The dashboard page in headless Chromium: the instructor logs in, the grid renders, refreshes.

Debian's chromium at /usr/bin/chromium, driven by playwright (as tests/browser does):
without it the test skips, except under CI where it fails.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from labkit.stack import Stack
from tests.browser.conftest import CHROMIUM, CHROMIUM_FLAGS, _missing, in_ci
from tests.classroom.dashboard_fixtures import (  # noqa: F401  (fixtures)
    class_stack,
    hub,
    new_learner,
    proxy_command,
    put_progress_from_thread,
)
from tests.classroom.dashboard_hub import INSTRUCTOR, PASSWORD, Hub

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture
def browser_page() -> Iterator[Any]:
    reason = _missing()
    if reason is not None:
        if in_ci():
            pytest.fail(f"CI must run the browser tests, but {reason}", pytrace=False)
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    playwright = sync_playwright().start()
    try:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_FLAGS, headless=True
        )
        try:
            page = browser.new_page()
            page.set_default_timeout(30_000)
            yield page
        finally:
            browser.close()
    finally:
        playwright.stop()


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
