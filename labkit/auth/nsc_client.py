"""Call the NSC service over HTTP: issue and revoke a user's NATS credentials."""

from __future__ import annotations

from typing import Any

import requests

from labkit.auth.errors import CredentialServiceUnavailable


class NscClient:
    """The auth service's view of the NSC service (url and bearer token)."""

    def __init__(self, url: str, token: str, timeout: float = 10.0) -> None:
        self.url = url.rstrip("/")
        self._headers = {"Authorization": f"Bearer {token}"}
        self.timeout = timeout

    def issue_user(self, name: str) -> dict[str, Any]:
        """Creds, expiry and permissions for `name` (a new JWT at each call)."""
        body: dict[str, Any] = self._post("/new-user", {"name": name}, expected=(201,))
        return body

    def revoke_user(self, name: str) -> dict[str, Any] | None:
        """Revoke `name`'s credentials: the service's answer, None when it had none."""
        try:
            answer: dict[str, Any] = self._post("/revoke", {"name": name}, expected=(200,))
        except _NotFound:
            return None
        return answer

    def _post(self, path: str, body: dict[str, Any], expected: tuple[int, ...]) -> Any:
        try:
            response = requests.post(
                self.url + path, json=body, headers=self._headers, timeout=self.timeout
            )
        except requests.RequestException as exc:
            raise CredentialServiceUnavailable(
                f"the NSC service at {self.url} cannot be reached ({exc}); "
                "start it with `python -m labkit up`"
            ) from exc
        if response.status_code == 404:
            raise _NotFound(response.text)
        if response.status_code not in expected:
            raise CredentialServiceUnavailable(
                f"the NSC service answered {response.status_code} to {path}: {response.text[:200]}"
            )
        return response.json()


class _NotFound(Exception):
    pass
