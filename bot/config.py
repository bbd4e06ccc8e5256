"""Typed configuration read from the environment and an optional `.env` file.

Names are the contract of DESIGN.md §2: botbuilder's own `MicrosoftApp*` variables plus `NURTURE_*`.
Nothing here is read at import time; `load_settings()` is called by the CLI and tests build `Settings(...)` directly.
"""

from __future__ import annotations

import logging
from enum import StrEnum
from typing import Annotated, Any

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from bot.engagement.ids import stored_id
from bot.engagement.reach import ChatOpening
from bot.security.service_urls import (
    Endpoint,
    UnsafeServiceUrl,
    canonical_host,
    is_loopback,
    plain_endpoint,
)

log = logging.getLogger(__name__)

PUBLIC_CLOUD_OPENID_METADATA_URL = "https://login.botframework.com/v1/.well-known/openidconfiguration"
# Teams' public-cloud Bot Connector endpoints (smba.trafficmanager.net/amer/, /emea/, /teams/ …).
DEFAULT_SERVICE_URL_HOSTS = ("smba.trafficmanager.net",)


class AppType(StrEnum):
    """The three identities botbuilder knows (`MicrosoftAppType`)."""

    MULTI_TENANT = "MultiTenant"
    SINGLE_TENANT = "SingleTenant"
    USER_ASSIGNED_MSI = "UserAssignedMSI"


class ConfigError(Exception):
    """A configuration problem, worded as one line for the operator."""


def _split_csv(value: Any) -> Any:
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


CsvList = Annotated[list[str], NoDecode]


def _endpoint(url: str) -> Endpoint:
    """Where a configured URL connects, read strictly (no user info, backslash, query …: what parsers could read
    differently) as the service URLs are; ValueError with the reason otherwise."""
    try:
        return plain_endpoint(url)
    except UnsafeServiceUrl as exc:
        raise ValueError(str(exc).replace("serviceUrl", "the URL")) from None


# backend → (the driver name Nurture uses, the drivers taken to mean it: "" is a URL that names none)
_ASYNC_DRIVERS = {
    "sqlite": ("sqlite+aiosqlite", ("aiosqlite", "pysqlite", "")),
    "postgresql": ("postgresql+asyncpg", ("asyncpg", "psycopg2", "")),
    "postgres": ("postgresql+asyncpg", ("asyncpg", "psycopg2", "")),
}
_DATABASE_URL_FORMS = "use sqlite+aiosqlite:///FILE or postgresql+asyncpg://USER:PASSWORD@HOST/DATABASE"


