"""The generated protobuf code is up to date, and the messages behave as the seed's do."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp

from labkit.errors import LabkitError
from labkit.protocol import (
    Crop,
    EchoRequest,
    EchoResponse,
    ErrorReply,
    ImageConfirmation,
    ImageRequest,
    ImageResponse,
    PingRequest,
    ProgressList,
    ProgressReport,
)
from labkit.protogen import OUT_DIR, PROTO_DIR, ProtocError, generate

GENERATED = ("labkit_pb2.py", "labkit_pb2.pyi")


@pytest.fixture(scope="module")
def regenerated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The code generate() writes from the committed proto/, in a scratch directory."""
    out = tmp_path_factory.mktemp("generated")
    generate(PROTO_DIR, out)
    return out


# --- (a) the committed generated code matches proto/ -------------------------


def test_generate_returns_the_files_it_wrote(tmp_path: Path) -> None:
    outputs = generate(PROTO_DIR, tmp_path)
    assert sorted(p.name for p in outputs) == sorted(GENERATED)
    assert all(p.is_file() and p.parent == tmp_path.resolve() for p in outputs)


@pytest.mark.parametrize("name", GENERATED)
def test_committed_code_is_up_to_date(regenerated: Path, name: str) -> None:
    committed = OUT_DIR / name
    assert committed.is_file(), f"{committed} is missing: run `make proto` and commit the result."
    assert (regenerated / name).read_bytes() == committed.read_bytes(), (
        f"labkit/protocol/{name} is stale: it does not match proto/labkit.proto. "
        "Run `make proto` (python -m labkit.protogen) and commit the result."
    )


# --- (b) the messages round-trip ---------------------------------------------

MESSAGES: list[Message] = [
    EchoRequest(message="hello"),
    EchoResponse(message="hello"),
    PingRequest(destination="bob", origin="alice", message="ping"),
    ProgressReport(
        exercise_id="lab01-ex1", passed=True, attempts=2, at=Timestamp(seconds=1, nanos=5)
    ),
    ProgressList(reports=[ProgressReport(exercise_id="lab01-ex2", attempts=1)]),
    ImageRequest(name="cat.png"),
    Crop(left=1, top=2, right=300, bottom=-4),
    ImageConfirmation(
        name="cat.png",
        transformation="crop",
        crop=Crop(left=0, top=0, right=10, bottom=20),
        mode="RGB",
    ),
    ImageResponse(URL="https://minio.example/cat.png?X-Amz-Signature=abc"),
    ErrorReply(code="bad_payload", message="could not parse EchoRequest", subject="echo"),
]


@pytest.mark.parametrize("msg", MESSAGES, ids=lambda m: type(m).__name__)
def test_message_round_trips(msg: Message) -> None:
    data = msg.SerializeToString()
    assert data, "every sample sets a field, so the encoding is not empty"
    parsed = type(msg).FromString(data)
    assert parsed == msg
    assert parsed.SerializeToString() == data


def test_every_message_is_exported() -> None:
    import labkit.protocol as protocol

    assert {type(m).__name__ for m in MESSAGES} == set(protocol.__all__)
    assert {m.DESCRIPTOR.full_name for m in MESSAGES} == {
        f"labkit.{name}" for name in protocol.__all__
    }


def test_image_response_url_field_is_upper_case() -> None:
    resp = ImageResponse(URL="https://example/x")
    assert resp.URL == "https://example/x"
    assert [f.name for f in ImageResponse.DESCRIPTOR.fields] == ["URL"]
    with pytest.raises(ValueError):
        ImageResponse(url="https://example/x")  # type: ignore[call-arg]


def test_error_reply_fields() -> None:
    fields = {f.name: f.number for f in ErrorReply.DESCRIPTOR.fields}
    assert fields == {"code": 1, "message": 2, "subject": 3}
    sent = ErrorReply(code="handler_error", message="boom", subject="image.confirm")
    reply = ErrorReply.FromString(sent.SerializeToString())
    assert (reply.code, reply.message, reply.subject) == ("handler_error", "boom", "image.confirm")


def test_seed_field_numbers() -> None:
    expected: dict[type[Message], dict[str, int]] = {
        EchoRequest: {"message": 1},
        EchoResponse: {"message": 1},
        PingRequest: {"destination": 1, "origin": 2, "message": 3},
        # `size` added after the seed (an upload URL is signed for it); `name` keeps 1
        ImageRequest: {"name": 1, "size": 2},
        Crop: {"left": 1, "top": 2, "right": 3, "bottom": 4},
        ImageConfirmation: {"name": 1, "transformation": 2, "crop": 3, "mode": 4},
        ImageResponse: {"URL": 1},
    }
    for cls, fields in expected.items():
        assert {f.name: f.number for f in cls.DESCRIPTOR.fields} == fields, cls.__name__
    assert ImageConfirmation.DESCRIPTOR.fields_by_name["crop"].message_type is Crop.DESCRIPTOR


def test_garbage_does_not_parse() -> None:
    from google.protobuf.message import DecodeError

    with pytest.raises(DecodeError):
        EchoRequest.FromString(b"\xff\xff\xff")


# --- (c) the stale check notices a changed proto -----------------------------


def test_changed_proto_makes_committed_code_stale(tmp_path: Path) -> None:
    proto_dir = tmp_path / "proto"
    shutil.copytree(PROTO_DIR, proto_dir)
    proto = proto_dir / "labkit.proto"
    text = proto.read_text(encoding="utf-8")
    anchor = "  string subject = 3;\n"
    assert anchor in text
    proto.write_text(text.replace(anchor, anchor + "  string detail = 4;\n"), encoding="utf-8")

    out = tmp_path / "out"
    generate(proto_dir, out)
    for name in GENERATED:
        assert (out / name).read_bytes() != (OUT_DIR / name).read_bytes(), name
    assert "detail" in (out / "labkit_pb2.pyi").read_text(encoding="utf-8")


def test_protoc_failure_raises_a_labkit_error(tmp_path: Path) -> None:
    proto_dir = tmp_path / "proto"
    proto_dir.mkdir()
    (proto_dir / "broken.proto").write_text(
        'syntax = "proto3";\nmessage Broken { strnig oops = 1; }\n', encoding="utf-8"
    )
    with pytest.raises(ProtocError, match="protoc failed") as info:
        generate(proto_dir, tmp_path / "out")
    assert isinstance(info.value, LabkitError)
    assert "strnig" in str(info.value), "protoc's own message is included"


def test_empty_proto_dir_raises(tmp_path: Path) -> None:
    with pytest.raises(ProtocError, match=r"No \.proto files"):
        generate(tmp_path, tmp_path / "out")
