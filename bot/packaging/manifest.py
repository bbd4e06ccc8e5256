"""Fill the manifest template, validate it offline against Microsoft's schema and Teams' other rules, write the zip.

Placeholders (`{{BOT_ID}}` …) are replaced inside parsed JSON strings, never in the JSON text, so a value with a quote
cannot break the manifest. Microsoft's draft-04 schemas come from npm `@microsoft/app-manifest` (package.json).
"""

from __future__ import annotations

import io
import json
import re
import uuid
import zipfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jsonschema import Draft4Validator
from PIL import Image

from bot.packaging.icons import rgba_pixels

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE_DIR = ROOT / "appPackage"
SCHEMA_ROOT = ROOT / "node_modules" / "@microsoft" / "app-manifest" / "build" / "json-schemas" / "teams"
PLACEHOLDER = re.compile(r"\{\{([A-Z_]+)\}\}")
GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
SEMVER = re.compile(r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)$")
TEAMS_APP_NAMESPACE = uuid.UUID("0b1e4c59-6d39-4f0e-8a6f-2f3c3d9f4e21")

# Lengths Teams enforces beyond (or tighter than) the schema (Teams Store validation guidelines).
TEXT_LIMITS = {
    ("name", "short"): 30,
    ("name", "full"): 100,
    ("description", "short"): 80,
    ("description", "full"): 4000,
}


@dataclass(frozen=True)
class Problem:
    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.field}: {self.message}"


@dataclass(frozen=True)
class PackageValues:
    """What the placeholders become. Built from Settings by the CLI."""

    bot_id: str
    teams_app_id: str
    bot_domain: str
    product_name: str
    developer_name: str
    website_url: str
    privacy_url: str
    terms_url: str
    app_version: str

    def mapping(self) -> dict[str, str]:
        return {
            "BOT_ID": self.bot_id,
            "TEAMS_APP_ID": self.teams_app_id,
            "BOT_DOMAIN": self.bot_domain,
            "PRODUCT_NAME": self.product_name,
            "DEVELOPER_NAME": self.developer_name,
            "WEBSITE_URL": self.website_url,
            "PRIVACY_URL": self.privacy_url,
            "TERMS_URL": self.terms_url,
            "APP_VERSION": self.app_version,
        }


def default_teams_app_id(bot_id: str) -> str:
    """A stable Teams app id per bot, so every package of one deployment upgrades the same app."""
    return str(uuid.uuid5(TEAMS_APP_NAMESPACE, bot_id or "nurture"))


def fill(node: Any, values: Mapping[str, str]) -> Any:
    if isinstance(node, str):
        return PLACEHOLDER.sub(lambda m: values.get(m.group(1), m.group(0)), node)
    if isinstance(node, list):
        return [fill(item, values) for item in node]
    if isinstance(node, dict):
        return {key: fill(value, values) for key, value in node.items()}
    return node


def _strings(node: Any, path: str = "") -> Iterator[tuple[str, str]]:
    if isinstance(node, str):
        yield path, node
    elif isinstance(node, list):
        for i, item in enumerate(node):
            yield from _strings(item, f"{path}[{i}]")
    elif isinstance(node, dict):
        for key, value in node.items():
            yield from _strings(value, f"{path}.{key}" if path else key)


def _path(error_path: Any) -> str:
    text = ""
    for part in error_path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "(manifest)"


def schema_errors(document: Mapping[str, Any], schema_file: Path) -> list[Problem]:
    if not schema_file.exists():
        return [Problem("schema", f"{schema_file} is missing: run `make node-deps` (npm ci) in the repository")]
    schema = json.loads(schema_file.read_text(encoding="utf-8"))
    validator = Draft4Validator(schema)
    return [Problem(_path(e.absolute_path), e.message) for e in sorted(validator.iter_errors(document), key=str)]