class Settings(BaseSettings):
    """Every setting Nurture reads: field `x` is the environment variable NURTURE_X, except the Bot Framework
    identity (botbuilder's own names) and a few whose field name carries a unit; those name theirs as an alias."""

    model_config = SettingsConfigDict(
        env_prefix="NURTURE_",
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        populate_by_name=True,
        case_sensitive=False,
    )

    app_id: str = Field(default="", validation_alias="MicrosoftAppId")
    app_password: str = Field(default="", validation_alias="MicrosoftAppPassword")
    app_type: AppType = Field(default=AppType.MULTI_TENANT, validation_alias="MicrosoftAppType")
    app_tenant_id: str = Field(default="", validation_alias="MicrosoftAppTenantId")

    dev_mode: bool = False
    database_url: str = "sqlite+aiosqlite:///nurture.db"
    allowed_tenants: CsvList = Field(default_factory=list)
    openid_metadata_url: str = PUBLIC_CLOUD_OPENID_METADATA_URL
    service_url_hosts: CsvList = Field(
        default_factory=lambda: list(DEFAULT_SERVICE_URL_HOSTS),
    )
    ingest_tokens: CsvList = Field(default_factory=list)
    campaigns: str = ""
    csm_ids: CsvList = Field(default_factory=list)

    product_name: str = "Contoso Insights"
    max_request_bytes: int = Field(default=256 * 1024, ge=1024)
    max_ingest_bytes: int = Field(
        default=5 * 1024 * 1024,
        ge=1024,
    )
    key_fetch_timeout_seconds: float = Field(
        default=5.0,
        gt=0,
        le=60,
        validation_alias="NURTURE_KEY_FETCH_TIMEOUT",
    )
    shutdown_timeout_seconds: float = Field(default=20.0, gt=0, validation_alias="NURTURE_SHUTDOWN_TIMEOUT")
    # NPS surveys
    nps_resurvey_days: int = Field(default=90, ge=1)
    nps_sample_percent: float = Field(default=100.0, ge=0, le=100)
    nps_snooze_days: int = Field(default=7, ge=1)
    nps_edit_grace_hours: float = Field(default=24.0, ge=0)
    nps_expiry_days: int = Field(default=14, ge=1)
    nps_min_answers: int = Field(default=10, ge=1)
    review_url: str = ""
    referral_url: str = ""
    quiet_hours: str = "18-9"
    skip_weekends: bool = True

    # delivery
    delivery_workers: int = Field(default=1, ge=0, le=32)
    tenant_rate_per_second: float = Field(default=45.0, gt=0, le=50, validation_alias="NURTURE_TENANT_RATE")
    tenant_limit_per_second: int = Field(default=50, ge=1, le=50, validation_alias="NURTURE_TENANT_LIMIT")
    tenants_per_worker: int = Field(default=4, ge=1, le=1000)
    delivery_lease_seconds: float = Field(default=60.0, ge=1, le=3600, validation_alias="NURTURE_DELIVERY_LEASE")
    send_timeout_seconds: float = Field(default=20.0, gt=0, le=120, validation_alias="NURTURE_SEND_TIMEOUT")
    resend_unknown: bool = False
    open_chats: ChatOpening = ChatOpening.CREATE
    graph_url: str = "https://graph.microsoft.com/v1.0"
    login_url: str = "https://login.microsoftonline.com"

    # campaigns
    campaign_interval_minutes: float = Field(
        default=60.0,
        ge=0,
        le=24 * 60,
        validation_alias="NURTURE_CAMPAIGN_INTERVAL",
    )

    # retention
    usage_retention_days: int = Field(default=30, ge=1)
    comment_retention_days: int = Field(default=365, ge=1)
    activity_log_retention_days: int = Field(
        default=30,
        ge=1,
    )

    # the Teams app package (nurture package)
    teams_app_id: str = ""
    public_hostname: str = ""
    developer_name: str = "Contoso"
    website_url: str = ""
    privacy_url: str = ""
    terms_url: str = ""
    app_version: str = "1.0.0"

    log_level: str = "INFO"

    @field_validator("allowed_tenants", "service_url_hosts", "ingest_tokens", "csm_ids", mode="before")
    @classmethod
    def _csv(cls, value: Any) -> Any:
        return _split_csv(value)

    @field_validator("database_url")
    @classmethod
    def _async_driver(cls, value: str) -> str:
        """Nurture talks to SQLite through aiosqlite and to PostgreSQL through asyncpg: the plain URLs people copy
        from a portal (postgresql://, postgres://, sqlite:///) are given that driver; anything else is refused."""
        from sqlalchemy.engine import make_url
        from sqlalchemy.exc import ArgumentError

        try:
            url = make_url(value)
        except ArgumentError:
            raise ValueError(f"not a database URL; {_DATABASE_URL_FORMS}") from None
        backend, _, driver = url.drivername.partition("+")
        known = _ASYNC_DRIVERS.get(backend)
        if known is None or driver not in known[1]:
            raise ValueError(f"{url.drivername} is not a database Nurture runs on; {_DATABASE_URL_FORMS}")
        if url.drivername == known[0]:
            return value
        return str(url.set(drivername=known[0]).render_as_string(hide_password=False))

    @field_validator("service_url_hosts")
    @classmethod
    def _hosts_only(cls, value: list[str]) -> list[str]:
        """Host names (or `*.suffix`), not URLs: an entry nothing could match would refuse every activity."""
        for entry in value:
            try:
                host = canonical_host(entry.strip().removeprefix("*."))
            except UnsafeServiceUrl:
                hint = "write hosts only: smba.example.net, *.example.net"
                raise ValueError(f"{entry!r} is not a host name ({hint})") from None
            if entry.strip().startswith("*.") and "." not in host:  # *.net would let any .net host have the token
                raise ValueError(f"{entry!r} takes a whole top-level domain: name the domain (*.example.net)")
        return value

    @field_validator("allowed_tenants", "csm_ids")
    @classmethod
    def _stored_ids(cls, value: list[str]) -> list[str]:
        return [stored_id(v) for v in value]  # Entra ids are compared in one case (bot.engagement.ids)

    @field_validator("open_chats", mode="before")
    @classmethod
    def _open_chats_any_case(cls, value: Any) -> Any:
        return value.strip().lower() if isinstance(value, str) else value

    @field_validator("graph_url", "login_url")
    @classmethod
    def _https_endpoint(cls, value: str) -> str:
        endpoint = _endpoint(value)
        if endpoint.scheme != "https" and not is_loopback(endpoint.host):  # http: a stand-in on this machine (tests)
            raise ValueError("must be an https:// URL")
        return value.rstrip("/")

    @field_validator("app_type", mode="before")
    @classmethod
    def _app_type_any_case(cls, value: Any) -> Any:
        if isinstance(value, str):
            for member in AppType:
                if member.value.lower() == value.strip().lower():
                    return member
            if not value.strip():
                return AppType.MULTI_TENANT
        return value

    @field_validator("quiet_hours")
    @classmethod
    def _quiet_hours_range(cls, value: str) -> str:
        start, sep, end = value.partition("-")
        if not sep or not (start.strip().isdigit() and end.strip().isdigit()):
            raise ValueError("must look like 18-9 (local hours: no asks from 18:00 to 09:00)")
        if not (0 <= int(start) <= 23 and 0 <= int(end) <= 23):
            raise ValueError("hours must be from 0 to 23")
        return value

    @field_validator("review_url", "referral_url")
    @classmethod
    def _https_link(cls, value: str) -> str:
        if value and not value.startswith("https://"):
            raise ValueError("must be an https:// link")
        return value

    @field_validator("openid_metadata_url")
    @classmethod
    def _metadata_url_is_http(cls, value: str) -> str:
        if _endpoint(value).scheme not in ("https", "http"):
            raise ValueError("must be an http(s) URL")
        return value

    @model_validator(mode="after")
    def _rate_within_limit(self) -> Settings:
        if self.tenant_rate_per_second > self.tenant_limit_per_second:
            raise ValueError("NURTURE_TENANT_RATE must not be above NURTURE_TENANT_LIMIT (Teams' requests per second)")
        return self

    @model_validator(mode="after")
    def _timeout_inside_lease(self) -> Settings:
        if self.send_timeout_seconds >= self.delivery_lease_seconds:
            raise ValueError(
                "NURTURE_SEND_TIMEOUT must be shorter than NURTURE_DELIVERY_LEASE, or a slow send could be sent twice"
            )
        return self

    @model_validator(mode="after")
    def _refuse_unsafe_outside_dev(self) -> Settings:
        metadata = _endpoint(self.openid_metadata_url)
        if not self.dev_mode and metadata.scheme == "http" and not is_loopback(metadata.host):
            raise ValueError("NURTURE_OPENID_METADATA_URL must use https outside dev mode")
        return self

    def check_bot_identity(self) -> None:
        """Raise ConfigError (one line) when `serve` cannot run safely with this identity."""
        if self.dev_mode:
            return
        if not self.app_id:
            raise ConfigError(
                "MicrosoftAppId is not set: set the bot's app id, or NURTURE_DEV_MODE=1 for local testing"
            )
        if self.app_type is AppType.MULTI_TENANT and not self.app_password:
            raise ConfigError("MicrosoftAppPassword is required when MicrosoftAppType is MultiTenant")
        if self.app_type is AppType.SINGLE_TENANT and not (self.app_password and self.app_tenant_id):
            raise ConfigError("SingleTenant needs both MicrosoftAppPassword and MicrosoftAppTenantId")
        if self.app_type is AppType.USER_ASSIGNED_MSI and not self.app_tenant_id:
            raise ConfigError(
                "UserAssignedMSI needs MicrosoftAppTenantId (and MicrosoftAppId = the identity's client id)"
            )
        if self.open_chats is ChatOpening.INSTALL and not self.app_password:
            raise ConfigError(
                "NURTURE_OPEN_CHATS=install needs MicrosoftAppPassword (the app's secret, for Microsoft Graph tokens)"
            )
        if not self.allowed_tenants:
            log.warning("NURTURE_ALLOWED_TENANTS is empty: every tenant will be refused")
        if not self.service_url_hosts:
            log.warning("NURTURE_SERVICE_URL_HOSTS is empty: every activity will be refused (the bot may call no host)")


def load_settings(**overrides: Any) -> Settings:
    """Read the environment (and .env); turn pydantic's multi-line report into one ConfigError line."""
    from pydantic import ValidationError

    try:
        return Settings(**overrides)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(env_name(str(p)) for p in first["loc"]) or "settings"
        reason = first["msg"].removeprefix("Value error, ")  # pydantic's prefix for a validator's own words
        raise ConfigError(f"invalid configuration {where}: {reason}") from exc


def env_name(field: str) -> str:
    """The environment variable a settings field is read from (error messages name it, not the field)."""
    info = Settings.model_fields.get(field)
    if info is None:
        return field
    alias = info.validation_alias
    return alias if isinstance(alias, str) else f"{Settings.model_config.get('env_prefix', '')}{field}".upper()
