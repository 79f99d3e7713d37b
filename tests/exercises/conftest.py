"""Fixtures for the exercise checks: the shared test stack, with what each lab's check needs."""

from __future__ import annotations

import pytest

from labkit.settings import Settings
from labkit.stack import Stack


@pytest.fixture(scope="session")
def stack_settings(running_stack: Stack) -> Settings:
    """The shared stack (NATS, NSC), plus the auth service and the object store.

    The application server is not started on it: the lab tests serve their own, with a
    short cache TTL, in the same queue group. A check that needs the labs' routes runs
    them in-process (`tests.exercises.checking.run_check(..., lab_server=True)`).
    """
    running_stack.ensure("auth", "objects")
    return running_stack.settings
