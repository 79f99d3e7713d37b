"""The classroom hub, for real: `classroom up`, the login form, spawned servers as
learners' own OS accounts, what they hold and what they cannot read, logout.

One hub for the module (`classroom_hub`); each test adds learners of its own.
"""

from __future__ import annotations

import asyncio
import base64
import json
import secrets
import sqlite3
import stat
import subprocess
from pathlib import Path

import requests
from cryptography.fernet import Fernet

from labkit.classroom.learner import login_from_answer, read_learner_file
from labkit.classroom.learner_home import LearnerHome
from labkit.classroom.os_accounts import LearnerAccount, find_account, processes_of
from tests.classroom.hub_fixtures import (
    ClassroomHub,
    HubSession,
    Learner,
    alice,
    bob,
    classroom_hub,
    server_pid,
    stack_secrets,
)

__all__ = ["alice", "bob", "classroom_hub"]  # fixtures


def _environ(pid: int) -> dict[str, str]:
    raw = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    pairs = (entry.decode().split("=", 1) for entry in raw if b"=" in entry)
    return {key: value for key, value in pairs}


def _user_public_key(creds: str) -> str:
    """The public key (the JWT's subject) of the user whose creds these are."""
    token = creds.split("-----BEGIN NATS USER JWT-----")[1].split("------END")[0].strip()
    payload = token.split(".")[1]
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    return str(claims["sub"])


def _learner_file(learner: Learner) -> Path:
    account = find_account(learner.os_name)
    assert account is not None
    return LearnerHome(account.home).learner_file


def test_up_prints_the_hub_and_status_shows_who_is_online(
    classroom_hub: ClassroomHub, alice: Learner
) -> None:
    assert classroom_hub.up_answer["hub"]["url"].startswith("http://127.0.0.1:")
    again = classroom_hub.cli("up", "--json")
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["hub"] == classroom_hub.up_answer["hub"]  # the same hub
    status = classroom_hub.cli("status", "--json")
    assert status.returncode == 0, status.stderr
    body = json.loads(status.stdout)
    assert body["hub"]["running"] is True
    assert {"nats", "nsc", "auth", "server"} <= set(body["components"])
    assert alice.email in [learner["name"] for learner in body["learners_online"]]
    # The status token reads who is online, and nothing it does not need.
    token = classroom_hub.paths.status_token_file.read_text().strip()
    name = alice.email
    forbidden = requests.get(
        f"{classroom_hub.url}/hub/api/users/{name}",
        params={"include_stopped_servers": "1"},
        headers={"Authorization": f"token {token}"},
    )
    assert "auth_state" not in forbidden.json()
    refused = requests.post(
        f"{classroom_hub.url}/hub/api/users/{name}/tokens",
        headers={"Authorization": f"token {token}"},
    )
    assert refused.status_code in (403, 404), refused.text


def test_the_right_password_logs_in_and_a_wrong_one_is_refused(
    classroom_hub: ClassroomHub,
) -> None:
    email, password = classroom_hub.register("form")
    session = HubSession(classroom_hub.url)
    wrong = session.login(email, password + "x")
    assert wrong.status_code == 403
    assert "Invalid username or password" in wrong.text
    assert session.api("GET", "/user").status_code == 403  # not logged in
    right = session.login(email.upper(), password)
    assert right.status_code == 302
    me = session.me()
    assert me["name"] == email  # emails are user names, lower-cased
    assert me["admin"] is False


def _make_instructor(classroom_hub: ClassroomHub, email: str) -> None:
    with sqlite3.connect(classroom_hub.home / "auth.db") as connection:
        connection.execute("UPDATE users SET role = 'instructor' WHERE email = ?", (email,))


def test_an_instructor_is_a_hub_admin(classroom_hub: ClassroomHub) -> None:
    email, password = classroom_hub.register("teacher")
    _make_instructor(classroom_hub, email)
    teacher = HubSession(classroom_hub.url)
    assert teacher.login(email, password).status_code == 302
    assert teacher.me()["admin"] is True


