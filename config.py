"""The one Settings object shared by the worker and the API (env prefix ``TRAMITA_``)."""

from __future__ import annotations

import json
from datetime import time
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    EmailStr,
    Field,
    PrivateAttr,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict
from temporalio.client import Client, TLSConfig
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.runtime import Runtime

from profiles import (
    Profiles,
    ProfilesFileError,
    load_profiles,
    parse_business_hours,
    parse_work_days,
)
from workflows.models import BuiltInProfile, CalendarSnapshot, ProfileName

Role = Literal["agent", "supervisor", "robot", "requester", "system"]
MIN_PRODUCTION_KEY_LENGTH = 32


class ImapMailbox(BaseModel):
    """One mailbox Tramita follows (``TRAMITA_IMAP_MAILBOXES``)."""

    model_config = ConfigDict(extra="forbid")

    host: str
    port: int = 993
    tls: bool = True
    username: str
    password: SecretStr
    folder: str = "INBOX"
    profile: ProfileName | None = None

    @property
    def key(self) -> str:
        """Names the mailbox without its password: the workflow id and inputs use it."""
        return f"{self.username}@{self.host}:{self.port}/{self.folder}"


class ApiKey(BaseModel):
    subject: str = Field(min_length=1)
    role: Role
    name: str | None = Field(default=None, max_length=200)
    """How the subject is shown to customers (the From of an agent's email)."""
    email: EmailStr | None = None
    """Where an agent is told of a ticket assigned to them or a customer's reply on one."""


# Keys a newcomer can use with `make run`; ENV=production refuses to start with any of them.
DEVELOPMENT_API_KEYS: dict[str, ApiKey] = {
    "dev-agent-key": ApiKey(subject="ana", role="agent", name="Ana Souza", email="ana@example.com"),
    "dev-supervisor-key": ApiKey(
        subject="sofia", role="supervisor", name="Sofia Lima", email="sofia@example.com"
    ),
    "dev-robot-key": ApiKey(subject="robo-1", role="robot"),
    "dev-requester-key": ApiKey(subject="cliente@example.com", role="requester"),
    "dev-system-key": ApiKey(subject="system", role="system"),
}


