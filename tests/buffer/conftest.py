"""Fixtures for the outbox tests that talk to the shared test stack."""

from __future__ import annotations

import asyncio

import pytest

from labkit.client import connect_as
from labkit.nsc.wrapper import Nsc
from labkit.stack import Stack
from tests.buffer.streams import create_test_stream, issue_test_user


@pytest.fixture(scope="session")
def buffer_creds(running_stack: Stack) -> str:
    """Creds of the `buffer-test` user, whose stream BUFFERTEST exists."""
    creds = issue_test_user(Nsc.from_settings(running_stack.settings))

    async def create() -> None:
        nc = await connect_as(creds, servers=running_stack.url("nats"))
        try:
            await create_test_stream(nc.jetstream())
        finally:
            await nc.close()

    asyncio.run(create())
    return creds


@pytest.fixture(scope="session")
def nats_url(running_stack: Stack) -> str:
    return running_stack.url("nats")
