"""Routers: handlers declared with `@router.subscribe("<pattern>")`, composable."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, TypeVar

from labkit.server.injection import HandlerPlan, plan_handler
from labkit.subjects import validate_pattern

Handler = TypeVar("Handler", bound=Callable[..., Any])


@dataclass(frozen=True)
class Route:
    """A subject pattern and the handler that serves it."""

    pattern: str
    name: str
    plan: HandlerPlan
    # Set for a persisted route: served from a durable JetStream consumer, not a
    # core subscription; its reply is persisted too, on `<subject>.reply`.
    consumer: StreamConsumer | None = None


@dataclass(frozen=True)
class StreamConsumer:
    """Where a persisted route reads from: a stream and a durable consumer on it."""

    stream: str
    durable: str


class Router:
    """A group of routes; include other routers to build an application."""

    def __init__(self, name: str = "") -> None:
        self.name = name
        self._routes: list[Route] = []

    def subscribe(self, pattern: str, *, name: str | None = None) -> Callable[[Handler], Handler]:
        """Declare a handler for messages on `pattern` (NATS wildcards `*` and `>`)."""
        return self._declare(pattern, name, None)

    def stream(
        self, pattern: str, *, stream: str, durable: str, name: str | None = None
    ) -> Callable[[Handler], Handler]:
        """Declare a handler for requests persisted in `stream`, read by consumer `durable`.

        The server acknowledges a request only after its reply is stored in the stream,
        so a crash mid-way means a redelivery, never a lost request.
        """
        return self._declare(pattern, name, StreamConsumer(stream, durable))

    def _declare(
        self, pattern: str, name: str | None, consumer: StreamConsumer | None
    ) -> Callable[[Handler], Handler]:
        validate_pattern(pattern)

        def decorate(handler: Handler) -> Handler:
            plan = plan_handler(handler)  # fails now, not at the first message
            route = Route(pattern, name or handler.__name__, plan, consumer)
            self._check_unique(route)
            self._routes.append(route)
            return handler

        return decorate

    def include_router(self, other: Router, *, prefix: str = "") -> None:
        """Add `other`'s routes; `prefix` (e.g. "v2") is put before their patterns."""
        incoming = [
            replace(route, pattern=validate_pattern(f"{prefix}.{route.pattern}"))
            if prefix
            else route
            for route in other.routes
        ]
        for route in incoming:  # all or nothing
            self._check_unique(route)
        self._routes.extend(incoming)

    def _check_unique(self, route: Route) -> None:
        # Names key the server's endpoint stats and $SRV.INFO, so they must be unique.
        if any(existing.name == route.name for existing in self._routes):
            raise ValueError(
                f"a route named {route.name!r} already exists in router {self.name!r}; "
                "pass subscribe(..., name=...) to tell them apart"
            )

    @property
    def routes(self) -> list[Route]:
        return list(self._routes)
