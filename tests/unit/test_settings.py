"""Configuration: the contract names, defaults, refusals outside dev mode, and the three app types in botbuilder."""

from __future__ import annotations

import pytest
from botbuilder.integration.aiohttp import ConfigurationServiceClientCredentialFactory
from botframework.connector.auth import (
    ManagedIdentityServiceClientCredentialsFactory,
    PasswordServiceClientCredentialFactory,
)

from bot.config import AppType, ConfigError, Settings, load_settings
from bot.policies import service_url_policy, tenant_policy
from bot.teams.adapter import BotIdentity

CONTRACT_ENV = {
    "MicrosoftAppId": "11111111-2222-3333-4444-555555555555",
    "MicrosoftAppPassword": "secret",
    "MicrosoftAppType": "SingleTenant",
    "MicrosoftAppTenantId": "tenant-home",
    "NURTURE_DEV_MODE": "0",
    "NURTURE_DATABASE_URL": "postgresql+asyncpg://u@db/nurture",
    "NURTURE_ALLOWED_TENANTS": "t1, t2",
    "NURTURE_OPENID_METADATA_URL": "https://login.botframework.azure.us/v1/.well-known/openidconfiguration",
    "NURTURE_SERVICE_URL_HOSTS": "smba.infra.gov.teams.microsoft.us,*.example.org",
    "NURTURE_INGEST_TOKENS": "tok1,tok2",
    "NURTURE_CAMPAIGNS": "/etc/nurture/campaigns.yaml",
    "NURTURE_CSM_IDS": "csm-1",
}


