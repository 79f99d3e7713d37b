"""Typed settings for every labkit component, read from the environment and `.env`.

Variables use the `LABKIT_` prefix and one underscore between a group and its
field: `LABKIT_HOME`, `LABKIT_NATS_PORT`, `LABKIT_NSC_CREDENTIAL_EXPIRY`
(seconds or an ISO 8601 duration such as `P30D`). Lists are JSON:
`LABKIT_NSC_USER_SUBSCRIBE='["{user}.>"]'`.
"""

from __future__ import annotations

from datetime import timedelta
from functools import cached_property
from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, BeforeValidator, Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from labkit.subjects import USER_NEW

# Six months, the seed system's default lifetime for user credentials.
SIX_MONTHS = timedelta(days=183)


def _seconds_or_iso(value: object) -> object:
    # Environment values are strings: read "90" or "1.5" as seconds, the rest as ISO 8601.
    if isinstance(value, str):
        try:
            return float(value.strip())
        except ValueError:
            return value
    return value


# A duration given as seconds (number or string) or ISO 8601 ("P30D", "PT5M").
Duration = Annotated[timedelta, BeforeValidator(_seconds_or_iso)]


class NatsSettings(BaseModel):
    """The nats-server the stack runs (ports are preferences: a taken one is replaced)."""

    host: str = "127.0.0.1"
    port: int = Field(4222, ge=0, le=65535, description="client port; 0 picks a free one")
    monitor_port: int = Field(8222, ge=0, le=65535, description="HTTP monitoring port")
    max_memory_store: int = Field(256 * 1024**2, gt=0, description="JetStream memory, bytes")
    max_file_store: int = Field(2 * 1024**3, gt=0, description="JetStream disk, bytes")
    url: str | None = Field(
        None, description="use this NATS server (or comma-separated servers) instead of the stack's"
    )
    cluster_size: int | None = Field(
        None,
        ge=1,
        le=5,
        description="nats-server nodes joined by routes; default: the data dir's last, else 1",
    )
    cluster_port: int = Field(
        6222, ge=0, le=65535, description="route port of node 1 (node k: +k-1)"
    )
    ws_port: int = Field(
        4280,
        ge=0,
        le=65535,
        description="WebSocket port for browser clients, on loopback (node k: +k-1)",
    )
    ws_url: str | None = Field(
        None,
        description="the WebSocket URL(s) browsers use instead of the stack's (wss://...)",
    )
    monitor_url: str | None = Field(
        None,
        description="the monitoring URL(s) of every node instead of the stack's "
        "(http://...:8222, comma-separated): the instructor dashboard's /connz",
    )


