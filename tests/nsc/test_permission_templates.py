"""The default templates give a user its own subjects and one JetStream consumer, no more."""

from __future__ import annotations

from labkit.settings import NscSettings
from tests.permissions import user_publish_permissions


def test_default_publish_rights_are_scoped_to_the_user() -> None:
    rights = user_publish_permissions("alice")
    assert rights[:2] == ["alice.>", "persist.alice.echo.stream"]
    for right in rights[2:]:
        assert right.startswith("$JS.") and "reply-alice" in right, right
        assert "*" not in right, right
        assert ">" not in right or right.endswith("reply-alice.>"), right
    assert not any("$JS.API.STREAM." in right or "DELETE" in right for right in rights)


def test_default_subscribe_rights_are_the_users_own() -> None:
    rights = [t.format(user="alice") for t in NscSettings().user_subscribe]
    assert rights == ["alice.>", "_INBOX.alice.>"]
