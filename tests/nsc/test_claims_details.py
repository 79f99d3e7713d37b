"""Details of the claims module's contracts that the server reads (pure logic)."""

from __future__ import annotations

from datetime import timedelta

from labkit.nsc import claims
from labkit.nsc.claims import Permissions


def test_as_dict_shows_a_subscribe_deny_list_alone() -> None:
    shown = Permissions(subscribe=(">",), subscribe_deny=("secret.>",)).as_dict()
    assert shown["subscribe_deny"] == ["secret.>"]
    assert "publish_deny" not in shown


def test_account_mappings_send_everything_to_the_target() -> None:
    body = claims.account_claims(
        "labs", "AKEY", mappings={"*.echo.stream": "persist.{{wildcard(1)}}.echo.stream"}
    )
    assert body["nats"]["mappings"] == {
        "*.echo.stream": [{"subject": "persist.{{wildcard(1)}}.echo.stream", "weight": 100}]
    }
    assert "mappings" not in claims.account_claims("labs", "AKEY")["nats"]


def test_templates_without_responses_have_no_response_ttl() -> None:
    none = claims.permissions_from_templates("bob", [], [], response_ttl=timedelta(minutes=5))
    assert (none.response_max, none.response_ttl) == (0, timedelta(0))
    some = claims.permissions_from_templates(
        "bob", [], [], response_max=1, response_ttl=timedelta(minutes=5)
    )
    assert (some.response_max, some.response_ttl) == (1, timedelta(minutes=5))


def test_templates_fill_the_user_into_publish_deny_too() -> None:
    perms = claims.permissions_from_templates("bob", [">"], [], publish_deny=["{user}.admin"])
    assert perms.publish_deny == ("bob.admin",)


def test_a_response_ttl_is_read_back_in_whole_microseconds() -> None:
    # The JWT holds integer nanoseconds; anything below a microsecond is dropped, not rounded.
    read = claims.user_permissions({"nats": {"resp": {"max": 1, "ttl": 1_999}}})
    assert read.response_ttl == timedelta(microseconds=1)