DEVELOPMENT_SECRET_KEY = "tramita-development-secret-key-not-for-production"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TRAMITA_", extra="ignore")

    _profiles: Profiles = PrivateAttr()

    env: Literal["development", "production"] = "development"

    temporal_address: str = "localhost:7233"
    temporal_namespace: str = "default"
    task_queue: str = "tramita-tickets"
    temporal_tls_cert: str | None = None
    """Path to a PEM client certificate (mTLS); the key goes in ``temporal_tls_key``."""
    temporal_tls_key: str | None = None
    temporal_api_key: SecretStr | None = None

    api_keys: Annotated[dict[str, ApiKey], NoDecode] = Field(
        default_factory=lambda: dict(DEVELOPMENT_API_KEYS)
    )
    default_profile: ProfileName = BuiltInProfile.SUPPORT.value
    profiles_file: Path | None = None
    """A TOML file of the deployment's own profiles (README, "Processes and SLAs"); read
    when the settings load, so a bad file stops every process at start."""

    calendar_country: str | None = "BR"
    calendar_subdivision: str | None = None
    calendar_timezone: str = "America/Sao_Paulo"
    business_hours: Annotated[tuple[time, time], NoDecode] = (time(8, 0), time(18, 0))
    work_days: Annotated[tuple[int, ...], NoDecode] = (1, 2, 3, 4, 5)
    calendar_years_ahead: int = Field(default=3, ge=1, le=20)

    smtp_host: str = "localhost"
    smtp_port: int = 1025
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_starttls: bool | None = None
    """None (default): upgrade to TLS whenever the server offers STARTTLS; true: require
    it; false: never (refused in production when credentials are set)."""
    smtp_tls: bool = False
    """Implicit TLS from the first byte (port 465) instead of STARTTLS."""
    smtp_ca_file: Path | None = None
    """Extra CA certificates (PEM) to trust for a mail server with a private CA."""
    smtp_timeout_seconds: float = 20.0
    mail_from: str = "Tramita <tramita@localhost>"

    inbound_smtp_host: str = "127.0.0.1"
    inbound_smtp_port: int = 2525
    """The SMTP listener that takes inbound mail (``python -m mail.listener``)."""
    inbound_addresses: Annotated[dict[str, ProfileName], NoDecode] = Field(default_factory=dict)
    """JSON object: which profile mail to each address opens (else the default profile)."""
    imap_mailboxes: Annotated[tuple[ImapMailbox, ...], NoDecode] = ()
    """JSON list of mailboxes a durable workflow each follows."""
    imap_poll_seconds: float = Field(default=60.0, gt=0)
    """How often a mailbox without IDLE is polled."""
    known_senders: Annotated[tuple[str, ...], NoDecode] = ()
    """Addresses and domains whose mail may open tickets where the profile rejects unknown
    senders (Enate); empty: everyone is known."""
    inbound_max_new_per_sender_hour: int = Field(default=20, ge=1)
    inbound_max_bytes: int = Field(default=30 * 1024 * 1024, ge=1024)
    """The largest message the inbound paths take (raw MIME)."""
    max_attachment_bytes: int = Field(default=25 * 1024 * 1024, ge=1024)
    """Attachments over this are listed but not kept."""

    webhook_urls: Annotated[tuple[str, ...], NoDecode] = ()
    webhook_secret: SecretStr | None = None
    webhook_timeout_seconds: float = 10.0

    public_url: str = Field(default="http://localhost:8000", pattern=r"^https?://[^\s/]+")
    """Where people reach the API's pages (the console, the customer page): the base of
    the links in emails."""
    secret_key: SecretStr = SecretStr(DEVELOPMENT_SECRET_KEY)
    """Signs the customer links and the console's sessions. In production: at least 32
    characters of your own; changing it ends every session and every customer link."""
    customer_link_days: int = Field(default=60, ge=1, le=3650)
    """How long a customer link (``/c/{token}``) in an email stays valid."""
    console_session_hours: float = Field(default=12.0, gt=0, le=24 * 30)

    archive_url: str = ""
    """SQLAlchemy URL of the archive (and ticket store). Unset: ``archive.db`` in
    ``data_dir``, so moving the data directory moves every file of a dev stack."""

    log_format: Literal["text", "json"] = "text"
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    worker_metrics_address: str | None = None
    """host:port for the worker's Prometheus endpoint (Temporal SDK metrics); off if unset."""
    worker_max_cached_workflows: int = Field(default=500, ge=0)
    """Tickets a worker keeps in memory; the others are rebuilt from history when they wake.
    Each cached ticket holds its own copy of the core (the sandbox runs it afresh per
    ticket), about half a megabyte: 500 keeps a worker with 10,000 open tickets within
    500 MB, and a desk's tickets sleep for hours between wake-ups anyway."""

    api_host: str = "127.0.0.1"
    api_port: int = 8000
    data_dir: Path = Path(".data")
    attachments_dir: Path | None = None
    """Where long texts and attachments are kept whole, by SHA-256 (default:
    ``attachments`` in ``data_dir``). API, worker and mail listener must share it."""
    """``make run``: Temporal's SQLite file and the mail sink's messages live here."""
    ui_port: int = 8233

    api_rpc_timeout_seconds: float = Field(default=10.0, gt=0)
    """How long the API waits for Temporal (and a worker) before answering 503."""
    api_keep_alive_seconds: int = Field(default=75, gt=0)
    """How long the API keeps an idle client connection open. Longer than a load
    balancer's idle timeout (60 s on AWS ALB), so the balancer closes first: a server that
    closes a connection the balancer is just reusing answers that request with a 502.
    uvicorn's own default is 5 s."""
    max_body_bytes: int = Field(default=1_048_576, ge=1024)
    api_header_timeout_seconds: float = Field(default=10.0, gt=0)
    """A request's headers must arrive within this time of its first byte (and a new
    connection must send one within it); else the connection is closed."""
    api_body_timeout_seconds: float = Field(default=15.0, gt=0)
    """A request body that stalls this long between two parts is answered 408."""
    api_max_concurrency: int = Field(default=500, ge=1)
    """Open connections and requests the API serves at once; past it, 503."""
    rate_limit_per_minute: int = Field(default=600, ge=0)
    """Requests a minute per API key (bursts of as many); 429 past it; 0 turns it off."""

    @field_validator("api_keys", mode="before")
    @classmethod
    def _parse_api_keys(cls, value: Any) -> Any:
        if isinstance(value, str):
            try:
                return json.loads(value)
            except json.JSONDecodeError as exc:
                raise ValueError(f"TRAMITA_API_KEYS must be a JSON object: {exc}") from exc
        return value

    @field_validator("business_hours", mode="before")
    @classmethod
    def _parse_hours(cls, value: Any) -> Any:
        return parse_business_hours(value) if isinstance(value, str) else value

    @field_validator("work_days", mode="before")
    @classmethod
    def _parse_work_days(cls, value: Any) -> Any:
        return parse_work_days(value.split(",")) if isinstance(value, str) else value

    @field_validator("inbound_addresses", "imap_mailboxes", mode="before")
    @classmethod
    def _parse_json(cls, value: Any, info: ValidationInfo) -> Any:
        if isinstance(value, str):
            if not value.strip():
                return {} if info.field_name == "inbound_addresses" else ()
            try:
                return json.loads(value)
            except json.JSONDecodeError as exc:
                raise ValueError(f"must be JSON: {exc}") from exc
        return value

    @field_validator("known_senders", mode="before")
    @classmethod
    def _parse_list(cls, value: Any) -> Any:
        if isinstance(value, str):
            return tuple(item.strip().lower() for item in value.split(",") if item.strip())
        return value

    @field_validator("webhook_urls", mode="before")
    @classmethod
    def _parse_urls(cls, value: Any) -> Any:
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                return tuple(json.loads(text))
            return tuple(u.strip() for u in text.split(",") if u.strip())
        return value

    @field_validator(
        "calendar_country", "calendar_subdivision", "smtp_starttls", "profiles_file", mode="before"
    )
    @classmethod
    def _blank_is_none(cls, value: Any) -> Any:
        return None if isinstance(value, str) and not value.strip() else value

    @model_validator(mode="after")
    def _archive_in_the_data_directory(self) -> Settings:
        if not self.archive_url.strip():
            self.archive_url = f"sqlite:///{self.data_dir / 'archive.db'}"
        if self.attachments_dir is None:
            self.attachments_dir = self.data_dir / "attachments"
        return self

    @model_validator(mode="after")
    def _profiles_in_force(self) -> Settings:
        """Read the profiles file, and check that every setting naming a profile names
        one in force."""
        try:
            self._profiles = load_profiles(self.profiles_file, self.calendar_template())
        except ProfilesFileError as error:
            raise ValueError(f"TRAMITA_PROFILES_FILE {error}") from None
        named = [
            ("TRAMITA_DEFAULT_PROFILE", self.default_profile),
            *(("TRAMITA_INBOUND_ADDRESSES", p) for p in self.inbound_addresses.values()),
            *(("TRAMITA_IMAP_MAILBOXES", m.profile) for m in self.imap_mailboxes if m.profile),
        ]
        for setting, profile in named:
            if profile not in self._profiles:
                raise ValueError(
                    f"{setting} names profile {profile!r}, which is not in force "
                    f"(in force: {', '.join(self._profiles)})"
                )
        return self

    @property
    def profiles(self) -> Profiles:
        """The built-in profiles and those of ``TRAMITA_PROFILES_FILE``."""
        return self._profiles

    @property
    def content_directory(self) -> Path:
        return self.attachments_dir or self.data_dir / "attachments"

    @model_validator(mode="after")
    def _production_is_locked_down(self) -> Settings:
        """Production refuses what would leak or be guessed. The reasons never repeat a
        secret: they name the setting and what is wrong with it."""
        if self.env != "production":
            return self
        problems = []
        if set(self.api_keys) & set(DEVELOPMENT_API_KEYS) or not self.api_keys:
            problems.append("TRAMITA_API_KEYS must hold your own keys, not the development ones")
        weak = [key for key in self.api_keys if len(key) < MIN_PRODUCTION_KEY_LENGTH]
        weak += [key for key in self.api_keys if key != key.strip() or not key.isprintable()]
        if weak:
            problems.append(
                f"TRAMITA_API_KEYS has {len(set(weak))} key(s) shorter than "
                f"{MIN_PRODUCTION_KEY_LENGTH} characters or with spaces or control "
                "characters; use long random keys (e.g. `openssl rand -hex 32`)"
            )
        secret = self.secret_key.get_secret_value()
        if secret == DEVELOPMENT_SECRET_KEY or len(secret) < MIN_PRODUCTION_KEY_LENGTH:
            problems.append(
                f"TRAMITA_SECRET_KEY must be your own, at least {MIN_PRODUCTION_KEY_LENGTH} "
                "characters (it signs customer links and console sessions)"
            )
        if not self.public_url.startswith("https://"):
            problems.append("TRAMITA_PUBLIC_URL must be https:// (links carry credentials)")
        if self.webhook_urls and not self.webhook_secret_value:
            problems.append(
                "TRAMITA_WEBHOOK_URLS needs TRAMITA_WEBHOOK_SECRET: receivers must be able "
                "to check that each delivery comes from Tramita"
            )
        if self.smtp_username and self.smtp_starttls is False and not self.smtp_tls:
            problems.append(
                "TRAMITA_SMTP_STARTTLS=false with TRAMITA_SMTP_USERNAME would send the "
                "mail password in clear text; leave it unset or use TRAMITA_SMTP_TLS"
            )
        if problems:
            raise ValueError("TRAMITA_ENV=production refuses to start: " + "; ".join(problems))
        return self

    @property
    def webhook_secret_value(self) -> str | None:
        secret = self.webhook_secret.get_secret_value() if self.webhook_secret else ""
        return secret or None

    @property
    def mail_domain(self) -> str:
        address = self.mail_from.rsplit("<", 1)[-1].rstrip(">").strip()
        return address.rsplit("@", 1)[-1] or "localhost"

    @property
    def agent_emails(self) -> dict[str, str]:
        """Each subject's address for notifications, where a key gives one."""
        return {entry.subject: str(entry.email) for entry in self.api_keys.values() if entry.email}

    @property
    def display_names(self) -> dict[str, str]:
        """Each subject's display name, where a key gives one."""
        return {entry.subject: entry.name for entry in self.api_keys.values() if entry.name}

    def calendar_for(self, profile: str) -> CalendarSnapshot:
        """A profile's calendar without holidays: its own when it is in force, else the
        configured one (a ticket of a profile since removed from the profiles file)."""
        if profile in self.profiles:
            return self.profiles.calendar_for(profile)
        return self.calendar_template()

    def calendar_template(self) -> CalendarSnapshot:
        """The configured calendar without holidays (they are resolved per ticket)."""
        return CalendarSnapshot(
            timezone=self.calendar_timezone,
            work_days=self.work_days,
            opens_at=self.business_hours[0],
            closes_at=self.business_hours[1],
            country=self.calendar_country,
            subdivision=self.calendar_subdivision,
        )


