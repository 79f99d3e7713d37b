"""labkit.nsc.claims: the NATS JWT v2 claim shapes the server reads."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from labkit.nsc import claims, jwt, keys
from labkit.nsc.claims import JWT_VERSION, UNLIMITED, Permissions
from labkit.nsc.keys import KeyKind

JETSTREAM_LIMITS = ("mem_storage", "disk_storage", "streams", "consumer")


def _key(kind: KeyKind) -> str:
    return keys.public_key(keys.create_seed(kind))


# operator


def test_operator_claims() -> None:
    op, sys_key = _key(KeyKind.OPERATOR), _key(KeyKind.ACCOUNT)
    body = claims.operator_claims("labkit", op, sys_key)
    assert body["name"] == "labkit"
    assert body["sub"] == op
    assert body["nats"]["type"] == "operator"
    assert body["nats"]["version"] == 2
    assert body["nats"]["system_account"] == sys_key
    assert "signing_keys" not in body["nats"]


def test_operator_signing_keys_are_a_list() -> None:
    signing = (_key(KeyKind.OPERATOR), _key(KeyKind.OPERATOR))
    body = claims.operator_claims("labkit", _key(KeyKind.OPERATOR), "ASYS", signing)
    assert body["nats"]["signing_keys"] == list(signing)
    assert json.loads(json.dumps(body))["nats"]["signing_keys"] == list(signing)


# accounts


def test_account_claims_enable_jetstream_by_default() -> None:
    account = _key(KeyKind.ACCOUNT)
    body = claims.account_claims("labkit", account)
    assert body["name"] == "labkit"
    assert body["sub"] == account
    nats = body["nats"]
    assert nats["type"] == "account"
    assert nats["version"] == 2
    for limit in JETSTREAM_LIMITS:
        assert nats["limits"][limit] == UNLIMITED == -1
    for limit in ("subs", "data", "payload", "imports", "exports", "conn", "leaf"):
        assert nats["limits"][limit] == -1
    assert nats["limits"]["wildcards"] is True
    assert nats["default_permissions"] == {"pub": {}, "sub": {}}
    assert "signing_keys" not in nats
    assert "revocations" not in nats


def test_account_claims_without_jetstream_have_no_storage_limits() -> None:
    limits = claims.account_claims("a", _key(KeyKind.ACCOUNT), jetstream=False)["nats"]["limits"]
    for limit in JETSTREAM_LIMITS:
        assert limit not in limits


@pytest.mark.parametrize("jetstream", [True, False])
def test_system_account_has_no_jetstream(jetstream: bool) -> None:
    body = claims.account_claims("SYS", _key(KeyKind.ACCOUNT), jetstream=jetstream, system=True)
    for limit in JETSTREAM_LIMITS:
        assert limit not in body["nats"]["limits"]
    assert body["nats"]["version"] == 2


@pytest.mark.parametrize("container", [list, tuple])
def test_account_signing_keys_are_a_json_list(container: type) -> None:
    signing = [_key(KeyKind.ACCOUNT), _key(KeyKind.ACCOUNT)]
    body = claims.account_claims("a", _key(KeyKind.ACCOUNT), signing_keys=container(signing))
    assert isinstance(body["nats"]["signing_keys"], list)
    assert body["nats"]["signing_keys"] == signing
    assert json.loads(json.dumps(body))["nats"]["signing_keys"] == signing


def test_account_revocations_are_copied_and_sorted() -> None:
    revocations = {"UZZZ": 2, "UAAA": 1}
    body = claims.account_claims("a", _key(KeyKind.ACCOUNT), revocations=revocations)
    assert body["nats"]["revocations"] == {"UAAA": 1, "UZZZ": 2}
    assert list(body["nats"]["revocations"]) == ["UAAA", "UZZZ"]
    revocations["UNEW"] = 3
    assert "UNEW" not in body["nats"]["revocations"]


def test_account_empty_revocations_are_left_out() -> None:
    assert "revocations" not in claims.account_claims("a", "AKEY", revocations={})["nats"]


# users


def test_user_claims_with_permissions() -> None:
    user = _key(KeyKind.USER)
    perms = Permissions(publish=("alice.>",), subscribe=("alice.>", "_INBOX.alice.>"))
    body = claims.user_claims("alice", user, perms)
    assert body["name"] == "alice"
    assert body["sub"] == user
    nats = body["nats"]
    assert nats["type"] == "user"
    assert nats["version"] == 2
    assert nats["pub"] == {"allow": ["alice.>"]}
    assert nats["sub"] == {"allow": ["alice.>", "_INBOX.alice.>"]}
    assert nats["subs"] == nats["data"] == nats["payload"] == -1
    assert "resp" not in nats
    assert "issuer_account" not in nats
    assert "exp" not in body


def test_user_claims_without_permissions_have_empty_pub_sub() -> None:
    nats = claims.user_claims("bob", "UKEY", Permissions())["nats"]
    assert nats["pub"] == {}
    assert nats["sub"] == {}


def test_user_claims_with_deny_lists() -> None:
    perms = Permissions(subscribe=(">",), publish_deny=(">",), subscribe_deny=("$SYS.>",))
    nats = claims.user_claims("watcher", "UKEY", perms)["nats"]
    # No allow list for publish (that would allow everything): deny only.
    assert nats["pub"] == {"deny": [">"]}
    assert nats["sub"] == {"allow": [">"], "deny": ["$SYS.>"]}


def test_user_claims_issuer_account_only_when_given() -> None:
    account = _key(KeyKind.ACCOUNT)
    given = claims.user_claims("u", "UKEY", Permissions(), issuer_account=account)
    assert given["nats"]["issuer_account"] == account
    for missing in (None, ""):
        body = claims.user_claims("u", "UKEY", Permissions(), issuer_account=missing)
        assert "issuer_account" not in body["nats"]


def test_user_claims_expiry_is_an_int_timestamp() -> None:
    expires = datetime(2030, 1, 2, 3, 4, 5, 600_000, tzinfo=UTC)
    body = claims.user_claims("u", "UKEY", Permissions(), expires_at=expires)
    assert body["exp"] == int(expires.timestamp())
    assert isinstance(body["exp"], int)


@pytest.mark.parametrize(
    ("ttl", "nanoseconds"),
    [
        (timedelta(0), 0),
        (timedelta(seconds=1), 1_000_000_000),
        (timedelta(minutes=2), 120_000_000_000),
        (timedelta(milliseconds=570), 570_000_000),
        (timedelta(milliseconds=1001), 1_001_000_000),
        (timedelta(microseconds=1), 1_000),
        (timedelta(days=1, microseconds=7), 86_400_000_007_000),
    ],
)
def test_user_response_ttl_is_integer_nanoseconds(ttl: timedelta, nanoseconds: int) -> None:
    perms = Permissions(response_max=3, response_ttl=ttl)
    resp = claims.user_claims("u", "UKEY", perms)["nats"]["resp"]
    assert resp == {"max": 3, "ttl": nanoseconds}
    assert type(resp["ttl"]) is int
    assert '"ttl":' + str(nanoseconds) in json.dumps(resp, separators=(",", ":"))


def test_user_claims_without_response_max_have_no_resp() -> None:
    perms = Permissions(response_max=0, response_ttl=timedelta(seconds=5))
    assert "resp" not in claims.user_claims("u", "UKEY", perms)["nats"]


def test_every_claim_has_version_2() -> None:
    assert JWT_VERSION == 2
    bodies = [
        claims.operator_claims("o", "OKEY", "ASYS"),
        claims.account_claims("a", "AKEY"),
        claims.account_claims("SYS", "ASYS", system=True),
        claims.user_claims("u", "UKEY", Permissions()),
        claims.user_claims("u", "UKEY", Permissions(response_max=1), issuer_account="AKEY"),
    ]
    for body in bodies:
        assert body["nats"]["version"] == 2


def test_claims_sign_and_verify_as_jwts() -> None:
    seed = keys.create_seed(KeyKind.OPERATOR)
    token = jwt.encode(claims.account_claims("a", _key(KeyKind.ACCOUNT)), seed)
    assert jwt.verify(token)["nats"]["limits"]["streams"] == -1


# permissions


def test_permissions_from_templates_fill_the_user() -> None:
    perms = claims.permissions_from_templates(
        "alice", ["{user}.>"], ["{user}.>", "_INBOX.{user}.>", "public.news"], response_max=2
    )
    assert perms == Permissions(
        publish=("alice.>",),
        subscribe=("alice.>", "_INBOX.alice.>", "public.news"),
        response_max=2,
        response_ttl=claims.DEFAULT_RESPONSE_TTL,
    )


def test_permissions_from_templates_fill_deny_lists() -> None:
    perms = claims.permissions_from_templates(
        "alice", [], [">"], publish_deny=[">"], subscribe_deny=["{user}.secret"]
    )
    assert perms.publish == ()
    assert perms.publish_deny == (">",)
    assert perms.subscribe_deny == ("alice.secret",)


def test_permissions_from_templates_accept_any_iterable() -> None:
    perms = claims.permissions_from_templates("bob", iter(["{user}.a"]), ("{user}.b",))
    assert perms.publish == ("bob.a",)
    assert perms.subscribe == ("bob.b",)
    assert perms.response_max == 0


def test_permissions_as_dict() -> None:
    perms = Permissions(("a.>",), ("b.>",), 2, timedelta(milliseconds=1500))
    assert perms.as_dict() == {
        "publish": ["a.>"],
        "subscribe": ["b.>"],
        "response_max": 2,
        "response_ttl_seconds": 1.5,
    }


def test_permissions_as_dict_shows_deny_lists_when_there_are_some() -> None:
    perms = Permissions(subscribe=(">",), publish_deny=(">",))
    assert perms.as_dict() == {
        "publish": [],
        "subscribe": [">"],
        "response_max": 0,
        "response_ttl_seconds": 0.0,
        "publish_deny": [">"],
    }


@pytest.mark.parametrize(
    "perms",
    [
        Permissions(),
        Permissions(publish=("a.>",)),
        Permissions(subscribe=("a.>", "_INBOX.a.>")),
        Permissions(("a.>", "b"), ("c",), 1, timedelta(seconds=30)),
        Permissions(("a.>",), ("a.>",), 5, timedelta(milliseconds=1001)),
        Permissions(("a.>",), ("a.>",), 5, timedelta(microseconds=123_457)),
        Permissions(subscribe=(">",), publish_deny=(">",)),
        Permissions(("a.>",), ("a.>",), publish_deny=("a.x",), subscribe_deny=("a.y", "a.z")),
    ],
)
def test_user_permissions_round_trip(perms: Permissions) -> None:
    body = claims.user_claims("u", "UKEY", perms)
    assert claims.user_permissions(body) == perms
    # ... also through a signed JWT
    token = jwt.encode(body, keys.create_seed(KeyKind.ACCOUNT))
    assert claims.user_permissions(jwt.verify(token)) == perms


def test_user_permissions_of_empty_claims() -> None:
    assert claims.user_permissions({}) == Permissions()
    assert claims.user_permissions({"nats": {"resp": None}}) == Permissions()
