"""labkit's protobuf messages, generated from ``proto/labkit.proto``.

Do not edit ``labkit_pb2.py`` or ``labkit_pb2.pyi`` by hand: change the .proto
file and regenerate them with ``make proto`` (``python -m labkit.protogen``).
"""

from labkit.protocol.labkit_pb2 import (
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

__all__ = [
    "Crop",
    "EchoRequest",
    "EchoResponse",
    "ErrorReply",
    "ImageConfirmation",
    "ImageRequest",
    "ImageResponse",
    "PingRequest",
    "ProgressList",
    "ProgressReport",
]
