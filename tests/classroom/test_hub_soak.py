"""A class arriving at once (`make soak`): learners logging in and starting their
servers at the same moment, each the hub's first sight of them (useradd, home, course
copy), all served, each as their own account with their own login."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from labkit.classroom.learner import read_learner_file
from labkit.classroom.learner_home import LearnerHome
from labkit.classroom.os_accounts import find_account
from tests.classroom.hub_fixtures import ClassroomHub, Learner, classroom_hub, server_pid

__all__ = ["classroom_hub"]  # fixture

LEARNERS_AT_ONCE = 6

pytestmark = pytest.mark.soak


def test_a_class_arriving_at_once_each_gets_their_own_server(
    classroom_hub: ClassroomHub,
) -> None:
    with ThreadPoolExecutor(LEARNERS_AT_ONCE) as pool:
        learners: list[Learner] = list(
            pool.map(lambda k: classroom_hub.learner(f"crowd{k}"), range(LEARNERS_AT_ONCE))
        )
    uids = set()
    user_ids = set()
    for learner in learners:
        account = find_account(learner.os_name)
        assert account is not None
        pid = server_pid(learner.os_name)
        with open(f"/proc/{pid}/status") as status:
            real_uid = next(line for line in status if line.startswith("Uid:")).split()[1]
        assert int(real_uid) == account.uid
        uids.add(account.uid)
        content = read_learner_file(LearnerHome(account.home).learner_file)
        assert content["email"] == learner.email
        user_ids.add(content["user_id"])
        assert sorted(LearnerHome(account.home).course.glob("*.ipynb"))
    assert len(uids) == len(user_ids) == LEARNERS_AT_ONCE
