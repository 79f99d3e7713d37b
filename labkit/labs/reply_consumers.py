"""Each learner's reply consumer: made by the server, with one fixed configuration.

A learner reads stream echo replies through a durable pull consumer, `reply-<user>`,
filtered to its own replies. Learners may not create or change JetStream consumers:
the CREATE subject constrains a consumer's filter, never its configuration, so a
learner allowed to create would be free to make it a push consumer delivering to
`bob.inbox`. The server makes it instead, when the client first asks on
`<user>.echo.stream.open` (a core request, answered in the user's inbox); the learner
keeps only CONSUMER.INFO, CONSUMER.MSG.NEXT and ACK on that one consumer.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from nats.js.client import JetStreamContext
from nats.js.errors import NotFoundError

from labkit.server.injection import register_dependency
from labkit.server.jetstream import when_available
from labkit.subjects import ECHO_STREAM, ECHO_STREAM_NAME, REPLY_SUFFIX, stored, user_subject

log = logging.getLogger("labkit.server")

# Unacknowledged replies a learner may hold at once before the consumer waits.
MAX_ACK_PENDING = 1000
# How long a learner's client may hold a reply before it is handed out again.
REPLY_ACK_WAIT = timedelta(seconds=30)


def reply_consumer(user: str) -> str:
    """The one consumer a user's credentials may read: `reply-<user>`."""
    return f"reply-{user}"


def reply_filter(user: str) -> str:
    """What a user's reply consumer hands out: its own stored replies (one subject each)."""
    return stored(user_subject(user, f"{ECHO_STREAM}.{REPLY_SUFFIX}.>"))


def reply_consumer_config(user: str, ack_wait: timedelta) -> ConsumerConfig:
    """The fixed configuration: durable, pull, explicit acks, the user's replies only."""
    name = reply_consumer(user)
    return ConsumerConfig(
        name=name,
        durable_name=name,
        filter_subject=reply_filter(user),
        ack_policy=AckPolicy.EXPLICIT,
        deliver_policy=DeliverPolicy.ALL,
        ack_wait=ack_wait.total_seconds(),
        max_ack_pending=MAX_ACK_PENDING,
    )


def is_fixed_configuration(config: ConsumerConfig, user: str) -> bool:
    """True when `config` is a pull consumer on exactly `user`'s replies (nothing pushed)."""
    return (
        config.deliver_subject is None
        and config.deliver_group is None
        and config.filter_subject == reply_filter(user)
        and not config.filter_subjects
        and config.ack_policy == AckPolicy.EXPLICIT
        and not config.headers_only
    )


class ReplyConsumers:
    """The server's side: make sure a user's reply consumer exists, as configured here."""

    def __init__(self, js: JetStreamContext, ack_wait: timedelta) -> None:
        self._js = js
        self._ack_wait = ack_wait

    async def ensure(self, user: str) -> str:
        """Create `reply-<user>` if missing; replace one configured otherwise. Its name."""
        name = reply_consumer(user)
        try:
            info = await when_available(
                lambda: self._js.consumer_info(ECHO_STREAM_NAME, name), f"reading {name}"
            )
        except NotFoundError:
            info = None
        if info is not None and is_fixed_configuration(info.config, user):
            return name
        if info is not None:
            # Made before users lost the right to create consumers, or by hand: its
            # configuration is not ours to trust (a push consumer delivering elsewhere).
            log.warning("replacing consumer %s: its configuration is not the fixed one", name)
            await when_available(
                lambda: self._js.delete_consumer(ECHO_STREAM_NAME, name), f"deleting {name}"
            )
        config = reply_consumer_config(user, self._ack_wait)
        await when_available(
            lambda: self._js.add_consumer(ECHO_STREAM_NAME, config), f"creating consumer {name}"
        )
        log.info("created the reply consumer %s", name)
        return name


register_dependency(ReplyConsumers)
