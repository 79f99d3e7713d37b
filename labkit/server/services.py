"""The NATS services API: `$SRV.PING`, `$SRV.INFO`, `$SRV.STATS` answers and endpoint stats.

Standard NATS tooling (`nats micro ls`, `nats micro stats`) and notebooks can see
a labkit server and its per-endpoint request count, error count and time.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from labkit.server.fair import FairScheduler

SRV_PREFIX = "$SRV"
VERBS = ("PING", "INFO", "STATS")


@dataclass
class EndpointStats:
    name: str
    subject: str
    queue_group: str
    num_requests: int = 0
    num_errors: int = 0
    last_error: str = ""
    processing_time_ns: int = 0
    # Requests refused because their reply subject was not the sender's own inbox.
    num_refused: int = 0
    # Requests turned away unserved (`busy`): their sender's queue was full.
    num_busy: int = 0
    busy_by_user: dict[str, int] = field(default_factory=dict)
    # Per user (the subject's first token, which NATS vouches for): the instructor's
    # dashboard shows who sends how much and who gets errors. Bounded by the accounts.
    requests_by_user: dict[str, int] = field(default_factory=dict)
    errors_by_user: dict[str, int] = field(default_factory=dict)

    def record(
        self, seconds: float, error: str | None, refused: bool = False, user: str = ""
    ) -> None:
        self.num_requests += 1
        self.processing_time_ns += int(seconds * 1_000_000_000)
        if user:
            self.requests_by_user[user] = self.requests_by_user.get(user, 0) + 1
        if error is not None:
            self.num_errors += 1
            self.last_error = error
            if user:
                self.errors_by_user[user] = self.errors_by_user.get(user, 0) + 1
        if refused:
            self.num_refused += 1

    def record_busy(self, user: str, seconds: float, refused: bool = False) -> None:
        """A request answered `busy` (or, with a foreign reply subject, refused)."""
        self.num_busy += 1
        self.busy_by_user[user] = self.busy_by_user.get(user, 0) + 1
        self.record(seconds, f"busy: {user}'s queue was full", refused, user)

    def as_dict(self) -> dict[str, Any]:
        average = self.processing_time_ns // self.num_requests if self.num_requests else 0
        return {
            "name": self.name,
            "subject": self.subject,
            "queue_group": self.queue_group,
            "num_requests": self.num_requests,
            "num_errors": self.num_errors,
            "last_error": self.last_error,
            "processing_time": self.processing_time_ns,
            "average_processing_time": average,
            # The micro schema's place for an endpoint's own figures.
            "data": {
                "refused_replies": self.num_refused,
                "busy": self.num_busy,
                "busy_by_user": dict(self.busy_by_user),
                "requests_by_user": dict(self.requests_by_user),
                "errors_by_user": dict(self.errors_by_user),
            },
        }


@dataclass
class ServiceIdentity:
    """Who answers: the service name, this instance's id, version and description."""

    name: str
    version: str
    description: str = ""
    id: str = field(default_factory=lambda: secrets.token_hex(11).upper())
    started: datetime = field(default_factory=lambda: datetime.now(UTC))


def discovery_subjects(identity: ServiceIdentity) -> list[str]:
    """Every subject this instance answers: `$SRV.PING`, `$SRV.PING.<name>`, `...<id>`."""
    subjects = []
    for verb in VERBS:
        subjects += [
            f"{SRV_PREFIX}.{verb}",
            f"{SRV_PREFIX}.{verb}.{identity.name}",
            f"{SRV_PREFIX}.{verb}.{identity.name}.{identity.id}",
        ]
    return subjects


def fair_share_stats(scheduler: FairScheduler) -> dict[str, Any]:
    """The fair scheduler's state: its bounds, what is running and waiting, per user."""
    return {
        "max_in_flight": scheduler.workers,
        "user_max_in_flight": scheduler.user_max_in_flight,
        "user_max_queued": scheduler.user_max_queued,
        "in_hand": scheduler.busy,
        "queued_by_user": scheduler.depths(),
        "busy_by_user": dict(scheduler.rejected),
    }


def answer(
    verb: str,
    identity: ServiceIdentity,
    endpoints: list[EndpointStats],
    fair_share: dict[str, Any] | None = None,
) -> bytes:
    """The JSON answer to a discovery request, in the micro v1 schema.

    STATS also carries `fair_share` (labkit's own section): current queue depths and
    `busy` answers per user.
    """
    body: dict[str, Any] = {
        "type": f"io.nats.micro.v1.{verb.lower()}_response",
        "name": identity.name,
        "id": identity.id,
        "version": identity.version,
        "metadata": {},
    }
    if verb == "INFO":
        body["description"] = identity.description
        body["endpoints"] = [
            {"name": e.name, "subject": e.subject, "queue_group": e.queue_group, "metadata": {}}
            for e in endpoints
        ]
    elif verb == "STATS":
        body["started"] = identity.started.isoformat().replace("+00:00", "Z")
        body["endpoints"] = [e.as_dict() for e in endpoints]
        if fair_share is not None:
            body["fair_share"] = fair_share
    return json.dumps(body).encode()


def verb_of(subject: str) -> str:
    """`$SRV.STATS.labkit` -> `STATS`."""
    return subject.split(".")[1]
