"""The dashboard's own NATS user: what the instructor side may ask of the bus, no more.

The dashboard runs with the stack's data directory, so it mints its credentials from
the keystore like the stack does for the server and the observer: a stack user
(`labkit_dashboard`, a reserved name no learner can take) that may ask every server
for `$SRV.STATS` and read the progress bucket, and receives answers only in its own
inbox. It can publish on no learner's subject; the wire tap uses the observer's
subscribe-only credentials instead.

A deployment (docker/) keeps the keystore's signing keys away from the hub: `deploy-config`
issues both users there and the hub gets only their creds files (`<home>/secrets/`),
which are then used as they are.
"""

from __future__ import annotations

from labkit.errors import LabkitError
from labkit.nsc.claims import Permissions
from labkit.nsc.wrapper import Nsc
from labkit.server.services import SRV_PREFIX
from labkit.settings import Settings
from labkit.subjects import inbox_prefix

DASHBOARD_USER = "labkit_dashboard"
# The JetStream KV bucket the application server fills with progress reports.
PROGRESS_BUCKET = "labkit_progress"


def dashboard_permissions(bucket: str = PROGRESS_BUCKET) -> Permissions:
    """Stats requests, read-only access to `bucket`, answers in the dashboard's inbox."""
    stream = f"KV_{bucket}"
    return Permissions(
        publish=(
            f"{SRV_PREFIX}.STATS",
            f"{SRV_PREFIX}.STATS.>",
            f"$JS.API.STREAM.INFO.{stream}",
            # An ordered consumer reads the latest value of every key (no writes).
            f"$JS.API.CONSUMER.CREATE.{stream}",
            f"$JS.API.CONSUMER.CREATE.{stream}.>",
            f"$JS.API.CONSUMER.DELETE.{stream}.>",
            f"$JS.API.CONSUMER.INFO.{stream}.>",
            f"$JS.FC.{stream}.>",
            f"$JS.API.DIRECT.GET.{stream}.>",
            f"$JS.API.STREAM.MSG.GET.{stream}",
        ),
        subscribe=(f"{inbox_prefix(DASHBOARD_USER)}.>",),
    )


class NoStack(LabkitError):
    """The data directory holds no stack the dashboard could watch."""


def _stack_keystore(settings: Settings) -> Nsc:
    nsc = Nsc.from_settings(settings)
    if not nsc.is_set_up:  # checked first: writing would make an empty store here
        raise NoStack(
            f"no stack in {settings.home} (no NSC keystore, no issued creds in "
            f"{settings.paths.secrets_dir}): start it with `python -m labkit up` and give "
            "the dashboard the same LABKIT_HOME (in docker/: run `python -m labkit deploy-config`)"
        )
    return nsc


def dashboard_creds(settings: Settings) -> str:
    """The dashboard's creds: a deployment's issued file, else (re-)issued in the keystore."""
    issued_file = settings.paths.dashboard_creds_file
    if issued_file.is_file():
        return issued_file.read_text(encoding="utf-8")
    issued = _stack_keystore(settings).issue_stack_user(DASHBOARD_USER, dashboard_permissions())
    return issued.creds


def observer_creds(settings: Settings) -> str:
    """The stack's subscribe-only observer (the wire tap): a deployment's issued file, else
    the keystore's (issued when NATS started)."""
    issued_file = settings.paths.observer_creds_file
    if issued_file.is_file():
        return issued_file.read_text(encoding="utf-8")
    return _stack_keystore(settings).observer_creds()