class NscSettings(BaseModel):
    """Keys, JWTs and credentials: where they live, how long they last, what they allow."""

    credential_expiry: Duration = Field(SIX_MONTHS, description="lifetime of user credentials")
    store_dir: Path | None = Field(None, description="keystore; default <home>/nsc")
    operator: str = "labkit"
    account: str = "labkit"
    # Templates for a user's permissions: "{user}" becomes the user's name. Besides its
    # own subjects, a user may read and ack exactly one JetStream consumer: its stream
    # echo replies (persistence lab), which the server creates with a fixed configuration
    # (users never create or change consumers: a CREATE right constrains the filter, not
    # the configuration); never the stream itself or others' consumers.
    user_publish: list[str] = [
        "{user}.>",
        # The server checks permissions after the account's subject mapping (below).
        "persist.{user}.echo.stream",
        "$JS.API.CONSUMER.INFO.ECHO_STREAM.reply-{user}",
        "$JS.API.CONSUMER.MSG.NEXT.ECHO_STREAM.reply-{user}",
        "$JS.ACK.ECHO_STREAM.reply-{user}.>",
    ]
    user_subscribe: list[str] = ["{user}.>", "_INBOX.{user}.>"]
    # How many replies a user may send to a request it received (response permission).
    user_response_max: int = Field(0, ge=0)
    # Subject mappings of the account. JetStream cannot capture subjects that start with
    # a wildcard (they overlap its API), so persisted subjects get a literal first token.
    account_mappings: dict[str, str] = {
        "*.echo.stream": "persist.{{wildcard(1)}}.echo.stream",
        "*.echo.stream.reply": "persist.{{wildcard(1)}}.echo.stream.reply",
    }
    # The application server's own user: it reads every user's lab subjects and answers
    # through the response permission, never through a publish right on _INBOX.>.
    server_user: str = "labkit_server"
    server_subscribe: list[str] = [
        "_INBOX.{user}.>",
        "$SRV.>",
        "*.echo",
        "*.echo.>",
        "*.ping",
        "*.send_file",
        "*.transform_file",
        # Exercise progress reports and a learner's own records (labkit.classroom).
        "*.progress",
        "*.progress.mine",
        # Who is in the class now (labkit.labs.roster).
        "*.roster",
        # A learner just created: subscribe them on a reader now (labkit.server.announcements).
        USER_NEW,
    ]
    # What the server publishes, and nothing more: relayed ping lines, persisted replies,
    # and the JetStream API calls on what it owns (the labs' stream, its own consumer,
    # users' reply consumers, the cache KV bucket; names as in
    # StreamSettings and ServerSettings: change both together). It answers requests
    # through its response permission, and only inside the requester's own inbox.
    server_publish: list[str] = [
        "*.inbox",
        # The stack announces a learner it created with these creds (labkit.nsc.announce).
        USER_NEW,
        "persist.*.echo.stream.reply.>",
        "$JS.API.STREAM.CREATE.ECHO_STREAM",
        "$JS.API.STREAM.UPDATE.ECHO_STREAM",
        "$JS.API.STREAM.INFO.ECHO_STREAM",
        # Its own durable consumer and each user's reply consumer (fixed configuration).
        "$JS.API.CONSUMER.CREATE.ECHO_STREAM.>",
        "$JS.API.CONSUMER.DURABLE.CREATE.ECHO_STREAM.*",
        "$JS.API.CONSUMER.INFO.ECHO_STREAM.*",
        # Replaces a reply consumer configured otherwise (made before users lost the right).
        "$JS.API.CONSUMER.DELETE.ECHO_STREAM.*",
        "$JS.API.CONSUMER.MSG.NEXT.ECHO_STREAM.echo-stream-server",
        "$JS.ACK.ECHO_STREAM.echo-stream-server.>",
        "$JS.API.STREAM.CREATE.KV_labkit-cache",
        "$JS.API.STREAM.UPDATE.KV_labkit-cache",
        "$JS.API.STREAM.INFO.KV_labkit-cache",
        "$JS.API.DIRECT.GET.KV_labkit-cache.>",
        "$JS.API.STREAM.MSG.GET.KV_labkit-cache",
        "$KV.labkit-cache.>",
        # The progress bucket (ProgressSettings.bucket): the server writes it, the
        # instructor's side reads it with these creds; PURGE takes back a record past
        # a learner's bound. Learners have no right on it at all.
        "$JS.API.STREAM.CREATE.KV_labkit_progress",
        "$JS.API.STREAM.UPDATE.KV_labkit_progress",
        "$JS.API.STREAM.INFO.KV_labkit_progress",
        "$JS.API.STREAM.PURGE.KV_labkit_progress",
        "$JS.API.DIRECT.GET.KV_labkit_progress.>",
        "$JS.API.STREAM.MSG.GET.KV_labkit_progress",
        "$KV.labkit_progress.>",
    ]
    server_response_max: int = Field(1, ge=1)
    server_response_ttl: Duration = Field(timedelta(minutes=1), gt=timedelta(0))
    # The instructor's wire tap: it reads every subject of the account (the labs' and
    # every reply on _INBOX.>, which it never asked for). It may publish nothing, whatever
    # the settings say (Nsc.issue_observer_user denies every subject).
    observer_user: str = "labkit_observer"
    observer_subscribe: list[str] = [">"]
    service_host: str = "127.0.0.1"
    service_port: int = Field(4000, ge=0, le=65535)
    service_url: str | None = Field(None, description="use this NSC service instead")
    # -- identity hardening (sec-identity): pushes, request bodies, user limits --
    push_retry_interval: Duration = Field(
        timedelta(seconds=2),
        gt=timedelta(0),
        description="how often the NSC service retries an account push the server missed",
    )
    max_body_bytes: int = Field(
        64 * 1024, ge=1024, description="largest request body the NSC service reads (413 above)"
    )
    # Limits in every learner's JWT (per connection), far above what a lab needs.
    user_max_subscriptions: int = Field(1000, ge=1, description="subscriptions per connection")
    user_max_payload: int = Field(
        512 * 1024, ge=1024, description="largest message a learner may publish, bytes"
    )

    @field_validator("credential_expiry")
    @classmethod
    def _positive(cls, value: timedelta) -> timedelta:
        if value <= timedelta(0):
            raise ValueError("credential_expiry must be positive, e.g. P30D or 2592000")
        return value