def icon_problems(color: bytes, outline: bytes) -> list[Problem]:
    problems = []
    with Image.open(io.BytesIO(color)) as image:
        if image.size != (192, 192):
            problems.append(Problem("icons.color", f"must be 192×192 pixels, is {image.size[0]}×{image.size[1]}"))
    with Image.open(io.BytesIO(outline)) as image:
        if image.size != (32, 32):
            problems.append(Problem("icons.outline", f"must be 32×32 pixels, is {image.size[0]}×{image.size[1]}"))
        pixels = rgba_pixels(image)
        if any(a > 0 and (r, g, b) != (255, 255, 255) for r, g, b, a in pixels):
            problems.append(Problem("icons.outline", "every visible pixel must be pure white"))
        if image.mode != "RGBA" or all(a == 255 for *_, a in pixels):
            problems.append(Problem("icons.outline", "the background must be transparent"))
    return problems


@dataclass(frozen=True)
class AppPackage:
    manifest: dict[str, Any]
    files: dict[str, bytes]  # name in the zip → content (manifest.json included)


def build(values: PackageValues, template_dir: Path = TEMPLATE_DIR) -> AppPackage:
    mapping = values.mapping()
    manifest = fill(json.loads((template_dir / "manifest.json").read_text(encoding="utf-8")), mapping)
    files = {"manifest.json": json.dumps(manifest, indent=2, ensure_ascii=False).encode("utf-8")}
    for name in (manifest.get("icons") or {}).values():
        files[name] = (template_dir / name).read_bytes()
    for language in (manifest.get("localizationInfo") or {}).get("additionalLanguages", []):
        localized = fill(json.loads((template_dir / language["file"]).read_text(encoding="utf-8")), mapping)
        files[language["file"]] = json.dumps(localized, indent=2, ensure_ascii=False).encode("utf-8")
    return AppPackage(manifest, files)


def validate(package: AppPackage, app_id: str, schema_root: Path = SCHEMA_ROOT) -> list[Problem]:
    manifest = package.manifest
    version = str(manifest.get("manifestVersion", ""))
    problems = schema_errors(manifest, schema_root / f"v{version}" / "MicrosoftTeams.schema.json")
    for path, text in _strings(manifest):
        for name in PLACEHOLDER.findall(text):
            problems.append(Problem(path, f"placeholder {{{{{name}}}}} was not filled"))
    if not SEMVER.match(str(manifest.get("version", ""))):
        problems.append(Problem("version", "must be MAJOR.MINOR.PATCH, e.g. 1.0.0 (NURTURE_APP_VERSION)"))
    if not GUID.match(str(manifest.get("id", ""))):
        problems.append(Problem("id", "must be a GUID"))
    bots = manifest.get("bots") or []
    if not bots or bots[0].get("botId") != app_id:
        problems.append(Problem("bots[0].botId", f"must equal MicrosoftAppId ({app_id or 'not set'})"))
    for i, domain in enumerate(manifest.get("validDomains") or []):
        if not domain or "://" in domain or "/" in domain:
            problems.append(
                Problem(f"validDomains[{i}]", "must be the bot's public host name (NURTURE_PUBLIC_HOSTNAME)")
            )
    for (section, key), limit in TEXT_LIMITS.items():
        text = str((manifest.get(section) or {}).get(key, ""))
        if len(text) > limit:
            problems.append(Problem(f"{section}.{key}", f"{len(text)} characters, at most {limit}"))
    for language in (manifest.get("localizationInfo") or {}).get("additionalLanguages", []):
        localized = json.loads(package.files[language["file"]])
        schema = schema_root / f"v{version}" / "MicrosoftTeams.Localization.schema.json"
        problems += [Problem(f"{language['file']}: {p.field}", p.message) for p in schema_errors(localized, schema)]
        for key in ("name.short", "description.short"):
            limit = TEXT_LIMITS[tuple(key.split("."))]  # type: ignore[index]
            if len(str(localized.get(key, ""))) > limit:
                problems.append(Problem(f"{language['file']}: {key}", f"more than {limit} characters"))
    icons = manifest.get("icons") or {}
    color, outline = package.files.get(str(icons.get("color"))), package.files.get(str(icons.get("outline")))
    if color is None or outline is None:
        problems.append(Problem("icons", "color and outline icons must both be in the package"))
    else:
        problems += icon_problems(color, outline)
    return problems


def write_zip(package: AppPackage, out: Path) -> Path:
    out.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, content in sorted(package.files.items()):
            archive.writestr(name, content)  # flat: Teams expects the files at the zip's root
    return out