def test_every_contract_variable_is_read(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in CONTRACT_ENV.items():
        monkeypatch.setenv(name, value)
    settings = Settings(_env_file=None)
    assert settings.app_id == CONTRACT_ENV["MicrosoftAppId"]
    assert settings.app_password == "secret"
    assert settings.app_type is AppType.SINGLE_TENANT
    assert settings.app_tenant_id == "tenant-home"
    assert settings.dev_mode is False
    assert settings.database_url == "postgresql+asyncpg://u@db/nurture"
    assert settings.allowed_tenants == ["t1", "t2"]
    assert settings.openid_metadata_url.startswith("https://login.botframework.azure.us")
    assert settings.service_url_hosts == ["smba.infra.gov.teams.microsoft.us", "*.example.org"]
    assert settings.ingest_tokens == ["tok1", "tok2"]
    assert settings.campaigns == "/etc/nurture/campaigns.yaml"
    assert settings.csm_ids == ["csm-1"]


def test_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in CONTRACT_ENV:
        monkeypatch.delenv(name, raising=False)
    settings = Settings(_env_file=None)
    assert settings.database_url == "sqlite+aiosqlite:///nurture.db"
    assert settings.dev_mode is False and settings.allowed_tenants == [] and settings.ingest_tokens == []
    assert settings.service_url_hosts == ["smba.trafficmanager.net"]
    assert settings.openid_metadata_url == "https://login.botframework.com/v1/.well-known/openidconfiguration"
    assert tenant_policy(settings).refusal("any-tenant") is not None  # empty list: refuse all outside dev mode


def test_dot_env_file_is_read(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NURTURE_DATABASE_URL", raising=False)
    env = tmp_path / ".env"
    env.write_text("NURTURE_DATABASE_URL=sqlite+aiosqlite:///from-dotenv.db\nMicrosoftAppId=abc\n")
    settings = Settings(_env_file=str(env))
    assert settings.database_url.endswith("from-dotenv.db") and settings.app_id == "abc"


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({}, "MicrosoftAppId is not set"),
        ({"app_id": "x"}, "MicrosoftAppPassword is required"),
        ({"app_id": "x", "app_type": "SingleTenant", "app_password": "p"}, "SingleTenant needs"),
        ({"app_id": "x", "app_type": "UserAssignedMSI"}, "UserAssignedMSI needs"),
    ],
)
def test_identity_refused_outside_dev_mode(values: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        Settings(_env_file=None, **values).check_bot_identity()


def test_dev_mode_needs_no_identity() -> None:
    Settings(_env_file=None, dev_mode=True).check_bot_identity()


def test_invalid_values_become_one_line_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MicrosoftAppType", "Nonsense")
    with pytest.raises(ConfigError) as error:
        load_settings(_env_file=None)
    assert "\n" not in str(error.value) and "MicrosoftAppType" in str(error.value)


@pytest.mark.parametrize(
    ("given", "used"),
    [
        (
            "postgresql://nurture:p%40ss@db.example.com:5432/nurture",
            "postgresql+asyncpg://nurture:p%40ss@db.example.com:5432/nurture",
        ),
        ("postgres://u@db/n", "postgresql+asyncpg://u@db/n"),
        ("postgresql+psycopg2://u@db/n", "postgresql+asyncpg://u@db/n"),
        ("sqlite:///nurture.db", "sqlite+aiosqlite:///nurture.db"),
        ("sqlite+aiosqlite:////var/lib/nurture.db", "sqlite+aiosqlite:////var/lib/nurture.db"),
    ],
)
def test_a_plain_database_url_gets_the_async_driver(given: str, used: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NURTURE_DATABASE_URL", given)
    assert load_settings(_env_file=None).database_url == used


@pytest.mark.parametrize(
    ("given", "said"),
    [
        ("mysql://u@db/n", "mysql is not a database Nurture runs on"),
        ("postgresql+psycopg://u@db/n", "postgresql+psycopg is not a database Nurture runs on"),
        ("not a url", "not a database URL"),
    ],
)
def test_a_database_nurture_cannot_use_is_one_line(given: str, said: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NURTURE_DATABASE_URL", given)
    with pytest.raises(ConfigError) as error:
        load_settings(_env_file=None)
    message = str(error.value)
    assert "\n" not in message and "NURTURE_DATABASE_URL" in message and said in message
    assert "postgresql+asyncpg://" in message  # and what to write instead


def test_plain_http_key_metadata_refused_outside_dev_mode() -> None:
    with pytest.raises(ConfigError, match="https"):
        load_settings(_env_file=None, openid_metadata_url="http://keys.example.com/openid")


@pytest.mark.parametrize(
    ("app_type", "extra", "inner"),
    [
        ("MultiTenant", {}, PasswordServiceClientCredentialFactory),
        ("SingleTenant", {"app_tenant_id": "home"}, PasswordServiceClientCredentialFactory),
        ("UserAssignedMSI", {"app_tenant_id": "home"}, ManagedIdentityServiceClientCredentialsFactory),
    ],
)
async def test_app_types_reach_botbuilder(app_type: str, extra: dict[str, str], inner: type) -> None:
    settings = Settings(_env_file=None, app_id="app", app_password="pw", app_type=app_type, **extra)
    settings.check_bot_identity()
    factory = ConfigurationServiceClientCredentialFactory(BotIdentity.from_settings(settings))
    assert isinstance(factory._inner, inner)
    if app_type == "SingleTenant":
        assert factory._inner.tenant_id == "home"
    if app_type != "UserAssignedMSI":
        assert await factory.is_valid_app_id("app") and not await factory.is_authentication_disabled()


def test_entra_ids_in_settings_are_kept_in_lower_case(monkeypatch: pytest.MonkeyPatch) -> None:
    """Ids pasted in upper case (NURTURE_CSM_IDS, NURTURE_ALLOWED_TENANTS) match the lower-case ids Teams sends."""
    monkeypatch.setenv("NURTURE_CSM_IDS", " DDDDDDDD-0000-0000-0000-00000000C5A1 ,eeee")
    monkeypatch.setenv("NURTURE_ALLOWED_TENANTS", "11111111-AAAA-1111-1111-111111111111")
    settings = load_settings(_env_file=None)
    assert settings.csm_ids == ["dddddddd-0000-0000-0000-00000000c5a1", "eeee"]
    assert settings.allowed_tenants == ["11111111-aaaa-1111-1111-111111111111"]
    assert tenant_policy(settings).refusal("11111111-aaaa-1111-1111-111111111111") is None


@pytest.mark.parametrize(
    ("entry", "reason"),
    [
        ("https://smba.trafficmanager.net/", "is not a host name"),
        ("smba.trafficmanager.net/amer", "is not a host name"),
        ("a b", "is not a host name"),
        ("*.", "is not a host name"),
        ("*.net", "takes a whole top-level domain"),
    ],
)
def test_service_url_hosts_are_host_names(entry: str, reason: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A URL or a path where a host belongs would match nothing, so every activity would be refused; a wildcard over
    a whole top-level domain would let any host there have the token: both stop start-up, with the reason."""
    monkeypatch.setenv("NURTURE_SERVICE_URL_HOSTS", entry)
    with pytest.raises(ConfigError, match=f"^invalid configuration NURTURE_SERVICE_URL_HOSTS: '.*' {reason}"):
        load_settings(_env_file=None)
    monkeypatch.delenv("NURTURE_SERVICE_URL_HOSTS")
    settings = load_settings(_env_file=None, service_url_hosts="smba.trafficmanager.net, *.example.net,127.0.0.1")
    assert service_url_policy(settings).refusal("https://a.example.net/amer/") is None


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("NURTURE_GRAPH_URL", "http://localhost.evil.example/v1.0"),
        ("NURTURE_LOGIN_URL", "http://127.0.0.1@evil.example"),
        ("NURTURE_OPENID_METADATA_URL", "http://localhost:80@evil.example/openid"),
        ("NURTURE_OPENID_METADATA_URL", "http://evil.example/openid"),
        ("NURTURE_GRAPH_URL", "https://graph.microsoft.com\\@evil.example/v1.0"),
    ],
)
def test_endpoints_are_read_as_strictly_as_service_urls(name: str, value: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A prefix check let http://localhost.evil.example pass as this machine; the host is read as clients read it."""
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError, match=name):
        load_settings(_env_file=None, app_id="x", app_password="y")


def test_endpoints_on_this_machine_may_use_http() -> None:
    settings = load_settings(
        _env_file=None,
        graph_url="http://127.0.0.1:8080/v1.0",
        login_url="http://localhost:8081",
        openid_metadata_url="http://[::1]:8082/openid",
    )
    assert (settings.graph_url, settings.login_url) == ("http://127.0.0.1:8080/v1.0", "http://localhost:8081")


def test_only_nurture_names_and_the_bot_identity_are_read(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every setting comes from NURTURE_<NAME> (or botbuilder's MicrosoftApp* names); another program's variable
    with a field's bare name, such as DATABASE_URL, is not Nurture's."""
    monkeypatch.setenv("DATABASE_URL", "postgresql+asyncpg://someone-else/db")
    monkeypatch.setenv("DEV_MODE", "1")
    monkeypatch.setenv("NURTURE_TENANT_RATE", "30")
    monkeypatch.setenv("NURTURE_PRODUCT_NAME", "Fabrikam Flow")
    monkeypatch.setenv("MicrosoftAppId", "00000000-0000-0000-0000-00000000b0d1")
    settings = load_settings(_env_file=None)
    assert settings.database_url == "sqlite+aiosqlite:///nurture.db"
    assert settings.dev_mode is False
    assert settings.tenant_rate_per_second == 30
    assert settings.product_name == "Fabrikam Flow"
    assert settings.app_id == "00000000-0000-0000-0000-00000000b0d1"
