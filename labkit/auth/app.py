"""The auth service's application factory (Flask + flask-jwt-extended).

The JWT signing secret is generated at first start and kept 0600 in the data
directory; there is no default secret.
"""

from __future__ import annotations

import argparse
import logging

from flask import Flask, Response, jsonify
from sqlalchemy import Engine, make_url
from werkzeug.exceptions import HTTPException

from labkit.auth.database import create_schema, database_url, make_engine, session_factory
from labkit.auth.errors import AuthError, MalformedRequest, TooManyAttempts
from labkit.auth.instructor_routes import instructor_routes
from labkit.auth.nsc_client import NscClient
from labkit.auth.rate_limit import LoginLimiter, RequestLimiter
from labkit.auth.routes import AuthContext, routes
from labkit.auth.tokens import install_jwt
from labkit.errors import LabkitError
from labkit.files import read_or_create_secret
from labkit.settings import Settings
from labkit.webservice.bodies import MalformedJson, limit_request_bodies
from labkit.webservice.serving import serve_until_stopped

log = logging.getLogger("labkit.auth")


def create_app(
    settings: Settings | None = None,
    *,
    engine: Engine | None = None,
    nsc: NscClient | None = None,
    nats_servers: list[str] | None = None,
) -> Flask:
    """Build the auth app; by default the database, NSC service and NATS come from settings."""
    settings = settings or Settings()
    engine = engine or make_engine(database_url(settings))
    create_schema(engine)
    app = Flask("labkit.auth")
    limit_request_bodies(app, settings.auth.max_body_bytes)
    app.config.update(
        JWT_SECRET_KEY=read_or_create_secret(settings.paths.auth_secret_file, 48),
        JWT_ACCESS_TOKEN_EXPIRES=settings.auth.access_token_expiry,
        JWT_REFRESH_TOKEN_EXPIRES=settings.auth.refresh_token_expiry,
        JWT_TOKEN_LOCATION=["headers"],
    )
    sessions = session_factory(engine)
    window = settings.auth.login_window.total_seconds()
    app.extensions["labkit_auth"] = AuthContext(
        settings=settings,
        sessions=sessions,
        nsc=nsc,
        nats_servers=nats_servers,
        login_limiter=LoginLimiter(
            per_email_from_address=settings.auth.login_attempts_per_email,
            per_address=settings.auth.login_attempts_per_address,
            per_email=settings.auth.login_attempts_per_email_everywhere,
            window=window,
        ),
        register_limiter=RequestLimiter(
            settings.auth.registrations_per_address,
            settings.auth.registration_window.total_seconds(),
        ),
    )
    install_jwt(app, sessions)
    app.register_blueprint(routes)
    app.register_blueprint(instructor_routes)

    @app.errorhandler(AuthError)
    def _auth_error(exc: AuthError) -> tuple[Response, int]:
        response = jsonify(error=exc.code, detail=exc.detail)
        if isinstance(exc, TooManyAttempts):
            response.headers["Retry-After"] = str(exc.retry_after)
        return response, exc.status

    @app.errorhandler(MalformedJson)
    def _malformed_json(exc: MalformedJson) -> tuple[Response, int]:
        return jsonify(error=MalformedRequest.code, detail=str(exc)), MalformedRequest.status

    @app.errorhandler(LabkitError)
    def _labkit_error(exc: LabkitError) -> tuple[Response, int]:
        # e.g. the stack is not running: the service cannot find NATS or the NSC service.
        return jsonify(error="unavailable", detail=str(exc)), 503

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException) -> tuple[Response, int]:
        code = exc.name.lower().replace(" ", "_")
        return jsonify(error=code, detail=exc.description or ""), exc.code or 500

    return app


def main(argv: list[str] | None = None) -> None:
    """Serve the auth service with waitress (the stack runs this as a process)."""
    settings = Settings()
    parser = argparse.ArgumentParser(prog="python -m labkit.auth.app")
    parser.add_argument("--host", default=settings.auth.host)
    parser.add_argument("--port", type=int, default=settings.auth.port)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    app = create_app(settings)
    shown = make_url(database_url(settings)).render_as_string(hide_password=True)
    log.info("auth service database: %s", shown)
    serve_until_stopped(
        app,
        host=args.host,
        port=args.port,
        threads=8,
        ident="labkit-auth",
        max_body_bytes=settings.auth.max_body_bytes,
        log=log,
    )


if __name__ == "__main__":
    main()
