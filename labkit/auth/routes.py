"""The endpoints: /register, /login, /refresh, /me, /logout (and /healthz).

The instructor's endpoints (/users...) are in labkit.auth.instructor_routes.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

from flask import Blueprint, Response, current_app, jsonify, request
from flask_jwt_extended import (
    create_access_token,
    create_refresh_token,
    get_jwt,
    get_jwt_identity,
    jwt_required,
)
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker
from werkzeug.security import check_password_hash, generate_password_hash

from labkit.auth.accounts import PASSWORD_METHOD, create_account, iso
from labkit.auth.accounts import new_user_id as new_user_id  # where it was first
from labkit.auth.errors import BadCredentials, TooManyAttempts
from labkit.auth.models import User
from labkit.auth.nsc_client import NscClient
from labkit.auth.rate_limit import LoginLimiter, RequestLimiter, Reservation
from labkit.auth.tokens import revoke, token_claims
from labkit.auth.validation import read_email_password
from labkit.settings import Settings
from labkit.webservice.bodies import json_body

BAD_LOGIN = "invalid email or password"
# Checked when the email is unknown, so both failures take as long (no enumeration).
_DUMMY_HASH = generate_password_hash(secrets.token_urlsafe(16), method=PASSWORD_METHOD)

routes = Blueprint("auth", __name__)


@dataclass
class AuthContext:
    """What the endpoints share, kept in `app.extensions["labkit_auth"]`."""

    settings: Settings
    sessions: sessionmaker[Session]
    nsc: NscClient | None
    nats_servers: list[str] | None
    login_limiter: LoginLimiter
    register_limiter: RequestLimiter

    def nsc_client(self) -> NscClient:
        if self.nsc is not None:
            return self.nsc
        from labkit.discovery import nsc_service

        # Looked up per call: a restarted NSC service may have a new port.
        return NscClient(*nsc_service(self.settings))

    def servers(self) -> list[str]:
        if self.nats_servers is not None:
            return self.nats_servers
        from labkit.discovery import nats_urls

        return nats_urls(self.settings)


def context() -> AuthContext:
    context: AuthContext = current_app.extensions["labkit_auth"]
    return context


@routes.get("/healthz")
def healthz() -> Response:
    return jsonify(status="ok")


@routes.post("/register")
def register() -> tuple[Response, int]:
    ctx = context()
    given = read_email_password(json_body(), ctx.settings.auth.min_password_length)
    # Counted once the body is valid, before the hash that makes a flood expensive
    # (a learner's typos do not use up the budget).
    wait = ctx.register_limiter.take(_client_address())
    if wait:
        raise TooManyAttempts(
            f"too many registrations from your address; try again in {wait} s", retry_after=wait
        )
    account = create_account(ctx.sessions, given.email, given.password)
    return jsonify(id=account.id, email=account.email), 201


@routes.post("/login")
def login() -> Response:
    ctx = context()
    given = read_email_password(json_body(), 1)
    # The attempt takes its place in the limits before the (slow) hash, atomically.
    reservation = ctx.login_limiter.reserve(given.email, _client_address())
    if not isinstance(reservation, Reservation):
        raise TooManyAttempts(
            f"too many failed logins; try again in {reservation} s", retry_after=reservation
        )
    try:
        with ctx.sessions() as session:
            user = session.scalars(select(User).where(User.email == given.email)).one_or_none()
        stored_hash = user.password_hash if user is not None else _DUMMY_HASH
        correct = check_password_hash(stored_hash, given.password) and user is not None
    except BaseException:
        ctx.login_limiter.release(reservation)  # not a wrong password: it does not count
        raise
    if not correct or user is None:
        raise BadCredentials(BAD_LOGIN)  # the reservation stays: one failure counted
    ctx.login_limiter.release(reservation)
    issued = ctx.nsc_client().issue_user(user.id)
    permissions = issued["permissions"]
    return jsonify(
        access_token=create_access_token(identity=user.id, additional_claims=token_claims(user)),
        refresh_token=create_refresh_token(identity=user.id, additional_claims=token_claims(user)),
        user_id=user.id,
        role=user.role,
        nats={
            "servers": ctx.servers(),
            "creds": issued["creds"],
            "expires_at": issued["expires_at"],
            "publish": permissions["publish"],
            "subscribe": permissions["subscribe"],
        },
    )


@routes.post("/refresh")
@jwt_required(refresh=True)
def refresh() -> Response:
    user_id = get_jwt_identity()
    with context().sessions() as session:
        user = session.get(User, user_id)
    if user is None:
        raise BadCredentials("this account no longer exists")
    token = create_access_token(identity=user.id, additional_claims=token_claims(user))
    return jsonify(access_token=token)


@routes.get("/me")
@jwt_required()
def me() -> Response:
    with context().sessions() as session:
        user = session.get(User, get_jwt_identity())
    if user is None:
        raise BadCredentials("this account no longer exists")
    return jsonify(id=user.id, email=user.email, role=user.role, created_at=iso(user.created_at))


@routes.post("/logout")
@jwt_required()
def logout() -> Response:
    ctx = context()
    payload: dict[str, Any] = get_jwt()
    nats = revoke_nats_credentials(ctx, str(payload["sub"]))
    revoke(ctx.sessions, payload)
    return jsonify(logged_out=True, **nats)


def revoke_nats_credentials(ctx: AuthContext, user_id: str) -> dict[str, bool]:
    """Revoke `user_id`'s NATS credentials: `{nats_revoked, nats_pushed}`.

    Called before the tokens are refused: when the NSC service cannot be reached this
    raises (503) with nothing changed, and a retry works. Once the NSC service has the
    revocation it keeps it and pushes it to the NATS server until the server has it,
    which cuts the user's live connections.
    """
    revocation = ctx.nsc_client().revoke_user(user_id)
    return {
        "nats_revoked": revocation is not None,
        "nats_pushed": bool(revocation and revocation.get("pushed")),
    }


def _client_address() -> str:
    return request.remote_addr or "unknown"
