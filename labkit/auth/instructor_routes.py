"""The instructor's endpoints: list the accounts, revoke a learner, reset a password.

Each needs the access token of an account whose role is "instructor", read from the
database at every request (a demoted instructor loses the rights at once); anyone
else gets 403, no token 401.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar, cast

from flask import Blueprint, Response, jsonify
from flask_jwt_extended import get_jwt_identity, verify_jwt_in_request

from labkit.auth.accounts import (
    end_sessions,
    get_account,
    list_accounts,
    new_password,
    set_password,
)
from labkit.auth.errors import BadCredentials, NotAnInstructor, UnknownUser
from labkit.auth.roles import INSTRUCTOR, is_instructor
from labkit.auth.routes import context, revoke_nats_credentials

instructor_routes = Blueprint("instructor", __name__)
View = TypeVar("View", bound=Callable[..., Any])


def instructor_required(view: View) -> View:
    """Let the request through only with an instructor's valid access token."""

    @wraps(view)
    def checked(*args: Any, **kwargs: Any) -> Any:
        verify_jwt_in_request()
        try:
            caller = get_account(context().sessions, str(get_jwt_identity()))
        except UnknownUser:
            raise BadCredentials("this account no longer exists") from None
        if not is_instructor(caller.role):
            raise NotAnInstructor(
                f"only an {INSTRUCTOR} may do this; you are logged in as a {caller.role} "
                "(`python -m labkit instructor add EMAIL` makes an instructor)"
            )
        return view(*args, **kwargs)

    return cast(View, checked)


@instructor_routes.get("/users")
@instructor_required
def users() -> Response:
    """Every account: id, email, role, created_at (never a password hash)."""
    return jsonify(users=[account.as_dict() for account in list_accounts(context().sessions)])


@instructor_routes.post("/users/<user_id>/revoke")
@instructor_required
def revoke_user(user_id: str) -> Response:
    """Log the user out everywhere: NATS credentials revoked (live connections cut),
    every token refused. They may log in again (a new password needs /password)."""
    ctx = context()
    account = get_account(ctx.sessions, user_id)  # 404 before touching NATS
    nats = revoke_nats_credentials(ctx, account.id)
    end_sessions(ctx.sessions, account.id)
    return jsonify(id=account.id, email=account.email, revoked=True, **nats)


@instructor_routes.post("/users/<user_id>/password")
@instructor_required
def reset_password(user_id: str) -> Response:
    """Give the user a new random password, answered once (it is stored hashed only)."""
    password = new_password()
    account = set_password(context().sessions, user_id, password)
    return jsonify(id=account.id, email=account.email, password=password)