def test_the_server_holds_the_learners_own_credentials_and_no_stack_secret(
    classroom_hub: ClassroomHub, alice: Learner, bob: Learner
) -> None:
    account = find_account(alice.os_name)
    assert account is not None
    pid = server_pid(alice.os_name)
    assert Path(f"/proc/{pid}").stat().st_uid == account.uid
    env = _environ(pid)
    home = LearnerHome(account.home)
    plan = classroom_hub.plan
    assert env["LABKIT_CLASSROOM"] == "1"
    assert env["LABKIT_LEARNER_FILE"] == str(home.learner_file)
    assert env["LABKIT_HOME"] == str(home.labkit_home)
    for variable in (
        "LABKIT_NATS_URL",
        "LABKIT_NATS_WS_URL",
        "LABKIT_AUTH_URL",
        "LABKIT_S3_ENDPOINT",
    ):
        assert env[variable] == plan.learner_environment[variable]
    assert env["HOME"] == str(account.home) and env["USER"] == alice.os_name

    # The learner file: 0600, alice's, her own login.
    info = home.learner_file.stat()
    assert stat.S_IMODE(info.st_mode) == 0o600 and info.st_uid == account.uid
    assert stat.S_IMODE(account.home.stat().st_mode) == 0o700
    content = read_learner_file(home.learner_file)
    login = login_from_answer(content)
    assert login.email == alice.email and content["auth_url"] == plan.auth_url
    assert f"{login.user_id}.>" in login.nats.publish
    assert "BEGIN NATS USER JWT" in login.nats.creds
    # The course is there, hers.
    notebooks = sorted(home.course.glob("*.ipynb"))
    assert notebooks and all(path.stat().st_uid == account.uid for path in notebooks)

    # Nothing of the stack's secrets, nor of bob's, in her environment or her files.
    bobs = read_learner_file(_learner_file(bob))
    own_seed = f"seed {_user_public_key(login.nats.creds)}.nk"
    forbidden = {
        **{
            name: value
            for name, value in stack_secrets(classroom_hub.home).items()
            if name != own_seed
        },
        "bob's access token": bobs["access_token"],
        "bob's refresh token": bobs["refresh_token"],
        "bob's creds": bobs["nats"]["creds"].split("------END")[0].splitlines()[-1],
    }
    environ_text = "\n".join(f"{key}={value}" for key, value in env.items())
    given = [home.learner_file, *sorted(home.labkit_home.rglob("*"))]
    for name, secret in forbidden.items():
        assert secret not in environ_text, f"{name} is in alice's server's environment"
        for path in given:
            if path.is_file():
                assert secret not in path.read_text(errors="replace"), f"{name} is in {path}"


