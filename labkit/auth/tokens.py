"""Access and refresh tokens: JSON errors for every token failure, and revocation."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from flask import Flask, Response, jsonify
from flask_jwt_extended import JWTManager
from sqlalchemy.orm import Session, sessionmaker

from labkit.auth.models import RevokedToken, User

Reply = tuple[Response, int]
GENERATION_CLAIM = "gen"


def install_jwt(app: Flask, sessions: sessionmaker[Session]) -> JWTManager:
    """Configure flask-jwt-extended: 401 JSON for missing, bad, expired or revoked tokens."""
    manager = JWTManager(app)

    def unauthorized(error: str, detail: str) -> Reply:
        return jsonify(error=error, detail=detail), 401

    @manager.unauthorized_loader
    def _missing(reason: str) -> Reply:
        return unauthorized("missing_token", f"{reason}: send Authorization: Bearer <token>")

    @manager.invalid_token_loader
    def _invalid(reason: str) -> Reply:
        return unauthorized("invalid_token", f"the token is not valid ({reason}); log in again")

    @manager.expired_token_loader
    def _expired(_header: dict[str, Any], payload: dict[str, Any]) -> Reply:
        what = "refresh" if payload.get("type") == "refresh" else "access"
        hint = "log in again" if what == "refresh" else "POST /refresh or log in again"
        return unauthorized("token_expired", f"the {what} token has expired; {hint}")

    @manager.revoked_token_loader
    def _revoked(_header: dict[str, Any], _payload: dict[str, Any]) -> Reply:
        return unauthorized("token_revoked", "the token was revoked (logout); log in again")

    @manager.token_in_blocklist_loader
    def _is_revoked(_header: dict[str, Any], payload: dict[str, Any]) -> bool:
        return is_revoked(sessions, payload)

    return manager


def is_revoked(sessions: sessionmaker[Session], payload: dict[str, Any]) -> bool:
    """True for a token on the blocklist, or issued before its user's last logout."""
    with sessions() as session:
        if session.get(RevokedToken, payload["jti"]) is not None:
            return True
        user = session.get(User, payload["sub"])
        return user is None or payload.get(GENERATION_CLAIM) != user.token_generation


def revoke(sessions: sessionmaker[Session], payload: dict[str, Any]) -> None:
    """Put one token on the blocklist and refuse every token the user had before."""
    expires = datetime.fromtimestamp(int(payload["exp"]), UTC)
    with sessions.begin() as session:
        if session.get(RevokedToken, payload["jti"]) is None:
            session.add(RevokedToken(jti=payload["jti"], expires_at=expires))
        user = session.get(User, payload["sub"])
        if user is not None:
            user.token_generation += 1


def token_claims(user: User) -> dict[str, Any]:
    """The claims labkit adds to each token it issues for `user`."""
    return {"email": user.email, GENERATION_CLAIM: user.token_generation}
