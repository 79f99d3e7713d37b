"""Build the claims of operator, account and user JWTs; pure functions, no IO.

Field names follow the NATS JWT v2 schema the server reads (see
NATS_OPERATOR_MODE.md for the ones that bite: `version: 2`, `signing_keys` as a
list, JetStream through non-zero storage limits, integer response TTLs).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from labkit.nsc.jwt import Claims

UNLIMITED = -1
JWT_VERSION = 2
# How long a responder may answer a request it received (the server's default too).
DEFAULT_RESPONSE_TTL = timedelta(minutes=2)
# A permission list naming every subject (for a deny list: nothing is allowed).
EVERY_SUBJECT: tuple[str, ...] = (">",)


@dataclass(frozen=True)
class Permissions:
    """What a user may publish and subscribe to, and how many replies it may send.

    An empty allow list allows everything (NATS reads a missing list that way), so a
    user that may publish nothing needs `publish_deny=(">",)`; a deny wins over an allow.
    """

    publish: tuple[str, ...] = ()
    subscribe: tuple[str, ...] = ()
    # The response permission: the user may reply `response_max` times to a request it
    # received, within `response_ttl`, without a publish right on the reply subject.
    response_max: int = 0
    response_ttl: timedelta = field(default=timedelta(0))
    publish_deny: tuple[str, ...] = ()
    subscribe_deny: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "publish": list(self.publish),
            "subscribe": list(self.subscribe),
            "response_max": self.response_max,
            "response_ttl_seconds": self.response_ttl.total_seconds(),
        }
        # Deny lists are rare (the observer): shown only when there are some.
        if self.publish_deny:
            body["publish_deny"] = list(self.publish_deny)
        if self.subscribe_deny:
            body["subscribe_deny"] = list(self.subscribe_deny)
        return body


def permissions_from_templates(
    user: str,
    publish: Iterable[str],
    subscribe: Iterable[str],
    response_max: int = 0,
    response_ttl: timedelta = DEFAULT_RESPONSE_TTL,
    *,
    publish_deny: Iterable[str] = (),
    subscribe_deny: Iterable[str] = (),
) -> Permissions:
    """Fill `{user}` in permission templates with the user's name."""
    return Permissions(
        publish=_fill(publish, user),
        subscribe=_fill(subscribe, user),
        response_max=response_max,
        response_ttl=response_ttl if response_max else timedelta(0),
        publish_deny=_fill(publish_deny, user),
        subscribe_deny=_fill(subscribe_deny, user),
    )


def _fill(templates: Iterable[str], user: str) -> tuple[str, ...]:
    return tuple(template.format(user=user) for template in templates)


def operator_claims(
    name: str, operator_key: str, system_account: str, signing_keys: Iterable[str] = ()
) -> Claims:
    """Self-signed operator claims naming the system account."""
    nats: dict[str, Any] = {"type": "operator", "version": JWT_VERSION}
    if signing_keys:
        nats["signing_keys"] = list(signing_keys)
    nats["system_account"] = system_account
    return {"name": name, "sub": operator_key, "nats": nats}


def account_claims(
    name: str,
    account_key: str,
    *,
    signing_keys: Iterable[str] = (),
    jetstream: bool = True,
    revocations: Mapping[str, int] | None = None,
    mappings: Mapping[str, str] | None = None,
    system: bool = False,
) -> Claims:
    """Account claims; JetStream is enabled by giving it unlimited storage."""
    limits: dict[str, Any] = {
        "subs": UNLIMITED,
        "data": UNLIMITED,
        "payload": UNLIMITED,
        "imports": UNLIMITED,
        "exports": UNLIMITED,
        "wildcards": True,
        "conn": UNLIMITED,
        "leaf": UNLIMITED,
    }
    if jetstream and not system:
        limits |= {
            "mem_storage": UNLIMITED,
            "disk_storage": UNLIMITED,
            "streams": UNLIMITED,
            "consumer": UNLIMITED,
        }
    nats: dict[str, Any] = {
        "limits": limits,
        "default_permissions": {"pub": {}, "sub": {}},
        "type": "account",
        "version": JWT_VERSION,
    }
    if signing_keys:
        nats["signing_keys"] = list(signing_keys)
    if revocations:
        nats["revocations"] = dict(sorted(revocations.items()))
    if mappings:
        # Subject mappings: a message published on the source is delivered on the target.
        nats["mappings"] = {
            source: [{"subject": target, "weight": 100}] for source, target in mappings.items()
        }
    return {"name": name, "sub": account_key, "nats": nats}


@dataclass(frozen=True)
class UserLimits:
    """What one connection of a user may hold: subscriptions, message size, data.

    The server enforces `subs` (a further SUB is refused) and `payload` (a larger
    PUB closes the connection); `data` is carried for completeness (-1: none).
    """

    subscriptions: int = UNLIMITED
    payload: int = UNLIMITED
    data: int = UNLIMITED


def user_claims(
    name: str,
    user_key: str,
    permissions: Permissions,
    *,
    expires_at: datetime | None = None,
    issuer_account: str | None = None,
    limits: UserLimits | None = None,
) -> Claims:
    """User claims with allow and deny lists, response permission, limits and expiry.

    `issuer_account` must be the account's identity key when the JWT is signed by
    one of the account's signing keys, or the server answers "Authorization Violation".
    """
    limits = limits or UserLimits()
    nats: dict[str, Any] = {
        "pub": _permission(permissions.publish, permissions.publish_deny),
        "sub": _permission(permissions.subscribe, permissions.subscribe_deny),
        "subs": limits.subscriptions,
        "data": limits.data,
        "payload": limits.payload,
        "type": "user",
        "version": JWT_VERSION,
    }
    if permissions.response_max:
        # The server wants the TTL in integer nanoseconds: a float reads as no JWT at all.
        ttl_ns = permissions.response_ttl // timedelta(microseconds=1) * 1000
        nats["resp"] = {"max": permissions.response_max, "ttl": ttl_ns}
    if issuer_account:
        nats["issuer_account"] = issuer_account
    claims: Claims = {"name": name, "sub": user_key, "nats": nats}
    if expires_at is not None:
        claims["exp"] = int(expires_at.timestamp())
    return claims


def _permission(allow: tuple[str, ...], deny: tuple[str, ...]) -> dict[str, list[str]]:
    """`{allow?, deny?}`: an empty list is left out (an empty allow list means allow all)."""
    permission = {}
    if allow:
        permission["allow"] = list(allow)
    if deny:
        permission["deny"] = list(deny)
    return permission


def user_limits(claims: Claims) -> UserLimits:
    """Read the limits back out of user claims."""
    nats = claims.get("nats", {})
    return UserLimits(
        subscriptions=int(nats.get("subs", UNLIMITED)),
        payload=int(nats.get("payload", UNLIMITED)),
        data=int(nats.get("data", UNLIMITED)),
    )


def user_permissions(claims: Claims) -> Permissions:
    """Read the permissions back out of user claims."""
    nats = claims.get("nats", {})
    resp = nats.get("resp") or {}
    pub = nats.get("pub") or {}
    sub = nats.get("sub") or {}
    return Permissions(
        publish=tuple(pub.get("allow") or ()),
        subscribe=tuple(sub.get("allow") or ()),
        response_max=int(resp.get("max", 0)),
        response_ttl=timedelta(microseconds=int(resp.get("ttl", 0)) // 1000),
        publish_deny=tuple(pub.get("deny") or ()),
        subscribe_deny=tuple(sub.get("deny") or ()),
    )
