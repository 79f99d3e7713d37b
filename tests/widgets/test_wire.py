"""labkit.widgets.wire: decoding what crosses the bus, and whose it is; no server."""

from __future__ import annotations

import pytest
from google.protobuf.message import Message

from labkit.protocol import (
    Crop,
    EchoRequest,
    EchoResponse,
    ErrorReply,
    ImageConfirmation,
    ImageRequest,
    ImageResponse,
    PingRequest,
)
from labkit.server.dispatch import ERROR_HEADER, LABKIT_CODE_HEADER
from labkit.widgets.wire import (
    LAB_MESSAGES,
    MAX_CELL_CHARS,
    WireDecoder,
    is_polling,
    lab_message,
    sender_of,
    short_subject,
    short_user,
    show,
    table_html,
)


@pytest.mark.parametrize(
    ("subject", "sender"),
    [
        ("alice.echo", "alice"),
        ("alice.echo.identified", "alice"),
        ("bob.inbox", "bob"),
        ("_INBOX.alice.Ab3dEfGh.1", "alice"),
        ("_INBOX.alice", "alice"),
        ("persist.alice.echo.stream", "alice"),
        ("persist.alice.echo.stream.reply", "alice"),
        ("$JS.API.INFO", "$JS"),
        ("plain", "plain"),
    ],
)
def test_sender_is_the_user_the_subject_names(subject: str, sender: str) -> None:
    assert sender_of(subject) == sender


@pytest.mark.parametrize(
    ("subject", "payload"),
    [
        ("alice.echo", EchoRequest),
        ("alice.echo.cached", EchoRequest),
        ("alice.ping", PingRequest),
        ("bob.inbox", PingRequest),
        ("alice.send_file", ImageRequest),
        ("alice.transform_file", ImageConfirmation),
        ("persist.alice.echo.stream", EchoRequest),
        ("persist.alice.echo.stream.reply", EchoResponse),
        ("alice.echo.stream.reply", EchoResponse),
    ],
)
def test_each_lab_subject_has_its_message(subject: str, payload: type) -> None:
    kind = lab_message(subject)
    assert kind is not None
    assert kind.payload is payload


def test_subjects_outside_the_labs_have_no_lab_message() -> None:
    for subject in ("alice", "alice.other", "_INBOX.alice.x", "$JS.API.INFO", "persist.x"):
        assert lab_message(subject) is None
    assert all(kind.pattern.split(".")[0] in ("*", "persist") for kind in LAB_MESSAGES)


def test_a_request_is_decoded_by_its_subject() -> None:
    data = PingRequest(destination="bob", message="hi").SerializeToString()
    text = WireDecoder().decode("alice.ping", data)
    assert text == 'PingRequest{destination: "bob" message: "hi"}'


@pytest.mark.parametrize(
    ("subject", "question", "answer"),
    [
        ("alice.echo", EchoRequest(message="hi"), EchoResponse(message="echo hi")),
        ("alice.ping", PingRequest(destination="bob"), PingRequest(origin="alice")),
        ("alice.send_file", ImageRequest(name="cat.png"), ImageResponse(URL="http://s3/put")),
        (
            "alice.transform_file",
            ImageConfirmation(name="cat.png", transformation="crop", crop=Crop(right=2)),
            ImageResponse(URL="http://s3/get"),
        ),
    ],
)
def test_a_reply_is_decoded_as_the_answer_to_its_request(
    subject: str, question: Message, answer: Message
) -> None:
    decoder = WireDecoder()
    inbox = "_INBOX.alice.nuid.1"
    decoder.decode(subject, question.SerializeToString(), reply=inbox)
    assert decoder.pending == 1
    assert decoder.decode(inbox, answer.SerializeToString()) == show(answer)
    assert decoder.pending == 0


def test_a_reply_without_its_request_is_guessed_to_be_an_echo() -> None:
    data = EchoResponse(message="echo hi").SerializeToString()
    assert WireDecoder().decode("_INBOX.alice.x.1", data) == 'EchoResponse{message: "echo hi"}'


