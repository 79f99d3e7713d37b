"""Ping-pong: the server relays lines and vouches for who sent them."""

from __future__ import annotations

import pytest

from labkit.protocol import PingRequest
from labkit.server import RemoteError
from tests.labs.harness import ALICE, BOB, CAROL, NOBODY, Lab, LabHarness


def test_alice_to_bob_arrives_with_origin_alice(lab: Lab) -> None:
    async def scenario(h: LabHarness) -> tuple[PingRequest, list[PingRequest]]:
        alice, bob = await h.conversation(ALICE), await h.conversation(BOB)
        receipt = await alice.send(BOB, "ping")
        return receipt, await bob.wait_for(1)

    receipt, received = lab.run(scenario)
    expected = PingRequest(origin=ALICE, destination=BOB, message="ping")
    assert receipt == expected
    assert received == [expected]


def test_a_conversation_both_ways(lab: Lab) -> None:
    async def scenario(h: LabHarness) -> tuple[list[PingRequest], list[PingRequest]]:
        alice, bob = await h.conversation(ALICE), await h.conversation(BOB)
        await alice.send(BOB, "ping 1")
        await bob.send(ALICE, "pong 1")
        await alice.send(BOB, "ping 2")
        return await alice.wait_for(1), await bob.wait_for(2)

    at_alice, at_bob = lab.run(scenario)
    assert [(p.origin, p.message) for p in at_alice] == [(BOB, "pong 1")]
    assert [(p.origin, p.message) for p in at_bob] == [(ALICE, "ping 1"), (ALICE, "ping 2")]


def test_a_spoofed_origin_is_replaced_by_the_real_sender(lab: Lab) -> None:
    async def scenario(h: LabHarness) -> tuple[PingRequest, list[PingRequest]]:
        carol = await h.conversation(CAROL)
        spoof = PingRequest(origin=ALICE, destination=CAROL, message="it's alice, honest")
        receipt = await h.raw_request(BOB, f"{BOB}.ping", spoof.SerializeToString())
        return PingRequest.FromString(receipt), await carol.wait_for(1)

    receipt, received = lab.run(scenario)
    assert receipt.origin == BOB
    assert [(p.origin, p.message) for p in received] == [(BOB, "it's alice, honest")]


@pytest.mark.parametrize(
    ("destination", "code"),
    [
        (NOBODY, "unknown_destination"),
        ("a.b", "invalid_destination"),
        ("*", "invalid_destination"),
        ("", "invalid_destination"),
    ],
)
def test_refused_destinations(lab: Lab, destination: str, code: str) -> None:
    async def scenario(h: LabHarness) -> tuple[RemoteError, list[PingRequest]]:
        alice = await h.conversation(ALICE)
        with pytest.raises(RemoteError) as raised:
            await alice.send(destination, "anyone there?")
        # Refused, and nothing was relayed: the next line is the first one bob gets.
        bob = await h.conversation(BOB)
        await alice.send(BOB, "after")
        return raised.value, await bob.wait_for(1)

    error, at_bob = lab.run(scenario)
    assert error.code == code
    assert error.subject == f"{ALICE}.ping"
    assert [p.message for p in at_bob] == ["after"]


def test_malformed_ping_is_refused_and_the_server_keeps_answering(lab: Lab) -> None:
    async def scenario(h: LabHarness) -> tuple[RemoteError, str]:
        with pytest.raises(RemoteError) as raised:
            await h.raw_request(ALICE, f"{ALICE}.ping", b"\x0a\x05ab")  # truncated field
        return raised.value, await h.echo(ALICE, "still there")

    error, after = lab.run(scenario)
    assert error.code == "invalid_payload"
    assert after == "echo still there"


def test_the_chat_pane_clicked_from_a_subshell_then_from_cells(lab: Lab) -> None:
    """Browser clicks and Enter arrive on another thread and loop; cells await their lines."""
    from labkit.widgets.chat import NOTHING_TO_SEND, ChatPane
    from tests.widgets.subshell import click_from_another_loop

    async def scenario(h: LabHarness) -> tuple[list[str], list[str], list[str]]:
        alice_side, bob_side = await h.conversation(ALICE), await h.conversation(BOB)
        alice = ChatPane(alice_side, BOB, "alice")  # type: ignore[arg-type]
        bob = ChatPane(bob_side, ALICE, "bob")  # type: ignore[arg-type]
        try:
            alice.text.value = 'clicked, with "quotes"'
            click_from_another_loop(alice.button.click)
            bob.text.value = "entered"
            enter = {"event": "submit"}  # what the browser sends when Enter is pressed
            click_from_another_loop(lambda: bob.text._handle_string_msg(None, enter, []))
            await alice.idle()
            await bob.idle()
            click_from_another_loop(alice.button.click)  # the box was emptied: nothing to send
            await alice.idle()
            at_bob = await bob.wait_for_line('clicked, with "quotes"', origin=ALICE)
            at_alice = await alice.wait_for_line("entered", origin=BOB)
            from_a_cell = await alice.send("from a cell")  # the same connection, the cell loop
            seen = await bob.wait_for_line(from_a_cell.message, origin=ALICE)
        finally:
            for pane in (alice, bob, alice, bob):  # closing twice is fine
                await pane.close()
        return (
            [at_bob.message, at_alice.message, seen.message],
            alice.errors,
            [alice.text.value, bob.text.value],
        )

    lines, errors, boxes = lab.run(scenario)
    assert lines == ['clicked, with "quotes"', "entered", "from a cell"]
    assert errors == [NOTHING_TO_SEND]
    assert boxes == ["", ""]  # a sent line leaves its box
