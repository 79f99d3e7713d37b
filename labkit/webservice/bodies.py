"""Bounded request bodies for the HTTP services: a size limit and a JSON depth limit.

The size is checked against Content-Length before anything reads the body, and a
body without one (chunked) is read through a stream that stops at the limit
(werkzeug's MAX_CONTENT_LENGTH): either way the answer is 413 and the body never
sits whole in memory. JSON nested deeper than MAX_JSON_DEPTH is refused before
the parser sees it (Python's parser would recurse until RecursionError: a 500).
"""

from __future__ import annotations

import json
from typing import Any

from flask import Flask, request
from werkzeug.exceptions import RequestEntityTooLarge

from labkit.errors import LabkitError

# Deeper than any body these services take (theirs are flat objects), far below the
# depth at which json.loads hits the recursion limit (~1000).
MAX_JSON_DEPTH = 32


class MalformedJson(LabkitError, ValueError):
    """A request body that is JSON but more deeply nested than the services accept."""


def limit_request_bodies(app: Flask, max_bytes: int) -> None:
    """Answer 413 to a body over `max_bytes`, before it is read (see the module doc)."""
    # Caps reads of bodies without Content-Length (waitress marks them input_terminated).
    app.config["MAX_CONTENT_LENGTH"] = max_bytes

    @app.before_request
    def _refuse_large_bodies() -> None:
        length = request.content_length
        if length is not None and length > max_bytes:
            raise RequestEntityTooLarge(
                f"the request body is {length} bytes; this service accepts at most "
                f"{max_bytes} bytes: send a smaller body"
            )

    # The service's own before_request hooks (the NSC token check) run after this one.
    hooks = app.before_request_funcs.setdefault(None, [])
    hooks.insert(0, hooks.pop())


def json_body(max_depth: int = MAX_JSON_DEPTH) -> Any:
    """The request's JSON, None when it is not JSON; MalformedJson when nested too deep."""
    if not request.is_json:
        return None
    data = request.get_data(cache=True)  # bounded by the body limit
    if nesting_depth(data, max_depth) > max_depth:
        raise MalformedJson(
            f"the JSON body is nested more than {max_depth} levels deep; send a flat object"
        )
    try:
        return json.loads(data)
    except (ValueError, RecursionError):
        return None


def nesting_depth(data: bytes, give_up_above: int) -> int:
    """How deep arrays and objects nest in JSON `data` (strings skipped); stops early."""
    if data.count(b"[") + data.count(b"{") <= give_up_above:
        return 0  # cannot be deeper than the brackets it has
    depth = deepest = 0
    in_string = escaped = False
    for byte in data:
        if in_string:
            if escaped:
                escaped = False
            elif byte == 0x5C:  # backslash
                escaped = True
            elif byte == 0x22:  # quote
                in_string = False
        elif byte == 0x22:
            in_string = True
        elif byte in (0x5B, 0x7B):  # [ {
            depth += 1
            if depth > deepest:
                deepest = depth
                if deepest > give_up_above:
                    return deepest
        elif byte in (0x5D, 0x7D):  # ] }
            depth -= 1
    return deepest