class DatabaseSettings(BaseModel):
    """The auth service's database: an SQLite file in the data dir unless a URL is given."""

    url: str | None = Field(
        None, description="SQLAlchemy URL, e.g. postgresql+psycopg://user:pw@host/db"
    )


class AuthSettings(BaseModel):
    """The authentication service: tokens, passwords, login rate limits."""

    host: str = "127.0.0.1"
    port: int = Field(5000, ge=0, le=65535)
    url: str | None = Field(None, description="use this auth service instead of the stack's")
    access_token_expiry: Duration = Field(timedelta(minutes=15), gt=timedelta(0))
    refresh_token_expiry: Duration = Field(timedelta(days=30), gt=timedelta(0))
    min_password_length: int = Field(8, ge=1)
    login_window: Duration = Field(timedelta(minutes=1), gt=timedelta(0))
    # -- identity hardening (sec-identity): login limits, request bodies, registrations --
    # Failed logins allowed in one login_window: per email from one client address, per
    # address (any email), and per email from every address together; the last refuses
    # only addresses that failed for that email (see labkit.auth.rate_limit).
    login_attempts_per_email: int = Field(5, ge=1)
    login_attempts_per_address: int = Field(30, ge=1)
    login_attempts_per_email_everywhere: int = Field(20, ge=1)
    registrations_per_address: int = Field(30, ge=1)
    registration_window: Duration = Field(timedelta(minutes=10), gt=timedelta(0))
    max_body_bytes: int = Field(
        16 * 1024, ge=1024, description="largest request body the auth service reads (413 above)"
    )


class ServerSettings(BaseModel):
    """The application server: replicas, concurrency, and the caching echo's cache."""

    replicas: int = Field(1, ge=1, le=16)
    queue: str = "labkit"
    max_in_flight: int = Field(256, ge=1, description="handlers running at once, all users")
    # Fair share (labkit.server.fair): each user's own bounds inside max_in_flight.
    user_max_in_flight: int = Field(16, ge=1, description="handlers running at once, per user")
    user_max_queued: int = Field(
        1000, ge=1, description="requests waiting per user; past it the answer is `busy`"
    )
    busy_backlog: int = Field(
        50_000, ge=1, description="`busy` answers waiting to be sent, all users; past it: at once"
    )
    busy_retry_after: Duration = Field(
        timedelta(milliseconds=250), gt=timedelta(0), description="the retry hint of `busy`"
    )
    # Reader connections (labkit.server.readers): each user's route subjects read on
    # one of `readers` connections of their own, so one user's burst does not sit in
    # the socket in front of everyone else's requests. 0: one connection reads all.
    # A learner the stack creates is announced to the servers before their creds are
    # handed out (labkit.nsc.announce), so they are read from their first request.
    readers: int = Field(
        4, ge=0, le=16, description="connections reading users' requests (0: one for all)"
    )
    reader_max_users: int = Field(
        2000, ge=1, description="past this many users, the readers give way to one connection"
    )
    reader_refresh: Duration = Field(
        timedelta(milliseconds=500),
        gt=timedelta(0),
        description="how often the readers look for users added to or gone from the NSC store",
    )
    # What nats-py holds per subscription before the scheduler sorts it (it drops past
    # these, as a slow consumer): far above a burst. Route messages normally skip that
    # queue (labkit.server.wire's lanes); it holds what arrives before a lane is added.
    receive_pending_msgs: int = Field(200_000, ge=1000)
    receive_pending_bytes: int = Field(128 * 1024**2, ge=1024**2)
    # Below the stack's stop_timeout (5 s), so the stack never needs SIGKILL.
    drain_timeout: Duration = Field(
        timedelta(seconds=4), gt=timedelta(0), description="SIGTERM: longest wait, then exit"
    )
    cache_backend: str = Field("memory", description="memory, or kv (a JetStream KV bucket)")
    cache_ttl: Duration = Field(timedelta(seconds=5), gt=timedelta(0))
    cache_max_entries: int = Field(10_000, ge=1)
    cache_max_bytes: int = Field(
        64 * 1024**2, ge=64 * 1024, description="the whole cache's bytes (keys are hashed)"
    )
    cache_max_user_bytes: int = Field(
        8 * 1024**2, ge=4 * 1024, description="one user's share; past it their own entries go"
    )
    cache_bucket: str = "labkit-cache"


