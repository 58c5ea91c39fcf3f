"""Settings: the only place that reads the environment (prefix DIGEST_, or a .env file)."""

from __future__ import annotations

import ipaddress
import os
import re
import secrets
from enum import StrEnum
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import AliasChoices, BaseModel, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from digest.cron import cron_trigger
from digest.models import MAX_PAPERS


class SmtpSecurity(StrEnum):
    """How the SMTP connection is secured."""

    none = "none"
    starttls = "starttls"
    tls = "tls"


_CATEGORY = re.compile(r"[a-z][a-z-]*(?:\.[A-Za-z][A-Za-z-]*)?")
SourceKind = Literal["arxiv", "arxiv-api", "hf", "feed"]


def _check_cron(expression: str, timezone: str) -> None:
    cron_trigger(expression, timezone)


class SourceConfig(BaseModel):
    """One source the scheduler ingests (an item of DIGEST_SOURCES)."""

    kind: SourceKind
    name: str = Field(default="", description="Label in logs and `digest sources`.")
    categories: list[str] = Field(default_factory=list, description="arXiv categories.")
    url: str | None = Field(default=None, description="Feed URL (kind feed).")
    days: int = Field(default=2, ge=1, le=60, description="arxiv-api: days back to fetch.")
    cron: str | None = Field(
        default=None, description="When to ingest it (crontab); default: DIGEST_INGEST_CRON."
    )

    @field_validator("cron")
    @classmethod
    def _cron(cls, value: str | None) -> str | None:
        if value is not None:
            _check_cron(value, "UTC")
        return value

    @field_validator("categories")
    @classmethod
    def _arxiv_categories(cls, value: list[str]) -> list[str]:
        for category in value:
            if not _CATEGORY.fullmatch(category):
                raise ValueError(f"{category!r} is not an arXiv category such as cs.LG or hep-th")
        return value

    @model_validator(mode="after")
    def _complete(self) -> SourceConfig:
        if self.kind in ("arxiv", "arxiv-api") and not self.categories:
            raise ValueError(f'an {self.kind} source needs categories, e.g. ["cs.LG"]')
        if self.kind == "feed" and not self.url:
            raise ValueError("a feed source needs a url")
        return self

    def label(self) -> str:
        """The source's name, or one derived from its kind and target."""
        if self.name:
            return self.name
        if self.kind in ("arxiv", "arxiv-api"):
            return f"{self.kind}:{'+'.join(self.categories)}"
        if self.kind == "feed":
            return f"feed:{self.url}"
        return self.kind


# What a new install ingests until DIGEST_SOURCES says otherwise.
DEFAULT_CATEGORIES = ["cs.LG", "cs.CL", "cs.CV", "cs.AI"]


def default_sources() -> list[SourceConfig]:
    """Hugging Face Daily Papers and the arXiv listings of the main machine learning categories."""
    return [
        SourceConfig(kind="hf"),
        SourceConfig(kind="arxiv", categories=list(DEFAULT_CATEGORIES)),
    ]


KEY_FILE = "secret_key"
MIN_KEY_LENGTH = 32
WEAK_KEYS = {"change-me", "changeme", "secret"}


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _kept_key(path: Path) -> str:
    """The key kept at `path`, made (random, mode 0600) the first time it is needed."""
    if path.is_file():
        kept = path.read_text(encoding="utf-8").strip()
        if kept:
            return kept
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(48)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as file:
        file.write(key + "\n")
    return key