def test_alice_reaches_the_shared_stack_as_herself_from_her_account(
    classroom_hub: ClassroomHub, alice: Learner
) -> None:
    """What her kernel does: her Python, her environment, her login, the shared server."""
    account = find_account(alice.os_name)
    assert account is not None
    env = _environ(server_pid(alice.os_name))
    code = """
import asyncio
from labkit.classroom.learner import current_login
from labkit.labs.echo import send_identified_echo

async def main():
    login = current_login()
    nc = await login.connect()
    print(await send_identified_echo(nc, login.user_id, "hello from my kernel", timeout=30))
    await nc.close()

asyncio.run(main())
"""
    done = subprocess.run(
        [classroom_hub.plan.learner_python, "-c", code],
        user=account.uid,
        group=account.gid,
        extra_groups=[],
        cwd=account.home,
        env={key: value for key, value in env.items() if not key.startswith("JPY")},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    login = login_from_answer(read_learner_file(_learner_file(alice)))
    assert "hello from my kernel" in done.stdout and login.user_id in done.stdout


def test_the_hub_keeps_the_login_encrypted(classroom_hub: ClassroomHub, alice: Learner) -> None:
    with sqlite3.connect(classroom_hub.paths.database) as connection:
        (stored,) = connection.execute(
            "SELECT encrypted_auth_state FROM users WHERE name = ?", (alice.email,)
        ).fetchone()
    answer = read_learner_file(_learner_file(alice))
    assert stored and answer["refresh_token"].encode() not in stored
    key = bytes.fromhex(classroom_hub.paths.crypt_key_file.read_text().strip())
    session = json.loads(Fernet(base64.urlsafe_b64encode(key)).decrypt(stored))
    assert session["email"] == alice.email
    assert session["answer"]["user_id"] == answer["user_id"]


def test_the_proxy_and_hub_environments_hold_no_auth_state_key(
    classroom_hub: ClassroomHub,
) -> None:
    hub_pid = classroom_hub.up_answer["hub"]["pid"]
    key = classroom_hub.paths.crypt_key_file.read_text().strip()
    children = subprocess.run(
        ["ps", "-ww", "-o", "pid=,args=", "--ppid", str(hub_pid)], capture_output=True, text=True
    ).stdout
    proxies = [
        int(line.split()[0]) for line in children.splitlines() if "configurable-http-proxy" in line
    ]
    assert len(proxies) == 1, children
    for pid in (hub_pid, proxies[0]):
        env = _environ(pid)
        assert "JUPYTERHUB_CRYPT_KEY" not in env
        assert all(key not in value for value in env.values())
        for secret in stack_secrets(classroom_hub.home).values():
            assert all(secret not in value for value in env.values())


# Reads each path it is given (a folder: lists it) and says "read" or "refused".
_READ_PROBE = """
import json, os, sys
outcome = {}
for what, path in json.loads(sys.argv[1]).items():
    try:
        if os.path.isdir(path):
            os.listdir(path)
        else:
            open(path, "rb").read()
        outcome[what] = "read"
    except PermissionError:
        outcome[what] = "refused"
print(json.dumps(outcome))
"""


def test_alice_cannot_read_bobs_file_environment_or_home(
    classroom_hub: ClassroomHub, alice: Learner, bob: Learner
) -> None:
    alice_account = find_account(alice.os_name)
    bob_account = find_account(bob.os_name)
    assert alice_account is not None and bob_account is not None
    targets = {
        "learner file": str(_learner_file(bob)),
        "environ": f"/proc/{server_pid(bob.os_name)}/environ",
        "home": str(bob_account.home),
    }
    python = classroom_hub.plan.learner_python
    assert _probe_as(alice_account, python, targets) == dict.fromkeys(targets, "refused")
    # The same probe as bob reads his own: the refusal is about who asks.
    assert _probe_as(bob_account, python, targets) == dict.fromkeys(targets, "read")


def _probe_as(account: LearnerAccount, python: str, targets: dict[str, str]) -> dict[str, str]:
    """Run _READ_PROBE as `account` (its uid, gid and home only): "read" or "refused" each."""
    done = subprocess.run(
        [python, "-c", _READ_PROBE, json.dumps(targets)],
        user=account.uid,
        group=account.gid,
        extra_groups=[],
        cwd=account.home,
        env={"HOME": str(account.home), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    outcome: dict[str, str] = json.loads(done.stdout)
    return outcome


def test_a_logged_out_learner_cannot_start_a_server(classroom_hub: ClassroomHub) -> None:
    carol = classroom_hub.learner("carol", spawn=False)
    # Logged out elsewhere (another device): every token carol had is dead, the hub's too.
    auth = classroom_hub.plan.auth_url
    elsewhere = requests.post(
        auth + "/login", json={"email": carol.email, "password": carol.password}
    ).json()
    ended = requests.post(
        auth + "/logout", headers={"Authorization": f"Bearer {elsewhere['access_token']}"}
    )
    assert ended.status_code == 200
    refused = carol.session.start_server()
    assert refused.status_code == 403, refused.text
    assert carol.session.me()["servers"] == {}
    assert "login again" in refused.json()["message"]
    # The way back the refusal points to: log out of the hub and in again.
    assert carol.session.logout().status_code == 302
    assert carol.session.login(carol.email, carol.password).status_code == 302


def test_a_revoked_learner_cannot_start_a_server(classroom_hub: ClassroomHub) -> None:
    erin = classroom_hub.learner("erin", spawn=False)
    teacher_email, password = classroom_hub.register("revoker")
    _make_instructor(classroom_hub, teacher_email)
    auth = classroom_hub.plan.auth_url
    teacher = requests.post(auth + "/login", json={"email": teacher_email, "password": password})
    token = {"Authorization": f"Bearer {teacher.json()['access_token']}"}
    users = requests.get(auth + "/users", headers=token).json()["users"]
    (erin_id,) = [user["id"] for user in users if user["email"] == erin.email]
    revoked = requests.post(f"{auth}/users/{erin_id}/revoke", headers=token)
    assert revoked.status_code == 200, revoked.text
    refused = erin.session.start_server()
    assert refused.status_code == 403, refused.text
    assert erin.session.me()["servers"] == {}
    # Nor can an instructor start it for her: the hub checks her session, not theirs.
    admin = HubSession(classroom_hub.url)
    assert admin.login(teacher_email, password).status_code == 302
    on_her_behalf = admin.api("POST", f"/users/{erin.email}/server")
    assert on_her_behalf.status_code == 403, on_her_behalf.text
    assert "session has ended" in on_her_behalf.json()["message"]
    assert erin.session.me()["servers"] == {}


def test_hub_logout_cuts_the_learners_nats_connection(classroom_hub: ClassroomHub) -> None:
    dave = classroom_hub.learner("dave")
    login = login_from_answer(read_learner_file(_learner_file(dave)))

    async def scenario() -> str:
        closed = asyncio.Event()

        async def on_closed() -> None:
            closed.set()

        nc = await login.connect(closed_cb=on_closed, allow_reconnect=False)
        assert nc.is_connected
        answer = await asyncio.to_thread(dave.session.logout)
        assert answer.status_code == 302
        await asyncio.wait_for(closed.wait(), timeout=30)
        return str(nc.last_error)

    assert "revoked" in asyncio.run(scenario()).lower()
    # The hub stopped dave's server too (shutdown_on_logout), and holds no login of his.
    assert find_account(dave.os_name) is not None and processes_of(dave.os_name) == []
    assert dave.session.api("GET", "/user").status_code == 403  # the hub's cookie is gone


def test_a_non_root_hub_is_refused_before_anything_starts(classroom_hub: ClassroomHub) -> None:
    home = Path(f"/tmp/labkit-not-root-{secrets.token_hex(4)}")
    nobody = find_account("nobody")
    assert nobody is not None
    done = subprocess.run(
        [classroom_hub.plan.learner_python, "-m", "labkit", "classroom", "up"],
        user=nobody.uid,
        group=nobody.gid,
        extra_groups=[],
        cwd="/",
        env={**classroom_hub.env, "LABKIT_HOME": str(home), "HOME": "/nonexistent"},
        capture_output=True,
        text=True,
    )
    assert done.returncode == 1
    assert "needs root" in done.stderr and "LABKIT_CLASSROOM_SPAWNER" in done.stderr
    assert not home.exists()  # nothing was started