def test_an_error_reply_is_decoded_from_its_headers() -> None:
    decoder = WireDecoder()
    decoder.decode("alice.echo", b"\xff", reply="_INBOX.alice.x.1")
    error = ErrorReply(code="invalid_payload", message="not an EchoRequest", subject="alice.echo")
    headers = {ERROR_HEADER: error.message, LABKIT_CODE_HEADER: error.code}
    text = decoder.decode("_INBOX.alice.x.1", error.SerializeToString(), headers=headers)
    assert text.startswith('ErrorReply{code: "invalid_payload"')
    assert decoder.pending == 0, "an error reply still answers the request"


def test_jetstream_json_answers_show_as_json() -> None:
    decoder = WireDecoder()
    request = EchoRequest(message="kept").SerializeToString()
    assert decoder.decode("persist.alice.echo.stream", request, reply="_INBOX.alice.x.2") == (
        'EchoRequest{message: "kept"}'
    )
    ack = b'{"stream": "ECHO_STREAM", "seq": 7}'
    assert decoder.decode("_INBOX.alice.x.2", ack) == 'JSON {"stream":"ECHO_STREAM","seq":7}'


def test_a_status_message_shows_its_status() -> None:
    headers = {"Status": "503", "Description": ""}
    assert WireDecoder().decode("_INBOX.alice.x.3", b"", headers=headers) == "status 503"
    headers = {"Status": "404", "Description": "No Messages"}
    assert WireDecoder().decode("_INBOX.a.x", b"", headers=headers) == "status 404 No Messages"


def test_what_is_not_a_lab_message_shows_as_bytes() -> None:
    decoder = WireDecoder()
    assert decoder.decode("$JS.ACK.ECHO_STREAM.x", b"+ACK") == "b'+ACK'"
    assert decoder.decode("alice.echo", b"\xff\xff") == "b'\\xff\\xff'"
    assert decoder.decode("somewhere", b"{not json") == "b'{not json'"


def test_unanswered_requests_are_forgotten_oldest_first() -> None:
    decoder = WireDecoder(max_pending=2)
    request = EchoRequest(message="x").SerializeToString()
    for n in range(3):
        decoder.decode("alice.ping", request, reply=f"_INBOX.alice.x.{n}")
    assert decoder.pending == 2
    answer = PingRequest(origin="alice").SerializeToString()
    # The first request's answer type is forgotten: guessed as an echo reply.
    assert decoder.decode("_INBOX.alice.x.0", answer).startswith("EchoResponse")
    assert decoder.decode("_INBOX.alice.x.2", answer).startswith("PingRequest")


def test_table_html_escapes_orders_and_cuts() -> None:
    rows = [
        {"subject": "alice.echo", "message": "<b>first</b>", "size": 7},
        {"subject": "bob.echo", "message": "x" * (MAX_CELL_CHARS + 50), "size": 1234},
    ]
    text = table_html(("subject", "message", "size"), rows)
    assert "&lt;b&gt;first&lt;/b&gt;" in text and "<b>first</b>" not in text
    assert text.index("alice.echo") < text.index("bob.echo"), "newest last"
    assert "<code>alice.echo</code>" in text
    assert "<td style='text-align:right'>1234</td>" in text
    assert "x" * MAX_CELL_CHARS not in text and "…" in text


def test_an_empty_table_says_so() -> None:
    assert "nothing yet" in table_html(("time", "subject"), [])


def test_a_consumers_polling_chatter_is_recognised() -> None:
    assert is_polling({"Status": "408", "Description": "Request Timeout"}, b"")
    assert is_polling({"Status": "404", "Description": "No Messages"}, b"")
    assert is_polling({"Status": "100", "Description": "Idle Heartbeat"}, b"")
    assert not is_polling({"Status": "503"}, b""), "no responders is news, not chatter"
    assert not is_polling(None, b"")
    assert not is_polling({"Status": "408"}, b"payload")


# --- shortened for the eye, whole in the rows ---------------------------------------------