def spare_cores() -> int:
    """The cores this process may run on, less one for the sender (at most 16)."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    return max(0, min(16, cores - 1))


class Settings(BaseSettings):
    """Everything an operator can configure, read from DIGEST_* variables or .env."""

    model_config = SettingsConfigDict(
        env_prefix="DIGEST_",
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        populate_by_name=True,
    )

    var_dir: Path = Field(default=Path("var"), description="Where local state lives.")
    database_url: str = Field(
        default="", description="SQLAlchemy URL; default: a SQLite file in var_dir."
    )

    smtp_host: str = "127.0.0.1"
    smtp_port: int = 8025
    smtp_user: str | None = None
    smtp_password: SecretStr | None = None
    smtp_security: SmtpSecurity = SmtpSecurity.none
    smtp_timeout: float = Field(default=30.0, gt=0, description="Seconds per SMTP command.")
    smtp_connections: int = Field(default=4, ge=1, le=64, description="SMTP connections kept.")
    smtp_rate_limit: float | None = Field(
        default=None, gt=0, description="At most this many messages per second (all connections)."
    )

    render_processes: int = Field(
        default_factory=lambda: spare_cores(),
        ge=0,
        le=16,
        description="Processes rendering digests beside the sender; default: one per core "
        "beyond the sender's (none on one core).",
    )
    plan_processes: int = Field(
        default_factory=lambda: spare_cores() + 1,
        ge=1,
        le=17,
        description="Processes planning chunks of due subscribers at once, on PostgreSQL; "
        "default: one per core.",
    )
    plan_parallel_min: int = Field(
        default=20_000,
        ge=0,
        description="Due subscribers from which planning uses several processes.",
    )
    render_pool_min_digests: int = Field(
        default=200, ge=0, description="`digest run` renders in-process below this many."
    )
    send_batch: int = Field(default=100, ge=1, description="Digests claimed per transaction.")
    send_lease_seconds: float = Field(
        default=600, gt=0, description="A claimed digest is taken over after this long."
    )
    max_per_run: int | None = Field(default=None, ge=1, description="Cap on messages per run.")
    retry_schedule: list[float] = Field(
        default=[60, 300, 900, 3600, 10800],
        description="Seconds to wait before retry 1, 2, ...; the last repeats.",
    )
    retry_max_age_hours: float = Field(
        default=24, gt=0, description="A digest not delivered after this long fails."
    )
    soft_bounce_threshold: int = Field(
        default=3, ge=1, description="Soft bounces after which a subscriber is bounced."
    )
    inbox_imap_url: SecretStr = Field(
        default=SecretStr(""),
        validation_alias=AliasChoices("DIGEST_INBOX_IMAP_URL", "DIGEST_BOUNCE_IMAP_URL"),
        description="Mailbox where bounces and emailed unsubscribe requests arrive, read by "
        "`digest inbox` and the scheduler: imaps://user:password@host[:port]/MAILBOX.",
    )
    inbox_maildir: Path | None = Field(
        default=None, description="A Maildir read instead of the IMAP mailbox."
    )
    inbox_every_minutes: float = Field(
        default=5, gt=0, description="How often the scheduler reads the inbox (when one is set)."
    )
    inbox_authserv_id: str = Field(
        default="",
        description="Your mail server's authserv-id in Authentication-Results: when set, an "
        "emailed unsubscribe without its link token is honoured if the server saw dmarc=pass.",
    )
    worker_poll_seconds: float = Field(
        default=30, gt=0, description="How often an idle worker looks for due digests."
    )

    from_: str = Field(
        default="digest <digest@localhost>",
        validation_alias="DIGEST_FROM",
        description="From header: display name and address.",
    )
    base_url: str = Field(default="http://127.0.0.1:8000", description="Public URL for links.")
    templates_dir: Path | None = Field(
        default=None, description="A directory whose templates override the bundled ones."
    )
    secret_key: SecretStr = Field(
        default=SecretStr(""),
        description="Signs the links in emails; default: a random key made once and kept in "
        "DIGEST_VAR_DIR/secret_key (mode 0600).",
    )
    sender_identity: str = Field(
        default="",
        description="Who sends the emails: a name and postal address for the footer.",
    )
    return_path: str = Field(
        default="",
        description="Bounce address (envelope sender); {local} and {domain} make it VERP.",
    )
    list_id: str = Field(default="", description="List-Id; default: digest.<From domain>.")
    unsubscribe_mailto: str = Field(
        default="",
        description="Address of the mailto unsubscribe link; default: From, and only "
        "when an inbox is configured (without one, no mailto: is offered).",
    )
    email_max_bytes: int = Field(
        default=100_000,
        ge=10_000,
        description="HTML part size limit; papers past it move to the 'more' link.",
    )
    dkim_private_key: Path | None = Field(
        default=None, description="PEM RSA key: sign emails with DKIM in process (off if unset)."
    )
    dkim_selector: str = Field(default="digest", description="DKIM selector (DNS record name).")
    dkim_domain: str = Field(default="", description="DKIM signing domain; default: From.")
    first_digest_days: int = Field(
        default=7, ge=0, description="A new subscriber's first digest covers this many days."
    )
    holdover_days: float = Field(
        default=14,
        ge=0,
        description="A matched paper that did not fit under a subscriber's cap is held over "
        "to their next digests until this many days after it was first seen.",
    )
    default_max_papers: int = Field(default=20, ge=1, le=MAX_PAPERS)
    default_timezone: str = "UTC"
    default_send_hour: int = Field(default=7, ge=0, le=23)

    admin_token: SecretStr | None = Field(
        default=None, description="Bearer token of the admin JSON API (off if unset)."
    )
    confirm_link_hours: float = Field(
        default=48, gt=0, description="A confirmation link expires after this many hours."
    )
    pending_purge_days: float = Field(
        default=7,
        gt=0,
        description="Sign-ups never confirmed are erased after this many days.",
    )
    link_days: float = Field(
        default=90, gt=0, description="Preferences and digest links expire after this many days."
    )
    subscribe_per_ip_hour: int = Field(
        default=100,
        ge=1,
        description="Sign-ups accepted per client IP address per hour (a department behind "
        "one NAT shares an address).",
    )
    subscribe_per_hour: int = Field(
        default=1000, ge=1, description="Sign-ups accepted per hour in all (per web process)."
    )
    subscribe_answer_seconds: float = Field(
        default=0.5,
        ge=0,
        description="Every sign-up is answered no sooner than this, so the answer's timing "
        "does not tell whether an email went out; keep it above the relay's send time.",
    )
    subscribe_per_address_hour: int = Field(
        default=3, ge=1, description="Sign-ups accepted per email address per hour."
    )
    preview_per_ip_minute: int = Field(
        default=60, ge=1, description="Interest previews per client IP address per minute."
    )
    forwarded_allow_ips: str = Field(
        default="",
        description="Proxies trusted for X-Forwarded-For (comma-separated; '*' for any); "
        "default: none, so no client can choose the address its requests count against.",
    )

    sources: list[SourceConfig] = Field(
        default_factory=default_sources,
        description="Sources to ingest, as a JSON list (see docs/sources.md); default: Hugging "
        "Face Daily Papers and the arXiv listings of cs.LG, cs.CL, cs.CV and cs.AI; [] for none.",
    )
    http_timeout: float = Field(default=30.0, gt=0, description="Seconds per HTTP request.")
    http_retries: int = Field(default=4, ge=0, description="Retries after the first attempt.")
    http_backoff: float = Field(default=2.0, ge=0, description="First retry delay, doubled after.")
    http_backoff_max: float = Field(default=120.0, ge=0, description="Longest retry delay.")
    user_agent: str = Field(
        default="digest/0.1 (self-hosted research paper digest)",
        description="User-Agent of every request; put a contact address in it.",
    )
    arxiv_delay: float = Field(default=3.0, ge=0, description="Seconds between arXiv requests.")
    arxiv_listing_url: str = "https://rss.arxiv.org/rss/"
    arxiv_api_url: str = "https://export.arxiv.org/api/query"
    arxiv_page_size: int = Field(default=200, ge=1, le=2000)
    hf_daily_url: str = "https://huggingface.co/api/daily_papers"

    ingest_cron: str = Field(
        default="30 20 * * 0-4",
        description="When sources are ingested (crontab: minute hour day month weekday, "
        "0 = Sunday), in ingest_timezone; default: after arXiv's announcement.",
    )
    ingest_timezone: str = Field(
        default="America/New_York", description="Time zone of the ingest cron expressions."
    )
    dispatch_seconds: float = Field(
        default=300, gt=0, description="How often the scheduler plans the digests now due."
    )
    catch_up_hours: float = Field(
        default=12,
        gt=0,
        description="A digest missed (service down) is sent within this long of its time; "
        "after that its period is skipped and its papers go in the next digest.",
    )
    leader_lock_id: int = Field(
        default=7_100_112_101_115, description="PostgreSQL advisory lock key of the scheduler."
    )
    leader_check_seconds: float = Field(
        default=15,
        gt=0,
        description="How often a standby process tries to become the scheduler (PostgreSQL).",
    )

    @model_validator(mode="after")
    def _schedule(self) -> Settings:
        _check_cron(self.ingest_cron, self.ingest_timezone)
        return self

    @model_validator(mode="after")
    def _key(self) -> Settings:
        if not self.secret_key.get_secret_value():
            self.secret_key = SecretStr(_kept_key(self.var_dir / KEY_FILE))
        return self

    def key_problem(self, listening: str | None = None) -> str | None:
        """Why the link-signing key is unsafe for this process, or None if it is fine.

        A known or short key lets anyone sign links (preferences, unsubscribe) for any
        subscriber; it is accepted only while the pages those links open are reachable
        from this machine alone: DIGEST_BASE_URL and the address the web app listens on
        (`listening`, when it serves) both on loopback.
        """
        key = self.secret_key.get_secret_value()
        if key not in WEAK_KEYS and len(key) >= MIN_KEY_LENGTH:
            return None
        local = _loopback(urlsplit(self.base_url).hostname or "")
        if local and (listening is None or _loopback(listening)):
            return None
        weak = "the default key" if key in WEAK_KEYS else f"a {len(key)}-character key"
        return (
            f"DIGEST_SECRET_KEY is {weak}, so anyone could forge links to subscribers' pages; "
            f"set it to {MIN_KEY_LENGTH} or more random characters (or leave it unset to use "
            f"the key kept in {self.var_dir / KEY_FILE}), or serve on loopback only"
        )

    @property
    def sqlalchemy_url(self) -> str:
        """The database URL, defaulting to var_dir/digest.db."""
        return self.database_url or f"sqlite:///{self.var_dir / 'digest.db'}"

    @property
    def maildir(self) -> Path:
        """Where the local capture server stores messages."""
        return self.var_dir / "mail"
