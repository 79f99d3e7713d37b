"""The NSC wrapper: operators, accounts, users, revocations and creds, in Python.

It replaces the `nsc` Go tool (not installable here) with nkeys and our own claim
builders. Every change is written to the Keystore under its lock; pushing an
account JWT to a running server is left to `labkit.nsc.push` and `labkit.nsc.delivery`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from labkit.nsc import claims, jwt, keys
from labkit.nsc.claims import Permissions
from labkit.nsc.creds import format_creds
from labkit.nsc.errors import Conflict, InvalidExpiry, InvalidName, NotFound
from labkit.nsc.issued import IssuedUser, Setup
from labkit.nsc.keys import KeyKind
from labkit.nsc.names import (
    reserved_reason,
    stack_user_names,
    validate_name,
    validate_user_name,
)
from labkit.nsc.store import Keystore
from labkit.settings import NscSettings, Settings

# What happens once a learner's creds are stored (Nsc.from_settings: announce them).
UserHook = Callable[[IssuedUser], object]

SYSTEM_ACCOUNT = "SYS"
SYSTEM_USER = "sys"


class Nsc:
    """Create and manage NATS operator, accounts and users in one on-disk store."""

    def __init__(
        self,
        store_dir: Path,
        settings: NscSettings | None = None,
        *,
        on_user_created: UserHook | None = None,
    ) -> None:
        self.settings = settings or NscSettings()
        self.store = Keystore(store_dir)
        # Called after a learner's creds are stored, before create_user returns them.
        self.on_user_created = on_user_created

    @classmethod
    def from_settings(cls, settings: Settings) -> Nsc:
        """The stack's store; each learner created is announced to the running servers.

        The announcement (labkit.nsc.announce) makes the application servers read the
        new learner's subjects before the caller can use the creds.
        """
        from labkit.nsc.announce import UserAnnouncer

        nsc = cls(settings.paths.nsc_store, settings.nsc)
        nsc.on_user_created = UserAnnouncer(settings, nsc.server_creds)
        return nsc

    # operator and accounts
    def setup(self, operator: str | None = None, account: str | None = None) -> Setup:
        """Ensure the operator (with its system account) and an account exist; idempotent."""
        operator = validate_name(
            self.settings.operator if operator is None else operator, "operator name"
        )
        account = self._account(account)
        with self.store.locked():
            operator_jwt = self._ensure_operator(operator)
            account_jwt = self._ensure_account(account)
        return Setup(
            operator=operator,
            operator_jwt=operator_jwt,
            system_account_key=self.system_account_key,
            account=account,
            account_key=self.account_key(account),
            account_jwt=account_jwt,
        )

    @property
    def is_set_up(self) -> bool:
        return self.store.operator_path.exists()

    @property
    def operator_name(self) -> str:
        return str(self._claims(self.store.operator_path, "the operator")["name"])

    @property
    def system_account_key(self) -> str:
        nats = self._claims(self.store.operator_path, "the operator")["nats"]
        return str(nats["system_account"])

    def account_key(self, account: str) -> str:
        return str(self._claims(self.store.account_path(account), f"account {account!r}")["sub"])

    def account_jwts(self) -> dict[str, str]:
        """Every account's JWT, keyed by the account's public key (for the resolver)."""
        result = {}
        for name in self.store.account_names():
            token = self.read_account_jwt(name)
            result[str(jwt.decode(token)["sub"])] = token
        return result

    def read_operator_jwt(self) -> str:
        return self.store.read(self.store.operator_path, "the operator (run setup first)")

    def read_account_jwt(self, account: str | None = None) -> str:
        account = self._account(account, reading=True)
        return self.store.read(self.store.account_path(account), f"account {account!r}")

    # users
    def create_user(
        self,
        name: str,
        account: str | None = None,
        *,
        permissions: Permissions | None = None,
        expires_in: timedelta | None = None,
    ) -> IssuedUser:
        """Issue credentials for `name`; an existing user keeps its key and gets a new JWT.

        Permissions default to the NscSettings templates, expiry to `credential_expiry`.
        Names the stack keeps for itself are refused (ReservedName): see `issue_stack_user`.
        Then `on_user_created` runs (from settings: the running servers are told).
        """
        name = validate_user_name(name, self.stack_users)
        issued = self._create(name, account, permissions, expires_in, limited=True)
        if self.on_user_created is not None:  # outside the store's lock
            self.on_user_created(issued)
        return issued

    async def create_user_in_thread(
        self,
        name: str,
        account: str | None = None,
        *,
        permissions: Permissions | None = None,
        expires_in: timedelta | None = None,
    ) -> IssuedUser:
        """`create_user` from a coroutine, run off the event loop.

        `create_user` waits for the running servers to answer the new user's
        announcement (labkit.nsc.announce); a Server in the caller's own loop can only
        answer if that loop is free meanwhile.
        """
        return await asyncio.to_thread(
            self.create_user, name, account, permissions=permissions, expires_in=expires_in
        )

    def issue_stack_user(self, name: str, permissions: Permissions) -> IssuedUser:
        """(Re-)issue one of the stack's own users: only a reserved name is accepted here."""
        name = validate_name(name, "stack user name")
        if reserved_reason(name, self.stack_users) is None:
            raise InvalidName(
                f"{name!r} is not a stack user's name: the stack's users begin with 'labkit_' "
                "(or are the server and observer users named in the settings)"
            )
        # The stack's own users carry no limits: the server subscribes for every learner.
        return self._create(name, None, permissions, None, limited=False)

    @property
    def user_limits(self) -> claims.UserLimits:
        """The limits every learner's JWT carries (NscSettings.user_max_*)."""
        return claims.UserLimits(
            subscriptions=self.settings.user_max_subscriptions,
            payload=self.settings.user_max_payload,
        )

    @property
    def stack_users(self) -> frozenset[str]:
        """The stack's own users (server, observer): no learner may take these names."""
        return stack_user_names(self.settings)

    def _create(
        self,
        name: str,
        account: str | None,
        permissions: Permissions | None,
        expires_in: timedelta | None,
        *,
        limited: bool,
    ) -> IssuedUser:
        account = self._account(account)
        with self.store.locked():
            self._require_account(account)
            path = self.store.user_path(account, name)
            user_key = (
                str(jwt.decode(self.store.read(path, "user"))["sub"]) if path.exists() else None
            )
            return self._issue(name, account, user_key, permissions, expires_in, limited=limited)

    def edit_user(
        self,
        name: str,
        account: str | None = None,
        *,
        permissions: Permissions | None = None,
        expires_in: timedelta | None = None,
    ) -> IssuedUser:
        """Re-issue an existing user's JWT with new permissions and/or expiry."""
        name = validate_user_name(name, self.stack_users)
        account = self._account(account)
        with self.store.locked():
            current = jwt.decode(self.read_user_jwt(name, account))
            if permissions is None:
                permissions = claims.user_permissions(current)
            return self._issue(
                name, account, str(current["sub"]), permissions, expires_in, limited=True
            )

    def issue_server_user(self) -> IssuedUser:
        """(Re-)issue the application server's credentials from the server templates."""
        settings = self.settings
        permissions = claims.permissions_from_templates(
            settings.server_user,
            settings.server_publish,
            settings.server_subscribe,
            settings.server_response_max,
            settings.server_response_ttl,
        )
        return self.issue_stack_user(settings.server_user, permissions)

    def server_creds(self) -> str:
        """The application server's creds (the stack issues them when NATS starts)."""
        return self.user_creds(self.settings.server_user)

    def issue_observer_user(self) -> IssuedUser:
        """(Re-)issue the wire tap's credentials: subscribe from the templates, publish nothing."""
        settings = self.settings
        permissions = claims.permissions_from_templates(
            settings.observer_user,
            publish=(),
            subscribe=settings.observer_subscribe,
            # An empty allow list allows everything: deny every subject instead.
            publish_deny=claims.EVERY_SUBJECT,
        )
        return self.issue_stack_user(settings.observer_user, permissions)

    def observer_creds(self) -> str:
        """The wire tap's subscribe-only creds (the stack issues them when NATS starts)."""
        return self.user_creds(self.settings.observer_user)

    def read_user_jwt(self, name: str, account: str | None = None) -> str:
        account = self._account(account, reading=True)
        return self.store.read(self.store.user_path(account, name), f"user {name!r} in {account!r}")

    def user_creds(self, name: str, account: str | None = None) -> str:
        """The stored creds text of an existing user."""
        account = self._account(account, reading=True)
        return self.store.read(
            self.store.creds_path(account, name), f"creds of user {name!r} in {account!r}"
        )

    def users(self, account: str | None = None) -> list[str]:
        return self.store.user_names(self._account(account, reading=True))

    def system_creds(self) -> str:
        """Creds of the system-account user that pushes account updates to the server."""
        return self.user_creds(SYSTEM_USER, SYSTEM_ACCOUNT)

    def revoke_user(self, name: str, account: str | None = None) -> str:
        """Revoke a user's JWTs issued up to now; returns the account JWT to push.

        The user's key is forgotten, so issuing credentials again makes a new key that
        the revocation does not cover.
        """
        name = validate_user_name(name, self.stack_users)
        account = self._account(account)
        with self.store.locked():
            user_key = str(jwt.decode(self.read_user_jwt(name, account))["sub"])
            account_claims = self._claims(self.store.account_path(account), f"account {account!r}")
            revocations = dict(account_claims["nats"].get("revocations", {}))
            # The server revokes JWTs issued at or before this second.
            revocations[user_key] = int(time.time())
            token = self._sign_account(account, str(account_claims["sub"]), revocations)
            self.store.delete_user(account, name)
            self.store.delete_seed(user_key)
            return token

    # pushes to the running server (labkit.nsc.delivery)
    def unpushed_accounts(self) -> list[str]:
        """Accounts changed (a revocation...) since the running server last confirmed them."""
        return self.store.unpushed_accounts()

    def mark_pushed(self, account: str, account_jwt: str) -> bool:
        """Record that the server has `account_jwt`; False if the account changed since."""
        with self.store.locked():
            if self.read_account_jwt(account) != account_jwt:
                return False
            self.store.mark_pushed(account)
            return True

    # internals (callers hold the lock)
    def _ensure_operator(self, name: str) -> str:
        if self.store.operator_path.exists():
            existing = self.operator_name
            if existing != name:
                raise Conflict(
                    f"this store already holds operator {existing!r}; one store holds one "
                    f"operator (use another LABKIT_HOME or LABKIT_NSC_STORE_DIR for {name!r})"
                )
            return self.read_operator_jwt()
        operator_key = self.store.save_seed(keys.create_seed(KeyKind.OPERATOR))
        system_key = self.store.save_seed(keys.create_seed(KeyKind.ACCOUNT))
        operator_seed = self.store.seed(operator_key)
        token = jwt.encode(claims.operator_claims(name, operator_key, system_key), operator_seed)
        self.store.write_jwt(self.store.operator_path, token)
        system = claims.account_claims(SYSTEM_ACCOUNT, system_key, system=True)
        self.store.write_jwt(
            self.store.account_path(SYSTEM_ACCOUNT), jwt.encode(system, operator_seed)
        )
        self._issue(SYSTEM_USER, SYSTEM_ACCOUNT, None, Permissions(), None, signer=system_key)
        return token

    def _ensure_account(self, account: str) -> str:
        path = self.store.account_path(account)
        if path.exists():
            token = self.store.read(path, f"account {account!r}")
            current = jwt.decode(token)
            if _mapped(current) == self.settings.account_mappings:
                return token
            # The settings' subject mappings changed: sign the account again, keeping
            # its key, signing key and revocations.
            revocations = dict(current["nats"].get("revocations", {}))
            return self._sign_account(account, str(current["sub"]), revocations)
        account_key = self.store.save_seed(keys.create_seed(KeyKind.ACCOUNT))
        return self._sign_account(account, account_key, {})

    def _sign_account(self, account: str, account_key: str, revocations: dict[str, int]) -> str:
        path = self.store.account_path(account)
        signing_keys = []
        if path.exists():
            signing_keys = list(self._claims(path, account)["nats"].get("signing_keys", []))
        if not signing_keys:
            signing_keys = [self.store.save_seed(keys.create_seed(KeyKind.ACCOUNT))]
        body = claims.account_claims(
            account,
            account_key,
            signing_keys=signing_keys,
            revocations=revocations,
            mappings=self.settings.account_mappings,
        )
        operator_key = str(self._claims(self.store.operator_path, "the operator")["sub"])
        token = jwt.encode(body, self.store.seed(operator_key))
        self.store.write_jwt(path, token)
        self.store.mark_unpushed(account)
        return token

    def _issue(
        self,
        name: str,
        account: str,
        user_key: str | None,
        permissions: Permissions | None,
        expires_in: timedelta | None,
        *,
        signer: str | None = None,
        limited: bool = False,
    ) -> IssuedUser:
        if user_key is None:
            user_key = self.store.save_seed(keys.create_seed(KeyKind.USER))
        if permissions is None:
            permissions = claims.permissions_from_templates(
                name,
                self.settings.user_publish,
                self.settings.user_subscribe,
                self.settings.user_response_max,
            )
        expires_at = None
        if expires_in is not None and expires_in <= timedelta(0):
            raise InvalidExpiry(f"expires_in must be positive, got {expires_in}")
        if account != SYSTEM_ACCOUNT:
            lifetime = expires_in if expires_in is not None else self.settings.credential_expiry
            expires_at = datetime.now(UTC).replace(microsecond=0) + lifetime
        account_claims = self._claims(self.store.account_path(account), f"account {account!r}")
        account_key = str(account_claims["sub"])
        if signer is None:
            # Users are signed by the account's signing key, so the identity key can stay
            # offline; the server then needs issuer_account to find the account.
            signer = str(account_claims["nats"]["signing_keys"][0])
        body = claims.user_claims(
            name,
            user_key,
            permissions,
            expires_at=expires_at,
            issuer_account=account_key if signer != account_key else None,
            limits=self.user_limits if limited else None,
        )
        token = jwt.encode(body, self.store.seed(signer))
        self.store.write_jwt(self.store.user_path(account, name), token)
        creds = format_creds(token, self.store.seed(user_key))
        creds_path = self.store.write_creds(account, name, creds)
        return IssuedUser(
            name, account, user_key, token, creds, creds_path, expires_at, permissions
        )

    def _account(self, account: str | None, *, reading: bool = False) -> str:
        """The named account (default when none); the system account only for reading."""
        name = validate_name(self.settings.account if account is None else account, "account name")
        if name == SYSTEM_ACCOUNT and not reading:
            raise Conflict(f"{SYSTEM_ACCOUNT} is the system account; labkit manages its one user")
        return name

    def _require_account(self, account: str) -> None:
        if not self.store.account_path(account).exists():
            raise NotFound(f"account {account!r} does not exist; run setup (POST /new-setup) first")

    def _claims(self, path: Path, what: str) -> jwt.Claims:
        return jwt.decode(self.store.read(path, what))


def _mapped(account_claims: jwt.Claims) -> dict[str, str]:
    """The account's subject mappings, as `{source: target}`."""
    mappings = account_claims["nats"].get("mappings") or {}
    return {source: targets[0]["subject"] for source, targets in mappings.items()}