USER_ID = "01m8kqxcy16mk5zxf7kteaxe2z"  # a ULID, as the auth service makes them
INBOX = f"_INBOX.{USER_ID}.Sfj74gFxZBzWtYKwjNiDpc.Sfj74gFxZBzWtYKwjNiDwK850e"


@pytest.mark.parametrize(
    ("subject", "shown"),
    [
        (INBOX, "_INBOX.…eaxe2z.…850e"),
        ("_INBOX.alice.Sfj74gFxZBzWtYKwjNiDpc.7", "_INBOX.alice.…pc.7"),
        (f"{USER_ID}.echo.shout", "…eaxe2z.echo.shout"),
        (f"persist.{USER_ID}.echo.stream", "persist.…eaxe2z.echo.stream"),
        # Short enough already: shown as they are.
        ("alice.echo.shout", "alice.echo.shout"),
        ("_INBOX.alice.x.0", "_INBOX.alice.x.0"),
        ("_INBOX.alice", "_INBOX.alice"),
        ("tap-alice.echo", "tap-alice.echo"),
    ],
)
def test_long_subjects_are_shortened_for_display(subject: str, shown: str) -> None:
    assert short_subject(subject) == shown
    assert len(short_subject(subject)) <= len(subject)


def test_only_ulid_user_ids_are_shortened() -> None:
    assert short_user(USER_ID) == "…eaxe2z"
    assert short_user(USER_ID.upper()) == "…EAXE2Z"
    for user in ("alice", "tap-alice", "observer", "x" * 26, USER_ID + "x"):
        assert short_user(user) == user


def test_two_users_made_in_the_same_millisecond_look_different() -> None:
    # The same ULID time prefix (first ten characters), different random ends.
    alice, bob = "01m8kqxcy1" + "6mk5zxf7kteaxe2z", "01m8kqxcy1" + "q3vd0h9w2pnbr4st"
    assert short_user(alice) != short_user(bob)
    assert short_subject(f"{alice}.echo") != short_subject(f"{bob}.echo")
    assert short_subject(f"_INBOX.{alice}.x.{'y' * 22}") != short_subject(
        f"_INBOX.{bob}.x.{'y' * 22}"
    )


def test_text_shows_as_typed_not_escaped() -> None:
    typed = 'it\'s "quoted" – café'
    assert show(EchoRequest(message=typed)) == f'EchoRequest{{message: "{typed}"}}'
    assert show(EchoRequest(message="two\nlines")) == 'EchoRequest{message: "two\\nlines"}'
    assert show(EchoRequest()) == "EchoRequest{}"


def test_table_shows_short_subjects_with_the_whole_one_as_a_tooltip() -> None:
    rows = [{"subject": INBOX, "sender": USER_ID, "message": f"hi from {USER_ID}", "size": 3}]
    text = table_html(("subject", "sender", "message", "size"), rows)
    assert "<code>_INBOX.…eaxe2z.…850e</code>" in text
    assert f"title='{INBOX}'" in text and f"title='{USER_ID}'" in text
    assert ">…eaxe2z</td>" in text, "the sender column is shortened too"
    assert f"hi from {USER_ID}" in text, "message texts are never shortened"
    assert "title" not in table_html(("subject",), [{"subject": "alice.echo"}])


def test_table_tooltips_are_escaped() -> None:
    subject = "_INBOX.alice.'><script>x</script>.abcdefghijklmnopqrstuvwxyz"
    text = table_html(("subject",), [{"subject": subject}])
    assert "<script>" not in text
    assert "title='_INBOX.alice.&#x27;&gt;&lt;script&gt;x&lt;/script&gt;.abc" in text


def test_table_header_stays_in_view_and_the_table_follows_its_end() -> None:
    text = table_html(("time", "subject"), [{"time": "12:00:00.000", "subject": "a.echo"}])
    header = text[text.index("<thead>") : text.index("</thead>")]
    assert header.count("position:sticky; top:0") == 2
    assert "flex-direction:column-reverse" in text and "overflow-y:auto" in text
    assert "white-space:nowrap" in text, "times and subjects stay on one line"
