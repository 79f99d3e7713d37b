"""Dependency injection: what a handler gets, decided from its type hints.

A handler declares what it needs as annotated parameters; labkit plans the call
once, at decoration time (so a mistake fails at import, not at the first
message), and fills the parameters for each message:

- a protobuf message type: the payload, parsed into it
- `Reply`: sends the answer to the requester (None when there is no reply subject)
- `Publish`: publishes other messages
- `CurrentUser`: the first subject token, which the server's permissions guarantee
- any type registered with `register_dependency` (`Cache`, later the object store)
"""

from __future__ import annotations

import inspect
import types
import typing
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Union

from google.protobuf.message import Message

from labkit.server.errors import InvalidHandler
from labkit.subjects import first_token

Headers = dict[str, str]
Send = Callable[[str, bytes, Headers | None], Awaitable[None]]


class CurrentUser(str):
    """The user who sent the message: the first token of its subject."""

    __slots__ = ()


class Reply:
    """Answers the message's requester; injected as None when nobody waits for an answer."""

    def __init__(self, subject: str, send: Send) -> None:
        self.subject = subject
        self._send = send
        self.sent = False

    async def __call__(self, message: Message, headers: Headers | None = None) -> None:
        await self._send(self.subject, message.SerializeToString(), headers)
        self.sent = True


class Publish:
    """Publishes a message on any subject the server's credentials allow."""

    def __init__(self, send: Send) -> None:
        self._send = send

    async def __call__(
        self, subject: str, message: Message | bytes, headers: Headers | None = None
    ) -> None:
        data = message if isinstance(message, bytes) else message.SerializeToString()
        await self._send(subject, data, headers)


@dataclass
class Delivery:
    """One message as a handler's dependencies see it."""

    subject: str
    data: bytes
    reply: str | None
    headers: Headers | None
    send: Send
    resources: dict[type, Any] = field(default_factory=dict)


Provider = Callable[[Delivery], Any]


def _reply(delivery: Delivery) -> Reply | None:
    return Reply(delivery.reply, delivery.send) if delivery.reply else None


_providers: dict[type, Provider] = {
    Reply: _reply,
    Publish: lambda delivery: Publish(delivery.send),
    CurrentUser: lambda delivery: CurrentUser(first_token(delivery.subject)),
}


def register_dependency(kind: type, provider: Provider | None = None) -> None:
    """Let handlers ask for `kind`; by default it comes from the server's resources."""
    _providers[kind] = provider or (lambda delivery: _resource(delivery, kind))


def injectable_types() -> list[str]:
    return ["a protobuf message", *sorted(kind.__name__ for kind in _providers)]


def _resource(delivery: Delivery, kind: type) -> Any:
    try:
        return delivery.resources[kind]
    except KeyError:
        raise LookupError(
            f"this server has no {kind.__name__}; pass one in Server(resources=...)"
        ) from None


@dataclass(frozen=True)
class HandlerPlan:
    """How to call one handler: which parameter gets the payload, which get providers."""

    handler: Callable[..., Any]
    message_param: str | None
    message_type: type[Message] | None
    providers: dict[str, Provider]

    def arguments(self, delivery: Delivery, message: Message | None) -> dict[str, Any]:
        args = {name: provide(delivery) for name, provide in self.providers.items()}
        if self.message_param is not None:
            args[self.message_param] = message
        return args


def plan_handler(handler: Callable[..., Any]) -> HandlerPlan:
    """Read the handler's type hints once; raise InvalidHandler naming what is wrong."""
    name = getattr(handler, "__qualname__", repr(handler))
    if not inspect.iscoroutinefunction(handler):
        raise InvalidHandler(f"handler {name} must be `async def`")
    try:
        hints = typing.get_type_hints(handler)
    except NameError as exc:
        raise InvalidHandler(f"handler {name}: cannot resolve a type hint ({exc})") from exc
    message_param: str | None = None
    message_type: type[Message] | None = None
    providers: dict[str, Provider] = {}
    for param in inspect.signature(handler).parameters.values():
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            stars = "*" if param.kind is param.VAR_POSITIONAL else "**"
            raise InvalidHandler(
                f"handler {name}: parameter {stars}{param.name} cannot be injected; declare "
                "each dependency as its own annotated parameter"
            )
        if param.name not in hints:
            raise InvalidHandler(
                f"handler {name}: parameter {param.name!r} has no type hint; annotate it "
                f"with one of: {', '.join(injectable_types())}"
            )
        kind = _unwrap_optional(hints[param.name])
        if isinstance(kind, type) and issubclass(kind, Message):
            if message_param is not None:
                raise InvalidHandler(
                    f"handler {name}: only one parameter can receive the payload "
                    f"({message_param!r} and {param.name!r} are both messages)"
                )
            message_param, message_type = param.name, kind
        elif isinstance(kind, type) and kind in _providers:
            providers[param.name] = _providers[kind]
        else:
            raise InvalidHandler(
                f"handler {name}: parameter {param.name!r} has type {hints[param.name]!r}, "
                f"which labkit cannot inject; use one of: {', '.join(injectable_types())}"
            )
    return HandlerPlan(handler, message_param, message_type, providers)


def _unwrap_optional(hint: Any) -> Any:
    origin = typing.get_origin(hint)
    if origin in (Union, types.UnionType):
        args = [arg for arg in typing.get_args(hint) if arg is not type(None)]
        if len(args) == 1:
            return args[0]
    return hint