class ProgressSettings(BaseModel):
    """Exercise progress reports (classroom): the KV bucket the server keeps them in.

    One record per learner and exercise (key `<user>.<exercise_id>`, last report
    wins); a learner past `max_exercises_per_user` gets an error for a new exercise
    id, and the bucket as a whole holds at most `max_bytes`.
    """

    bucket: str = Field(
        "labkit_progress", description="KV bucket; NscSettings.server_publish names it too"
    )
    max_exercises_per_user: int = Field(
        200, ge=1, description="records kept per learner; past it new exercise ids are refused"
    )
    max_bytes: int = Field(
        64 * 1024**2, ge=64 * 1024, description="the whole bucket, bytes (on the NATS server)"
    )
    replicas: int | None = Field(
        None, ge=1, le=5, description="default: 3 on a NATS cluster of 3 or more nodes, else 1"
    )


class S3Settings(BaseModel):
    """The object store: the embedded S3-compatible server, or any S3 endpoint (MinIO)."""

    endpoint: str | None = Field(
        None, description="host:port of an S3 endpoint to use instead of the embedded one"
    )
    access_key: str | None = Field(None, description="generated for the embedded server")
    secret_key: str | None = Field(None, description="generated for the embedded server")
    region: str = "us-east-1"
    secure: bool = Field(False, description="use TLS (https) for the endpoint")
    host: str = "127.0.0.1"
    port: int = Field(9000, ge=0, le=65535, description="the embedded server's preferred port")
    # nanio's event loop waits in fsync for every write: for a class, several processes
    # (one socket, uvicorn workers) keep one learner's write from holding up the others.
    workers: int = Field(1, ge=1, le=16, description="the embedded server's processes")
    bucket: str = Field("labkit-files", description="one bucket; each user has a prefix in it")
    url_expiry: Duration = Field(timedelta(hours=2), gt=timedelta(0))
    max_image_pixels: int = Field(25_000_000, ge=1)
    max_image_bytes: int = Field(20 * 1024**2, ge=1)
    upload_url_expiry: Duration = Field(
        timedelta(minutes=5), gt=timedelta(0), description="how long an upload URL works"
    )
    image_workers: int = Field(3, ge=2, description="threads for image transforms")
    transforms_per_user: int = Field(2, ge=1, description="one user's transforms at once")
    max_pixels_in_flight: int = Field(
        25_000_000, ge=1, description="decoded pixels in memory at once, all users"
    )


class StreamSettings(BaseModel):
    """The JetStream stream the application server owns for the persistence lab.

    Nothing one user sends can remove what another stored: past a user's own bound
    (or the stream's total) new messages are refused (discard new), never old ones
    evicted. Messages leave only by age.
    """

    max_age: Duration = Field(timedelta(days=7), gt=timedelta(0))
    max_bytes: int = Field(256 * 1024**2, gt=0, description="the whole stream, bytes")
    # Per user: at most this many requests stored, and as many replies (per subject).
    max_msgs_per_user: int = Field(1000, ge=1)
    # One message, headers included: a request (and its reply) must fit.
    max_msg_size: int = Field(16 * 1024, ge=256)
    duplicate_window: Duration = Field(timedelta(minutes=2), gt=timedelta(0))
    # How long the server may take before an unacknowledged request is redelivered.
    ack_wait: Duration = Field(timedelta(seconds=30), gt=timedelta(0))
    # Deliveries of a request whose answer could not be stored (each retried after 1, 2,
    # 4, ... 30 s); the next one stores an `undeliverable` error reply instead.
    max_deliveries: int = Field(8, ge=1)
    # One consumer per learner (their reply consumer) plus the server's. nats-server 2.15
    # gives a stream that sets none a limit of 1,000: a class of 1,000 would be refused.
    max_consumers: int = Field(10_000, ge=2, description="the stream's consumers, all users")
    replicas: int | None = Field(
        None, ge=1, le=5, description="default: 3 on a NATS cluster of 3 or more nodes, else 1"
    )


