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


class Router:
    """A group of routes; include other routers to build an application."""

    def __init__(self, name: str = "") -> None:
        self.name = name
        self._routes: list[Route] = []

    def subscribe(self, pattern: str, *, name: str | None = None) -> Callable[[Handler], Handler]:
        """Declare a handler for messages on `pattern` (NATS wildcards `*` and `>`)."""
        validate_pattern(pattern)

        def decorate(handler: Handler) -> Handler:
            plan = plan_handler(handler)  # fails now, not at the first message
            route_name = name or handler.__name__
            if any(route.name == route_name for route in self._routes):
                raise ValueError(f"a route named {route_name!r} already exists in this router")
            self._routes.append(Route(pattern, route_name, plan))
            return handler

        return decorate

    def include_router(self, other: Router, *, prefix: str = "") -> None:
        """Add `other`'s routes; `prefix` (e.g. "v2") is put before their patterns."""
        for route in other.routes:
            pattern = f"{prefix}.{route.pattern}" if prefix else route.pattern
            self._routes.append(replace(route, pattern=validate_pattern(pattern)))

    @property
    def routes(self) -> list[Route]:
        return list(self._routes)
