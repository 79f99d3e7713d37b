"""The NSC service: a small HTTP API over the NSC wrapper (Flask, served by waitress).

Every endpoint but `/healthz` wants `Authorization: Bearer <token>`, the token the
stack generates at first start (0600, `<home>/secrets/nsc-service.token`).

    GET  /info                          operator, accounts, store, expiry
    POST /new-setup {operator, account} operator + account; returns the account JWT
    POST /new-user  {name, account?}    creates (or re-issues) a user; returns creds
    POST /revoke    {name, account?}    revokes the user and pushes the account JWT

A revocation is kept in the store before it is pushed; when the NATS server cannot
be reached the answer says `pushed: false` and the push is retried in the
background until the server has it (`labkit.nsc.delivery`).
"""

from __future__ import annotations

import argparse
import hmac
import logging
from typing import Any

from flask import Flask, Response, jsonify, request
from werkzeug.exceptions import HTTPException

from labkit.discovery import nats_urls
from labkit.errors import LabkitError
from labkit.files import read_or_create_secret
from labkit.nsc.delivery import AccountDelivery, Pusher
from labkit.nsc.errors import Conflict, InvalidName, NotFound, NscError, PushFailed
from labkit.nsc.push import push_account_jwt_sync
from labkit.nsc.wrapper import Nsc
from labkit.settings import Settings
from labkit.webservice.bodies import json_body, limit_request_bodies
from labkit.webservice.serving import serve_until_stopped

log = logging.getLogger("labkit.nsc.service")

# How long a request waits for another push in progress before leaving its own to the
# retry thread (seconds).
REQUEST_PUSH_WAIT = 1.0
_STATUS = {InvalidName: 422, NotFound: 404, Conflict: 409, PushFailed: 503}


class BadRequest(NscError):
    """The request body is not the JSON object the endpoint expects."""


def create_app(
    settings: Settings | None = None,
    *,
    nsc: Nsc | None = None,
    token: str | None = None,
    push: Pusher | None = None,
) -> Flask:
    """Build the NSC service app; `push` sends an account JWT to the running server."""
    settings = settings or Settings()
    nsc = nsc or Nsc.from_settings(settings)
    token = token or read_or_create_secret(settings.paths.nsc_token_file)
    delivery = AccountDelivery(
        nsc,
        push or _push_to_stack(settings, nsc),
        settings.nsc.push_retry_interval.total_seconds(),
    )
    app = Flask("labkit.nsc")
    app.extensions["labkit_nsc_delivery"] = delivery
    limit_request_bodies(app, settings.nsc.max_body_bytes)

    @app.before_request
    def _require_token() -> Response | tuple[Response, int] | None:
        if request.path == "/healthz":
            return None
        header = request.headers.get("Authorization", "")
        scheme, _, given = header.partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip(), token):
            return _error(401, "unauthorized", "send Authorization: Bearer <token> (see /info)")
        return None

    @app.get("/healthz")
    def healthz() -> Response:
        return jsonify(status="ok")

    @app.get("/info")
    def info() -> Response:
        body: dict[str, Any] = {
            "store_dir": str(nsc.store.root),
            "credential_expiry_seconds": int(nsc.settings.credential_expiry.total_seconds()),
            "set_up": nsc.is_set_up,
            "pending_pushes": delivery.pending(),
        }
        if nsc.is_set_up:
            body |= {
                "operator": nsc.operator_name,
                "system_account": nsc.system_account_key,
                "accounts": nsc.store.account_names(),
            }
        return jsonify(body)

    @app.post("/new-setup")
    def new_setup() -> Response:
        body = _json_body()
        operator, account = body.get("operator"), body.get("account")
        setup = nsc.setup(_optional_str(operator, "operator"), _optional_str(account, "account"))
        pushed = delivery.push(setup.account, wait=REQUEST_PUSH_WAIT)
        return jsonify(
            operator=setup.operator,
            account=setup.account,
            account_key=setup.account_key,
            account_jwt=setup.account_jwt,
            pushed=pushed,
        )

    @app.post("/new-user")
    def new_user() -> tuple[Response, int]:
        body = _json_body()
        issued = nsc.create_user(
            _required_str(body, "name"), _optional_str(body.get("account"), "account")
        )
        return jsonify(issued.as_dict()), 201

    @app.post("/revoke")
    def revoke() -> Response:
        body = _json_body()
        name = _required_str(body, "name")
        account = _optional_str(body.get("account"), "account") or nsc.settings.account
        account_jwt = nsc.revoke_user(name, account)
        # Revoked in the store, which every server start loads; a failed push is retried.
        pushed = delivery.push(account, wait=REQUEST_PUSH_WAIT)
        return jsonify(revoked=name, account_jwt=account_jwt, pushed=pushed)

    @app.errorhandler(LabkitError)
    def _labkit_error(exc: LabkitError) -> tuple[Response, int]:
        status = next((code for kind, code in _STATUS.items() if isinstance(exc, kind)), 400)
        return _error(status, type(exc).__name__, str(exc))

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException) -> tuple[Response, int]:
        return _error(exc.code or 500, exc.name.lower().replace(" ", "_"), exc.description or "")

    return app


def _push_to_stack(settings: Settings, nsc: Nsc) -> Pusher:
    def push(account_jwt: str) -> bool:
        """Push when a NATS server runs; False when none does (it loads the store at start)."""
        try:
            servers = nats_urls(settings)
        except LabkitError:
            return False
        push_account_jwt_sync(servers, nsc.system_creds(), account_jwt)
        return True

    return push


def _json_body() -> dict[str, Any]:
    body = json_body()
    if not isinstance(body, dict):
        raise BadRequest("send a JSON object body with Content-Type: application/json")
    return body


def _required_str(body: dict[str, Any], field: str) -> str:
    if field not in body:
        raise BadRequest(f"missing field {field!r}")
    value = body[field]
    if not isinstance(value, str):
        raise InvalidName(f"{field} must be a string")
    return value


def _optional_str(value: object, field: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidName(f"{field} must be a string")
    return value


def _error(status: int, error: str, detail: str) -> tuple[Response, int]:
    return jsonify(error=error, detail=detail), status


def main(argv: list[str] | None = None) -> None:
    """Serve the NSC service with waitress (the stack runs this as a process)."""
    parser = argparse.ArgumentParser(prog="python -m labkit.nsc.service")
    settings = Settings()
    parser.add_argument("--host", default=settings.nsc.service_host)
    parser.add_argument("--port", type=int, default=settings.nsc.service_port)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    app = create_app(settings)
    delivery: AccountDelivery = app.extensions["labkit_nsc_delivery"]
    delivery.start()
    log.info("NSC service store: %s", settings.paths.nsc_store)
    serve_until_stopped(
        app,
        host=args.host,
        port=args.port,
        threads=4,
        ident="labkit-nsc",
        max_body_bytes=settings.nsc.max_body_bytes,
        log=log,
        on_stop=delivery.stop,
    )


if __name__ == "__main__":
    main()
