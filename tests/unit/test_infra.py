"""What can be checked of the deployment files without Docker or the Bicep compiler (neither runs here)."""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path

from bot.config import Settings, env_name

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = (ROOT / "infra" / "Dockerfile").read_text()
BICEP = (ROOT / "infra" / "main.bicep").read_text()


def _instructions(name: str) -> list[str]:
    return [line[len(name) + 1 :].strip() for line in DOCKERFILE.splitlines() if line.startswith(f"{name} ")]


def test_image_runs_as_a_non_root_user() -> None:
    users = _instructions("USER")
    assert users and users[-1].split(":")[0] not in ("root", "0")


def test_image_health_check_calls_healthz_and_serves_on_3978() -> None:
    [healthcheck] = [line for line in DOCKERFILE.splitlines() if line.startswith("HEALTHCHECK")]
    assert "--interval" in healthcheck
    assert "http://127.0.0.1:3978/healthz" in DOCKERFILE
    assert _instructions("EXPOSE") == ["3978"]
    assert json.loads(_instructions("CMD")[-1]) == ["nurture", "serve", "--host", "0.0.0.0", "--port", "3978"]


def test_image_copies_every_python_package_the_project_ships() -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    packages = {p.rstrip("*") for p in pyproject["tool"]["setuptools"]["packages"]["find"]["include"]}
    copied = {line.split()[0].rstrip("/") for line in _instructions("COPY") if not line.startswith("--from")}
    assert packages <= copied


EXPECTED_RESOURCES = {
    "Microsoft.BotService/botServices",
    "Microsoft.BotService/botServices/channels",
    "Microsoft.Web/serverfarms",
    "Microsoft.Web/sites",
    "Microsoft.DBforPostgreSQL/flexibleServers",
    "Microsoft.DBforPostgreSQL/flexibleServers/databases",
    "Microsoft.KeyVault/vaults",
    "Microsoft.KeyVault/vaults/secrets",
    "Microsoft.Insights/components",
    "Microsoft.ManagedIdentity/userAssignedIdentities",
    "Microsoft.Authorization/roleAssignments",
}


def test_bicep_declares_the_whole_deployment() -> None:
    declared = set(re.findall(r"^resource \w+ '([^@']+)@\d{4}-\d{2}-\d{2}(?:-preview)?'", BICEP, re.MULTILINE))
    assert EXPECTED_RESOURCES <= declared
    assert "channelName: 'MsTeamsChannel'" in BICEP
    assert "healthCheckPath: '/healthz'" in BICEP and "httpsOnly: true" in BICEP
    assert "enableRbacAuthorization: true" in BICEP


def test_bicep_secrets_are_secure_parameters_and_key_vault_references() -> None:
    for name in ("botAppPassword", "postgresAdminPassword"):
        assert re.search(rf"@secure\(\)\s*\nparam {name} string", BICEP), name
    assert "@Microsoft.KeyVault(SecretUri=${databaseUrl.properties.secretUri})" in BICEP
    outputs = [line for line in BICEP.splitlines() if line.startswith("output ")]
    assert outputs and not any(re.search("password|secret|connection", line, re.IGNORECASE) for line in outputs)


def test_bicep_app_settings_are_names_nurture_reads() -> None:
    settings_block = BICEP[BICEP.index("var identitySettings") : BICEP.index("resource bot ")]
    names = set(re.findall(r"name: '([A-Za-z_]+)', value:", settings_block))
    known = {env_name(field) for field in Settings.model_fields}
    platform = {"WEBSITES_PORT", "APPLICATIONINSIGHTS_CONNECTION_STRING"}
    assert names, "no app settings found"
    assert names - platform <= known, names - platform - known


def test_parameters_file_names_existing_parameters() -> None:
    parameters = json.loads((ROOT / "infra" / "main.parameters.json").read_text())["parameters"]
    declared = set(re.findall(r"^param (\w+) ", BICEP, re.MULTILINE))
    assert set(parameters) <= declared
    required = {name for name in declared if not re.search(rf"^param {name} \w+ =", BICEP, re.MULTILINE)}
    assert required <= set(parameters), required - set(parameters)
