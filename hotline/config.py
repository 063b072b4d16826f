"""Settings, read from the environment (prefix HOTLINE_)."""

import re
from functools import lru_cache
from pathlib import Path
from typing import Annotated

from pydantic import AfterValidator, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

ROOT = Path(__file__).resolve().parent.parent
# A scheme and a host (its first label may be *), with a port or not: an origin as a
# Content-Security-Policy source names it.
ORIGIN = re.compile(r"https?://(\*\.)?[a-z0-9-]+(\.[a-z0-9-]+)*(:[0-9]{1,5})?")


def origin_list(value: str) -> str:
    """Origins separated by spaces or commas, each checked (they go into a
    Content-Security-Policy header), with one space between."""
    origins = []
    for item in re.split(r"[\s,]+", value.strip()):
        if not item:
            continue
        origin = item.rstrip("/").lower()
        if not ORIGIN.fullmatch(origin):
            raise ValueError(f"{item!r} is not an origin such as https://www.example.gov.cn")
        origins.append(origin)
    return " ".join(origins)


class Settings(BaseSettings):
    """Process-wide settings; every field can be set as HOTLINE_<NAME>."""

    model_config = SettingsConfigDict(env_prefix="HOTLINE_", extra="ignore")

    database_url: str = f"sqlite:///{ROOT / 'var' / 'hotline.db'}"
    workflows_dir: Path = ROOT / "workflows"
    templates_dir: Path = ROOT / "templates"
    # Largest request body accepted, in bytes; larger bodies get a 413.
    max_body_bytes: int = 64 * 1024
    # The secret the callers' names and phones are sealed with (hotline.crypto): at least 32
    # characters; several separated by commas while a rotation runs (the first seals). Or
    # key_file: a file of them, one a line. With neither, on SQLite, hotline.key beside the
    # database is made on first use; PostgreSQL refuses to start without one.
    secret_key: str | None = None
    key_file: Path | None = None
    # API requests one token may make per minute, per server process (0: no limit).
    rate_limit_per_minute: int = 6000
    # Run the scheduler inside `hotline serve` (the one-process set-up).
    embedded_scheduler: bool = True
    # Seconds between two sweeps of the scheduler.
    sweep_interval_seconds: float = 60.0
    # Seconds the scheduler's leader holds its lease (hotline.ops.leader): it renews it every
    # third of that; when it dies, another process takes over within this time.
    scheduler_lease_seconds: float = Field(default=30.0, ge=1, le=300)
    # Logs: "text" (lines for a person) or "json" (one object a line, for a log collector).
    log_format: str = Field(default="text", pattern="^(text|json)$")
    log_level: str = Field(default="INFO", pattern="^(DEBUG|INFO|WARNING|ERROR)$")
    # A bearer token that opens /metrics to any address; unset: loopback clients only.
    metrics_token: str | None = None
    sql_echo: bool = False
    # The district's name, as the pages show it.
    district_name: str = "示范区"
    # The address citizens reach the site at, for the links in their messages; `hotline
    # serve` makes it the address it listens on when this is not set.
    public_url: str = "http://127.0.0.1:8000"
    # Where text messages go: "stored" (kept for administrators), "http" (an SMS gateway's
    # HTTP endpoint, below) or "module:factory".
    message_channel: str = "stored"
    # The "http" channel: each message POSTed as JSON {"to", "body"} to this address, with the
    # token as a bearer token when set; any answer but 2xx within the time-out is a failure.
    message_gateway_url: str = ""
    message_gateway_token: str = ""
    message_gateway_timeout_seconds: float = 5.0
    # Webhooks (互联互通): the waits before each retry, in seconds; then the event is dead.
    webhook_retry_seconds: str = "5,300,1800,7200,18000,36000,86400"
    # Seconds a receiver has to answer.
    webhook_timeout_seconds: float = 15.0
    # Deliveries in flight at once, per delivery process.
    webhook_concurrency: int = 8
    # Hosts webhooks may be sent to, comma-separated (empty: any).
    webhook_allowed_hosts: str = ""
    # Seconds between two looks for due deliveries.
    delivery_interval_seconds: float = 1.0
    # Days delivered webhooks stay listed (the events themselves stay, and can be replayed).
    delivery_retention_days: int = 30
    # The pull feed holds back events younger than this many seconds on PostgreSQL, where a
    # transaction may commit after a later one: a reader's cursor never skips an event.
    feed_settle_seconds: float = 2.0
    # Send the sign-in cookies over HTTPS only. Unset: true when public_url is https (see
    # `cookies_secure`); set it to say otherwise.
    secure_cookies: bool | None = None
    # Minutes a signed-in browser may sit unused before it must sign in again (0: no idle
    # time-out); a session ends after 12 hours whatever its use.
    session_idle_minutes: int = Field(default=30, ge=0, le=24 * 60)
    # Open311: anyone may read service requests without an api_key, as the standard has it
    # (no caller's name, phone, e-mail or device id; no confidential ticket). False: reading
    # takes a key too, and a read without one gets a 403.
    open311_public_reads: bool = True
    # The hotline's number, as the citizens' pages and the assistant's hand-over give it.
    phone: str = "12345"
    # Sites whose pages may show the citizens' pages (/kb, /assistant) in an iframe: origins
    # such as https://www.example.gov.cn, separated by spaces or commas (empty: none may).
    embed_origins: Annotated[str, AfterValidator(origin_list)] = ""
    # The assistant's optional language model (off unless the URL is set): an OpenAI-style
    # chat-completions endpoint (…/v1/chat/completions) that phrases the answer from the
    # retrieved passages only; without it, or when its reply does not cite them, the
    # assistant answers with the passage itself.
    llm_url: str | None = None
    llm_model: str = "default"
    # Sent as `Authorization: Bearer …` when set.
    llm_api_key: str | None = None
    # Seconds the model has to answer before the assistant answers with the passage.
    llm_timeout_seconds: float = 8.0
    # Attachments (附件): the largest file, in bytes; the directory of the default store;
    # days after a ticket is finished (archived, cancelled, merged) that its files are
    # deleted (0: kept as long as the ticket).
    max_attachment_bytes: int = Field(default=10 * 1024 * 1024, ge=1, le=1024 * 1024 * 1024)
    attachments_dir: Path = ROOT / "var" / "attachments"
    attachment_retention_days: int = Field(default=0, ge=0, le=36500)
    # The integration source of the telephone system: its account alone reports calls (来电弹屏).
    call_source: str = "telephony"

    @property
    def cookies_secure(self) -> bool:
        """Whether the sign-in cookies carry `Secure`: as set, else whether the public URL is https."""
        if self.secure_cookies is not None:
            return self.secure_cookies
        return self.public_url.strip().lower().startswith("https://")


@lru_cache
def get_settings() -> Settings:
    """The settings of this process."""
    return Settings()