class BufferSettings(BaseModel):
    """The client-side durable outbox (labkit.buffer): an SQLite file on the client's machine."""

    path: Path | None = Field(None, description="outbox file; default <home>/client/outbox.db")


class StackSettings(BaseModel):
    """How the stack starts and stops its processes."""

    startup_timeout: float = Field(15.0, gt=0, description="seconds to wait for health")
    stop_timeout: float = Field(5.0, gt=0, description="seconds between SIGTERM and SIGKILL")


# The stack's preferred ports (LABKIT_<name>): a test run or a learner's sandbox sets
# them all to 0, free ones, so it can run beside another stack.
PORT_SETTINGS = (
    "NATS_PORT",
    "NATS_MONITOR_PORT",
    "NATS_CLUSTER_PORT",
    "NATS_WS_PORT",
    "NSC_SERVICE_PORT",
    "AUTH_PORT",
    "S3_PORT",
)


class Settings(BaseSettings):
    """All labkit settings; `Settings()` reads the environment and `.env`."""

    model_config = SettingsConfigDict(
        env_prefix="LABKIT_",
        env_file=".env",
        env_file_encoding="utf-8",
        env_nested_delimiter="_",
        env_nested_max_split=1,
        extra="ignore",
    )

    home: Path = Field(Path(".labkit"), description="the stack's data directory")
    classroom: bool = Field(
        False,
        description="use a class's shared stack (LABKIT_NATS_URL, LABKIT_AUTH_URL, "
        "LABKIT_S3_ENDPOINT): check that it answers, start none of it",
    )
    nats: NatsSettings = NatsSettings()
    nsc: NscSettings = NscSettings()
    database: DatabaseSettings = DatabaseSettings()
    auth: AuthSettings = AuthSettings()
    server: ServerSettings = ServerSettings()
    s3: S3Settings = S3Settings()
    stream: StreamSettings = StreamSettings()
    progress: ProgressSettings = ProgressSettings()
    buffer: BufferSettings = BufferSettings()
    stack: StackSettings = StackSettings()

    @field_validator("home")
    @classmethod
    def _absolute(cls, value: Path) -> Path:
        return value.expanduser().resolve()

    @cached_property
    def paths(self) -> DataPaths:
        return DataPaths(self.home, self.nsc.store_dir, self.buffer.path)


class DataPaths:
    """Where each piece of state lives inside the data directory."""

    def __init__(
        self, home: Path, nsc_store: Path | None = None, outbox_file: Path | None = None
    ) -> None:
        self.home = home
        self.nsc_store = (nsc_store or home / "nsc").expanduser().resolve()
        self.outbox_file = (outbox_file or home / "client" / "outbox.db").expanduser().resolve()
        self.state_file = home / "state.json"
        self.lock_file = home / "stack.lock"
        self.run_dir = home / "run"
        self.log_dir = home / "logs"
        self.nats_dir = home / "nats"
        self.secrets_dir = home / "secrets"
        self.nsc_token_file = self.secrets_dir / "nsc-service.token"
        self.auth_secret_file = self.secrets_dir / "auth-jwt.secret"
        self.auth_database = home / "auth.db"
        self.objects_dir = home / "objects"
        self.s3_keys_file = self.secrets_dir / "s3-keys.json"
        # A deployment (docker/) gives the instructor dashboard these three files instead
        # of the keystore and the auth service's settings (labkit.deploy writes them).
        self.dashboard_creds_file = self.secrets_dir / "dashboard.creds"
        self.observer_creds_file = self.secrets_dir / "observer.creds"
        self.database_url_file = self.secrets_dir / "database.url"

    def log_file(self, component: str) -> Path:
        return self.log_dir / f"{component}.log"

    def pid_file(self, component: str) -> Path:
        return self.run_dir / f"{component}.pid"


def load_settings() -> Settings:
    """Read settings now (the environment may have changed since import)."""
    return Settings()