class SettingsError(Exception):
    """Settings that cannot be used, said without repeating any value (values may be
    secrets: API keys, passwords)."""


def load_settings(**values: Any) -> Settings:
    """The settings from the environment (and ``values``), or a :class:`SettingsError`
    naming each bad setting and why, with no input value in it."""
    try:
        return Settings(**values)
    except ValidationError as error:
        reasons = []
        for problem in error.errors(include_url=False, include_input=False, include_context=False):
            parts = [str(part) for part in problem["loc"]]
            if parts[:1] == ["api_keys"] and len(parts) > 1:
                parts[1] = "<one of the keys>"  # the dict key is the API key itself
            place = ".".join(parts)
            name, _, rest = place.partition(".")
            if not name:  # a rule across settings: its message names them
                reasons.append(problem["msg"].removeprefix("Value error, "))
                continue
            setting = f"TRAMITA_{name.upper()}{'.' + rest if rest else ''}"
            reasons.append(f"{setting}: {problem['msg']}")
        raise SettingsError("; ".join(reasons)) from None


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return load_settings()


def connect_options(settings: Settings) -> dict[str, Any]:
    """Keyword arguments of ``Client.connect`` for the configured cluster or Temporal Cloud."""
    options: dict[str, Any] = {
        "target_host": settings.temporal_address,
        "namespace": settings.temporal_namespace,
        "data_converter": pydantic_data_converter,
    }
    if settings.temporal_tls_cert or settings.temporal_tls_key:
        if not (settings.temporal_tls_cert and settings.temporal_tls_key):
            raise ValueError(
                "mTLS needs both TRAMITA_TEMPORAL_TLS_CERT and TRAMITA_TEMPORAL_TLS_KEY"
            )
        options["tls"] = TLSConfig(
            client_cert=Path(settings.temporal_tls_cert).read_bytes(),
            client_private_key=Path(settings.temporal_tls_key).read_bytes(),
        )
    if settings.temporal_api_key is not None:
        options["api_key"] = settings.temporal_api_key.get_secret_value()
        options.setdefault("tls", True)
    return options


async def connect(settings: Settings, runtime: Runtime | None = None) -> Client:
    options = connect_options(settings)
    if runtime is not None:
        options["runtime"] = runtime
    return await Client.connect(**options)
