"""Finding 7 (auth side): logout is all or nothing.

Before the fix, logout with the NSC service down answered 503 after it had
already revoked the tokens: the NATS credentials stayed valid (183 days) and a
retry got 401. Now the NATS revocation comes first: when it cannot be made,
nothing changes and the retry works; once it is made, the tokens are refused.
"""

from __future__ import annotations

import requests

from labkit.auth.client import AuthRequestFailed
from labkit.auth.nsc_client import NscClient
from labkit.stack import Stack
from tests.auth.conftest import (  # noqa: F401  (fixtures)
    PASSWORD,
    ServeAuth,
    database_url,
    email,
    serve_auth,
)
from tests.nats_helpers import assert_connect_refused
from tests.security.identity_processes import free_port
from tests.security.test_identity_revocation_push import can_connect


def test_logout_with_the_nsc_service_down_changes_nothing_and_a_retry_works(
    running_stack: Stack,
    serve_auth: ServeAuth,  # noqa: F811  (the fixture imported above)
    email: str,  # noqa: F811
) -> None:
    token = running_stack.settings.paths.nsc_token_file.read_text().strip()
    nsc = NscClient(running_stack.url("nsc"), token)
    nats_url = running_stack.url("nats")
    with serve_auth(nsc=nsc) as auth:
        auth.client.register(email, PASSWORD)
        login = auth.client.login(email, PASSWORD)
        real_url = nsc.url
        nsc.url = f"http://127.0.0.1:{free_port()}"  # nothing listens there: the service is down
        try:
            auth.client.logout(login)
        except AuthRequestFailed as failed:
            assert failed.status == 503
            assert failed.error == "nsc_unavailable"
        else:
            raise AssertionError("logout succeeded without the NSC service")
        # Nothing changed: the tokens work and so do the NATS credentials.
        assert auth.client.me(login)["email"] == email
        assert can_connect(nats_url, login.nats.creds)
        nsc.url = real_url
        answer = auth.client.logout(login)
        assert answer == {"logged_out": True, "nats_revoked": True, "nats_pushed": True}
        refused = requests.get(
            f"{auth.url}/me", headers={"Authorization": f"Bearer {login.access_token}"}, timeout=10
        )
        assert refused.status_code == 401
        assert_connect_refused(nats_url, login.nats.creds)
