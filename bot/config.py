"""Typed configuration read from the environment and an optional `.env` file.

Names are the contract of DESIGN.md §2: botbuilder's own `MicrosoftApp*` variables plus `NURTURE_*`.
Nothing here is read at import time; `load_settings()` is called by the CLI and tests build `Settings(...)` directly.
"""

from __future__ import annotations

import logging
from datetime import time
from enum import StrEnum
from typing import Annotated, Any

from pydantic import AliasChoices, Field, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from bot.engagement.asking import AskPolicy
from bot.engagement.ids import stored_id
from bot.engagement.reach import ChatOpening
from bot.security.service_urls import (
    Endpoint,
    ServiceUrlPolicy,
    UnsafeServiceUrl,
    canonical_host,
    is_loopback,
    plain_endpoint,
)
from bot.security.tenants import TenantPolicy

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


class Settings(BaseSettings):
    """Every setting Nurture reads. Field aliases are the environment variable names."""

    model_config = SettingsConfigDict(
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        populate_by_name=True,
        case_sensitive=False,
    )

    app_id: str = Field(default="", validation_alias=AliasChoices("MicrosoftAppId", "app_id"))
    app_password: str = Field(default="", validation_alias=AliasChoices("MicrosoftAppPassword", "app_password"))
    app_type: AppType = Field(
        default=AppType.MULTI_TENANT, validation_alias=AliasChoices("MicrosoftAppType", "app_type")
    )
    app_tenant_id: str = Field(default="", validation_alias=AliasChoices("MicrosoftAppTenantId", "app_tenant_id"))

    dev_mode: bool = Field(default=False, validation_alias=AliasChoices("NURTURE_DEV_MODE", "dev_mode"))
    database_url: str = Field(
        default="sqlite+aiosqlite:///nurture.db",
        validation_alias=AliasChoices("NURTURE_DATABASE_URL", "database_url"),
    )
    allowed_tenants: CsvList = Field(
        default_factory=list, validation_alias=AliasChoices("NURTURE_ALLOWED_TENANTS", "allowed_tenants")
    )
    openid_metadata_url: str = Field(
        default=PUBLIC_CLOUD_OPENID_METADATA_URL,
        validation_alias=AliasChoices("NURTURE_OPENID_METADATA_URL", "openid_metadata_url"),
    )
    service_url_hosts: CsvList = Field(
        default_factory=lambda: list(DEFAULT_SERVICE_URL_HOSTS),
        validation_alias=AliasChoices("NURTURE_SERVICE_URL_HOSTS", "service_url_hosts"),
    )
    ingest_tokens: CsvList = Field(
        default_factory=list, validation_alias=AliasChoices("NURTURE_INGEST_TOKENS", "ingest_tokens")
    )
    campaigns: str = Field(default="", validation_alias=AliasChoices("NURTURE_CAMPAIGNS", "campaigns"))
    csm_ids: CsvList = Field(default_factory=list, validation_alias=AliasChoices("NURTURE_CSM_IDS", "csm_ids"))

    product_name: str = Field(
        default="Contoso Insights", validation_alias=AliasChoices("NURTURE_PRODUCT_NAME", "product_name")
    )
    max_request_bytes: int = Field(
        default=256 * 1024, ge=1024, validation_alias=AliasChoices("NURTURE_MAX_REQUEST_BYTES", "max_request_bytes")
    )
    max_ingest_bytes: int = Field(
        default=5 * 1024 * 1024,
        ge=1024,
        validation_alias=AliasChoices("NURTURE_MAX_INGEST_BYTES", "max_ingest_bytes"),
    )
    key_fetch_timeout_seconds: float = Field(
        default=5.0,
        gt=0,
        le=60,
        validation_alias=AliasChoices("NURTURE_KEY_FETCH_TIMEOUT", "key_fetch_timeout_seconds"),
    )
    shutdown_timeout_seconds: float = Field(
        default=20.0, gt=0, validation_alias=AliasChoices("NURTURE_SHUTDOWN_TIMEOUT", "shutdown_timeout_seconds")
    )
    # NPS surveys
    nps_resurvey_days: int = Field(
        default=90, ge=1, validation_alias=AliasChoices("NURTURE_NPS_RESURVEY_DAYS", "nps_resurvey_days")
    )
    nps_sample_percent: float = Field(
        default=100.0, ge=0, le=100, validation_alias=AliasChoices("NURTURE_NPS_SAMPLE_PERCENT", "nps_sample_percent")
    )
    nps_snooze_days: int = Field(
        default=7, ge=1, validation_alias=AliasChoices("NURTURE_NPS_SNOOZE_DAYS", "nps_snooze_days")
    )
    nps_edit_grace_hours: float = Field(
        default=24.0, ge=0, validation_alias=AliasChoices("NURTURE_NPS_EDIT_GRACE_HOURS", "nps_edit_grace_hours")
    )
    nps_expiry_days: int = Field(
        default=14, ge=1, validation_alias=AliasChoices("NURTURE_NPS_EXPIRY_DAYS", "nps_expiry_days")
    )
    nps_min_answers: int = Field(
        default=10, ge=1, validation_alias=AliasChoices("NURTURE_NPS_MIN_ANSWERS", "nps_min_answers")
    )
    review_url: str = Field(default="", validation_alias=AliasChoices("NURTURE_REVIEW_URL", "review_url"))
    referral_url: str = Field(default="", validation_alias=AliasChoices("NURTURE_REFERRAL_URL", "referral_url"))
    quiet_hours: str = Field(default="18-9", validation_alias=AliasChoices("NURTURE_QUIET_HOURS", "quiet_hours"))
    skip_weekends: bool = Field(default=True, validation_alias=AliasChoices("NURTURE_SKIP_WEEKENDS", "skip_weekends"))

    # delivery
    delivery_workers: int = Field(
        default=1, ge=0, le=32, validation_alias=AliasChoices("NURTURE_DELIVERY_WORKERS", "delivery_workers")
    )
    tenant_rate_per_second: float = Field(
        default=45.0, gt=0, le=50, validation_alias=AliasChoices("NURTURE_TENANT_RATE", "tenant_rate_per_second")
    )
    tenant_limit_per_second: int = Field(
        default=50, ge=1, le=50, validation_alias=AliasChoices("NURTURE_TENANT_LIMIT", "tenant_limit_per_second")
    )
    tenants_per_worker: int = Field(
        default=4, ge=1, le=1000, validation_alias=AliasChoices("NURTURE_TENANTS_PER_WORKER", "tenants_per_worker")
    )
    delivery_lease_seconds: float = Field(
        default=60.0, ge=1, le=3600, validation_alias=AliasChoices("NURTURE_DELIVERY_LEASE", "delivery_lease_seconds")
    )
    send_timeout_seconds: float = Field(
        default=20.0, gt=0, le=120, validation_alias=AliasChoices("NURTURE_SEND_TIMEOUT", "send_timeout_seconds")
    )
    resend_unknown: bool = Field(
        default=False, validation_alias=AliasChoices("NURTURE_RESEND_UNKNOWN", "resend_unknown")
    )
    open_chats: ChatOpening = Field(
        default=ChatOpening.CREATE, validation_alias=AliasChoices("NURTURE_OPEN_CHATS", "open_chats")
    )
    graph_url: str = Field(
        default="https://graph.microsoft.com/v1.0", validation_alias=AliasChoices("NURTURE_GRAPH_URL", "graph_url")
    )
    login_url: str = Field(
        default="https://login.microsoftonline.com", validation_alias=AliasChoices("NURTURE_LOGIN_URL", "login_url")
    )

    # campaigns
    campaign_interval_minutes: float = Field(
        default=60.0,
        ge=0,
        le=24 * 60,
        validation_alias=AliasChoices("NURTURE_CAMPAIGN_INTERVAL", "campaign_interval_minutes"),
    )

    # retention
    usage_retention_days: int = Field(
        default=30, ge=1, validation_alias=AliasChoices("NURTURE_USAGE_RETENTION_DAYS", "usage_retention_days")
    )
    comment_retention_days: int = Field(
        default=365, ge=1, validation_alias=AliasChoices("NURTURE_COMMENT_RETENTION_DAYS", "comment_retention_days")
    )
    activity_log_retention_days: int = Field(
        default=30,
        ge=1,
        validation_alias=AliasChoices("NURTURE_ACTIVITY_LOG_RETENTION_DAYS", "activity_log_retention_days"),
    )

    # the Teams app package (nurture package)
    teams_app_id: str = Field(default="", validation_alias=AliasChoices("NURTURE_TEAMS_APP_ID", "teams_app_id"))
    public_hostname: str = Field(
        default="", validation_alias=AliasChoices("NURTURE_PUBLIC_HOSTNAME", "public_hostname")
    )
    developer_name: str = Field(
        default="Contoso", validation_alias=AliasChoices("NURTURE_DEVELOPER_NAME", "developer_name")
    )
    website_url: str = Field(default="", validation_alias=AliasChoices("NURTURE_WEBSITE_URL", "website_url"))
    privacy_url: str = Field(default="", validation_alias=AliasChoices("NURTURE_PRIVACY_URL", "privacy_url"))
    terms_url: str = Field(default="", validation_alias=AliasChoices("NURTURE_TERMS_URL", "terms_url"))
    app_version: str = Field(default="1.0.0", validation_alias=AliasChoices("NURTURE_APP_VERSION", "app_version"))

    log_level: str = Field(default="INFO", validation_alias=AliasChoices("NURTURE_LOG_LEVEL", "log_level"))

    @field_validator("allowed_tenants", "service_url_hosts", "ingest_tokens", "csm_ids", mode="before")
    @classmethod
    def _csv(cls, value: Any) -> Any:
        return _split_csv(value)

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

    # -- derived policies -------------------------------------------------------------------------

    @property
    def tenant_policy(self) -> TenantPolicy:
        return TenantPolicy.from_setting(self.allowed_tenants, dev_mode=self.dev_mode)

    @property
    def service_url_policy(self) -> ServiceUrlPolicy:
        return ServiceUrlPolicy.from_setting(self.service_url_hosts, dev_mode=self.dev_mode)

    @property
    def ask_policy(self) -> AskPolicy:
        start, _, end = self.quiet_hours.partition("-")
        return AskPolicy(
            resurvey_days=self.nps_resurvey_days,
            sample_percent=self.nps_sample_percent,
            snooze_days=self.nps_snooze_days,
            quiet_start=time(int(start)),
            quiet_end=time(int(end)),
            skip_weekends=self.skip_weekends,
        )

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
        where = ".".join(str(p) for p in first["loc"]) or "settings"
        reason = first["msg"].removeprefix("Value error, ")  # pydantic's prefix for a validator's own words
        raise ConfigError(f"invalid configuration {where}: {reason}") from exc
