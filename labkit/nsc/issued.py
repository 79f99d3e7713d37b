"""What the NSC wrapper hands back: a user's issued credentials, an operator's setup."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from labkit.nsc.claims import Permissions


@dataclass(frozen=True)
class IssuedUser:
    """A user's freshly issued credentials."""

    name: str
    account: str
    public_key: str
    jwt: str
    creds: str
    creds_path: Path
    expires_at: datetime | None
    permissions: Permissions

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "account": self.account,
            "public_key": self.public_key,
            "jwt": self.jwt,
            "creds": self.creds,
            "expires_at": self.expires_at.isoformat() if self.expires_at else None,
            "permissions": self.permissions.as_dict(),
        }


@dataclass(frozen=True)
class Setup:
    """The operator and one account, as set up by `Nsc.setup`."""

    operator: str
    operator_jwt: str
    system_account_key: str
    account: str
    account_key: str
    account_jwt: str
