"""Roles of an account: every account is a learner unless made an instructor. No IO."""

from __future__ import annotations

LEARNER = "learner"
INSTRUCTOR = "instructor"
ROLES = (LEARNER, INSTRUCTOR)


def is_instructor(role: str) -> bool:
    return role == INSTRUCTOR
