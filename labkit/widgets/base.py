"""What every panel shares: it shows as its widget, and as its repr in plain text."""

from __future__ import annotations

from typing import Any


class Panel:
    """Shows as its `widget` in a notebook, as its repr in plain text (what nbval compares)."""

    widget: Any

    def _repr_mimebundle_(self, **kwargs: Any) -> dict[str, Any]:
        bundle: dict[str, Any] = self.widget._repr_mimebundle_(**kwargs)
        bundle["text/plain"] = repr(self)
        return bundle
