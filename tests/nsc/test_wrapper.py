"""labkit.nsc.wrapper: operator, accounts, users, revocation, on a real on-disk store."""

from __future__ import annotations

import os
import stat
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from labkit.nsc import claims, jwt, keys
from labkit.nsc.claims import Permissions
from labkit.nsc.creds import parse_creds
from labkit.nsc.errors import Conflict, InvalidName, NotFound
from labkit.nsc.keys import KeyKind
from labkit.nsc.wrapper import SYSTEM_ACCOUNT, SYSTEM_USER, Nsc
from labkit.settings import SIX_MONTHS, NscSettings, Settings
from tests.permissions import user_publish_permissions


def _snapshot(root: Path) -> dict[str, tuple[bytes, int]]:
    """Every file under root with its content and mode."""
    if not root.exists():
        return {}
    return {
        str(p.relative_to(root)): (p.read_bytes(), stat.S_IMODE(p.stat().st_mode))
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


@pytest.fixture
def store_dir(tmp_path: Path) -> Path:
    return tmp_path / "nsc"


@pytest.fixture
def nsc(store_dir: Path) -> Nsc:
    instance = Nsc(store_dir)
    instance.setup()
    return instance


def _account_claims(nsc: Nsc, account: str = "labkit") -> jwt.Claims:
    return jwt.verify(nsc.read_account_jwt(account))


# setup


def test_setup_creates_operator_system_account_and_account(store_dir: Path) -> None:
    nsc = Nsc(store_dir)
    assert not nsc.is_set_up
    setup = nsc.setup()
    assert nsc.is_set_up
    assert setup.operator == "labkit"
    assert setup.account == "labkit"

    operator = jwt.verify(setup.operator_jwt)
    assert operator["name"] == "labkit"
    assert keys.kind_of(operator["sub"]) is KeyKind.OPERATOR
    assert operator["iss"] == operator["sub"]  # self-signed
    assert operator["nats"]["system_account"] == setup.system_account_key
    assert operator["nats"]["version"] == 2
    assert nsc.operator_name == "labkit"
    assert nsc.read_operator_jwt() == setup.operator_jwt

    system = jwt.verify(nsc.read_account_jwt(SYSTEM_ACCOUNT))
    assert system["sub"] == setup.system_account_key
    assert system["iss"] == operator["sub"]
    assert "mem_storage" not in system["nats"]["limits"]

    account = jwt.verify(setup.account_jwt)
    assert account["name"] == "labkit"
    assert account["sub"] == setup.account_key == nsc.account_key("labkit")
    assert keys.kind_of(setup.account_key) is KeyKind.ACCOUNT
    assert account["iss"] == operator["sub"]
    assert account["nats"]["limits"]["disk_storage"] == -1
    signing_keys = account["nats"]["signing_keys"]
    assert isinstance(signing_keys, list)
    assert len(signing_keys) == 1
    assert signing_keys[0] != setup.account_key
    assert keys.kind_of(signing_keys[0]) is KeyKind.ACCOUNT


def test_setup_stores_every_seed_privately(nsc: Nsc) -> None:
    setup = nsc.setup()
    seed_files = list((nsc.store.root / "keys").glob("*.nk"))
    # operator, SYS, sys user, account, account signing key
    assert len(seed_files) == 5
    for path in seed_files:
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
        assert keys.public_key(path.read_text().strip()) == path.stem
    assert nsc.store.seed(setup.account_key).startswith("SA")


def test_setup_is_idempotent(store_dir: Path) -> None:
    nsc = Nsc(store_dir)
    first = nsc.setup()
    before = _snapshot(store_dir)
    second = nsc.setup()
    assert second == first
    assert second.operator_jwt == first.operator_jwt
    assert second.account_jwt == first.account_jwt
    assert _snapshot(store_dir) == before
    # a fresh wrapper over the same store agrees
    assert Nsc(store_dir).setup() == first


def test_setup_with_named_operator_and_second_account(store_dir: Path) -> None:
    nsc = Nsc(store_dir)
    nsc.setup("teacher", "class-a")
    setup = nsc.setup("teacher", "class-b")
    assert setup.operator == "teacher"
    assert setup.account == "class-b"
    assert nsc.store.account_names() == ["SYS", "class-a", "class-b"]
    assert nsc.account_key("class-a") != nsc.account_key("class-b")


def test_setup_uses_settings_names(store_dir: Path) -> None:
    nsc = Nsc(store_dir, NscSettings(operator="op1", account="acc1"))
    setup = nsc.setup()
    assert (setup.operator, setup.account) == ("op1", "acc1")


def test_setup_with_another_operator_raises_conflict_and_writes_nothing(
    nsc: Nsc, store_dir: Path
) -> None:
    before = _snapshot(store_dir)
    with pytest.raises(Conflict, match="already holds operator 'labkit'"):
        nsc.setup("other")
    with pytest.raises(Conflict):
        nsc.setup("other", "new-account")
    assert _snapshot(store_dir) == before
    assert not nsc.store.account_path("new-account").exists()


@pytest.mark.parametrize(
    ("operator", "account"), [("bad.op", None), (None, "bad acc"), ("*", None), (None, ">")]
)
def test_setup_with_invalid_names_writes_nothing(
    store_dir: Path, operator: str | None, account: str | None
) -> None:
    with pytest.raises(InvalidName):
        Nsc(store_dir).setup(operator, account)
    assert not store_dir.exists()


def test_account_jwts_keyed_by_public_key(nsc: Nsc) -> None:
    setup = nsc.setup()
    tokens = nsc.account_jwts()
    assert set(tokens) == {setup.system_account_key, setup.account_key}
    assert tokens[setup.account_key] == setup.account_jwt
    assert jwt.verify(tokens[setup.system_account_key])["name"] == SYSTEM_ACCOUNT
    for key, token in tokens.items():
        assert jwt.verify(token)["sub"] == key


def test_missing_things_raise_not_found(store_dir: Path) -> None:
    nsc = Nsc(store_dir)
    with pytest.raises(NotFound, match="run setup"):
        nsc.read_operator_jwt()
    with pytest.raises(NotFound):
        nsc.account_key("labkit")
    nsc.setup()
    with pytest.raises(NotFound, match="account 'nope' does not exist"):
        nsc.create_user("alice", "nope")
    with pytest.raises(NotFound):
        nsc.read_user_jwt("ghost")
    with pytest.raises(NotFound):
        nsc.user_creds("ghost")
    with pytest.raises(NotFound):
        nsc.edit_user("ghost")
    with pytest.raises(NotFound):
        nsc.revoke_user("ghost")


# system user


def test_system_creds_parse_and_verify(nsc: Nsc) -> None:
    token, seed = parse_creds(nsc.system_creds())
    user = jwt.verify(token)
    assert user["name"] == SYSTEM_USER
    assert user["sub"] == keys.public_key(seed)
    assert keys.kind_of(user["sub"]) is KeyKind.USER
    assert user["iss"] == nsc.system_account_key  # signed by SYS itself
    assert "issuer_account" not in user["nats"]
    assert "exp" not in user  # the system user does not expire
    assert user["nats"]["version"] == 2
    assert nsc.users(SYSTEM_ACCOUNT) == [SYSTEM_USER]


# create_user


def test_create_user_defaults(nsc: Nsc) -> None:
    setup = nsc.setup()
    issued = nsc.create_user("alice")
    assert issued.name == "alice"
    assert issued.account == "labkit"
    assert keys.kind_of(issued.public_key) is KeyKind.USER

    user = jwt.verify(issued.jwt)
    assert user["name"] == "alice"
    assert user["sub"] == issued.public_key
    account = _account_claims(nsc)
    assert user["iss"] == account["nats"]["signing_keys"][0]
    assert user["iss"] != setup.account_key
    assert user["nats"]["issuer_account"] == setup.account_key
    assert user["nats"]["version"] == 2

    assert user["nats"]["pub"] == {"allow": user_publish_permissions("alice")}
    assert user["nats"]["sub"] == {"allow": ["alice.>", "_INBOX.alice.>"]}
    assert issued.permissions == Permissions(
        tuple(user_publish_permissions("alice")), ("alice.>", "_INBOX.alice.>")
    )
    everything = user["nats"]["pub"]["allow"] + user["nats"]["sub"]["allow"]
    assert "_INBOX.>" not in everything
    assert ">" not in everything
    assert "resp" not in user["nats"]


def test_create_user_writes_jwt_and_private_creds(nsc: Nsc) -> None:
    issued = nsc.create_user("alice")
    assert nsc.read_user_jwt("alice") == issued.jwt
    assert nsc.user_creds("alice").strip() == issued.creds.strip()
    assert issued.creds_path == nsc.store.creds_path("labkit", "alice")
    assert stat.S_IMODE(os.stat(issued.creds_path).st_mode) == 0o600
    token, seed = parse_creds(issued.creds_path.read_text())
    assert token == issued.jwt
    assert keys.public_key(seed) == issued.public_key
    assert nsc.users() == ["alice"]


def test_create_user_expiry_defaults_to_six_months(nsc: Nsc) -> None:
    assert NscSettings().credential_expiry == SIX_MONTHS == timedelta(days=183)
    before = datetime.now(UTC)
    issued = nsc.create_user("alice")
    exp = jwt.decode(issued.jwt)["exp"]
    assert isinstance(exp, int)
    expected = (before + timedelta(days=183)).timestamp()
    assert abs(exp - expected) <= 2
    assert issued.expires_at is not None
    assert exp == int(issued.expires_at.timestamp())
    assert not jwt.is_expired(jwt.decode(issued.jwt))


def test_create_user_expiry_follows_the_setting(store_dir: Path) -> None:
    nsc = Nsc(store_dir, NscSettings(credential_expiry=timedelta(days=30)))
    nsc.setup()
    exp = jwt.decode(nsc.create_user("alice").jwt)["exp"]
    assert abs(exp - (time.time() + 30 * 86400)) <= 2
    # a changed setting applies to the next issue
    nsc.settings = NscSettings(credential_expiry=timedelta(hours=1))
    exp = jwt.decode(nsc.create_user("bob").jwt)["exp"]
    assert abs(exp - (time.time() + 3600)) <= 2


def test_create_user_explicit_expiry(nsc: Nsc) -> None:
    exp = jwt.decode(nsc.create_user("alice", expires_in=timedelta(minutes=5)).jwt)["exp"]
    assert abs(exp - (time.time() + 300)) <= 2


def test_create_user_templates_come_from_settings(store_dir: Path) -> None:
    settings = NscSettings(
        user_publish=["{user}.out", "shared.{user}"],
        user_subscribe=["{user}.in"],
        user_response_max=1,
    )
    nsc = Nsc(store_dir, settings)
    nsc.setup()
    user = jwt.verify(nsc.create_user("bob").jwt)
    assert user["nats"]["pub"] == {"allow": ["bob.out", "shared.bob"]}
    assert user["nats"]["sub"] == {"allow": ["bob.in"]}
    assert user["nats"]["resp"] == {"max": 1, "ttl": 120 * 1_000_000_000}


def test_create_user_explicit_permissions(nsc: Nsc) -> None:
    perms = Permissions(("svc.echo",), ("svc.>",), 2, timedelta(seconds=10))
    issued = nsc.create_user("svc", permissions=perms)
    user = jwt.verify(issued.jwt)
    assert user["nats"]["pub"] == {"allow": ["svc.echo"]}
    assert user["nats"]["resp"] == {"max": 2, "ttl": 10_000_000_000}
    assert claims.user_permissions(user) == perms


def test_recreating_a_user_keeps_its_key(nsc: Nsc) -> None:
    first = nsc.create_user("alice")
    second = nsc.create_user("alice", expires_in=timedelta(days=1))
    assert second.public_key == first.public_key
    assert second.jwt != first.jwt
    assert nsc.read_user_jwt("alice") == second.jwt
    _, seed = parse_creds(second.creds)
    assert keys.public_key(seed) == first.public_key


def test_users_in_two_accounts_are_separate(nsc: Nsc) -> None:
    nsc.setup(account="other")
    a = nsc.create_user("alice")
    b = nsc.create_user("alice", "other")
    assert a.public_key != b.public_key
    assert jwt.verify(b.jwt)["nats"]["issuer_account"] == nsc.account_key("other")
    assert nsc.users("other") == ["alice"]


def test_issued_user_as_dict(nsc: Nsc) -> None:
    issued = nsc.create_user("alice")
    data = issued.as_dict()
    assert data["name"] == "alice"
    assert data["public_key"] == issued.public_key
    assert issued.expires_at is not None
    assert data["expires_at"] == issued.expires_at.isoformat()
    assert data["permissions"]["publish"] == user_publish_permissions("alice")


# edit_user


def test_edit_user_changes_permissions_and_keeps_the_key(nsc: Nsc) -> None:
    first = nsc.create_user("alice")
    perms = Permissions(("alice.x",), ("alice.y",), 1, timedelta(seconds=5))
    edited = nsc.edit_user("alice", permissions=perms)
    assert edited.public_key == first.public_key
    user = jwt.verify(edited.jwt)
    assert user["sub"] == first.public_key
    assert claims.user_permissions(user) == perms
    assert user["nats"]["issuer_account"] == nsc.account_key("labkit")
    assert nsc.read_user_jwt("alice") == edited.jwt


def test_edit_user_without_permissions_keeps_them(nsc: Nsc) -> None:
    perms = Permissions(("a.b",), ("a.c",), 3, timedelta(milliseconds=1001))
    nsc.create_user("alice", permissions=perms)
    edited = nsc.edit_user("alice", expires_in=timedelta(hours=2))
    assert edited.permissions == perms
    assert claims.user_permissions(jwt.verify(edited.jwt)) == perms
    assert abs(jwt.decode(edited.jwt)["exp"] - (time.time() + 7200)) <= 2


def test_observer_user_may_read_everything_and_publish_nothing(nsc: Nsc) -> None:
    issued = nsc.issue_observer_user()
    assert issued.name == "labkit_observer"
    assert nsc.observer_creds().strip() == issued.creds.strip()
    nats = jwt.verify(issued.jwt)["nats"]
    assert nats["sub"] == {"allow": [">"]}
    assert nats["pub"] == {"deny": [">"]}
    assert "resp" not in nats  # no response permission either: it cannot even reply


def test_observer_user_is_reissued_with_the_same_key(nsc: Nsc) -> None:
    first = nsc.issue_observer_user()
    assert nsc.issue_observer_user().public_key == first.public_key


# revoke_user


def test_revoke_user(nsc: Nsc) -> None:
    setup = nsc.setup()
    issued = nsc.create_user("alice")
    nsc.create_user("bob")
    before = int(time.time())
    token = nsc.revoke_user("alice")
    after = int(time.time())

    assert token == nsc.read_account_jwt()
    account = jwt.verify(token)
    assert account["sub"] == setup.account_key
    assert account["iss"] == jwt.decode(setup.operator_jwt)["sub"]
    revoked_at = account["nats"]["revocations"][issued.public_key]
    assert isinstance(revoked_at, int)
    assert before <= revoked_at <= after
    assert revoked_at >= jwt.decode(issued.jwt)["iat"]
    # the signing key and JetStream survive the re-sign
    assert account["nats"]["signing_keys"] == _account_claims(nsc)["nats"]["signing_keys"]
    assert account["nats"]["signing_keys"] == jwt.decode(setup.account_jwt)["nats"]["signing_keys"]
    assert account["nats"]["limits"]["streams"] == -1

    assert not nsc.store.user_path("labkit", "alice").exists()
    assert not nsc.store.creds_path("labkit", "alice").exists()
    with pytest.raises(NotFound):
        nsc.store.seed(issued.public_key)
    assert nsc.users() == ["bob"]
    assert nsc.account_jwts()[setup.account_key] == token


def test_create_after_revoke_gives_a_new_key(nsc: Nsc) -> None:
    old = nsc.create_user("alice")
    nsc.revoke_user("alice")
    new = nsc.create_user("alice")
    assert new.public_key != old.public_key
    revocations = _account_claims(nsc)["nats"]["revocations"]
    assert old.public_key in revocations
    assert new.public_key not in revocations
    assert jwt.verify(new.jwt)["sub"] == new.public_key


def test_revocations_accumulate(nsc: Nsc) -> None:
    alice = nsc.create_user("alice")
    bob = nsc.create_user("bob")
    nsc.revoke_user("alice")
    nsc.revoke_user("bob")
    assert set(_account_claims(nsc)["nats"]["revocations"]) == {alice.public_key, bob.public_key}
    # setup afterwards does not undo them
    nsc.setup()
    assert set(_account_claims(nsc)["nats"]["revocations"]) == {alice.public_key, bob.public_key}


# invalid names


@pytest.mark.parametrize("name", ["", "a.b", "*", ">", "a b", "a\tb", "_INBOX", "x" * 65, "a/b"])
def test_invalid_user_names_raise_and_change_nothing(nsc: Nsc, store_dir: Path, name: str) -> None:
    nsc.create_user("alice")
    before = _snapshot(store_dir)
    with pytest.raises(InvalidName):
        nsc.create_user(name)
    with pytest.raises(InvalidName):
        nsc.edit_user(name)
    with pytest.raises(InvalidName):
        nsc.revoke_user(name)
    with pytest.raises(InvalidName):
        nsc.create_user("bob", account=name)
    with pytest.raises(InvalidName):
        nsc.revoke_user("alice", account=name)
    assert _snapshot(store_dir) == before


def test_invalid_name_message_says_which_name(nsc: Nsc) -> None:
    with pytest.raises(InvalidName, match="^user name 'a.b' contains '.'"):
        nsc.create_user("a.b")
    with pytest.raises(InvalidName, match="^account name"):
        nsc.create_user("alice", account="a>b")


# construction from Settings


def test_from_settings_uses_the_store_under_home(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for var in [v for v in os.environ if v.startswith("LABKIT_")]:
        monkeypatch.delenv(var)
    monkeypatch.chdir(tmp_path)
    settings = Settings(home=tmp_path / "home")
    nsc = Nsc.from_settings(settings)
    assert nsc.store.root == (tmp_path / "home" / "nsc").resolve()
    assert nsc.settings is settings.nsc
