"""The Teams app package: icons' pixels, the manifest against Microsoft's own schema, Teams' extra rules, the zip."""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import sys
import zipfile
from dataclasses import replace
from pathlib import Path

import pytest
from PIL import Image

from bot.packaging.icons import ACCENT, color_icon, outline_icon, rgba_pixels
from bot.packaging.manifest import TEMPLATE_DIR, PackageValues, build, default_teams_app_id, validate, write_zip
from tests.support.browser import require_manifest_schemas

BOT_ID = "7c1f5b3e-0d2a-4c8e-9f6b-2a1d3e4f5a6b"
VALUES = PackageValues(
    bot_id=BOT_ID,
    teams_app_id=default_teams_app_id(BOT_ID),
    bot_domain="nurture.contoso.com",
    product_name='Contoso "Insights"',
    developer_name="Contoso Ltd",
    website_url="https://contoso.com",
    privacy_url="https://contoso.com/privacy",
    terms_url="https://contoso.com/terms",
    app_version="1.2.3",
)


@pytest.fixture(autouse=True)
def _schemas() -> None:
    require_manifest_schemas()


def test_committed_icons_are_the_generated_ones() -> None:
    for name, image in (("color.png", color_icon()), ("outline.png", outline_icon())):
        with Image.open(TEMPLATE_DIR / name) as committed:
            assert rgba_pixels(committed) == rgba_pixels(image), f"regenerate {name}: python -m bot.packaging"


def test_color_icon_pixels() -> None:
    image = color_icon()
    assert image.size == (192, 192)
    pixels = image.load()
    assert pixels[0, 0][:3] == ACCENT and pixels[191, 191][:3] == ACCENT  # solid background, full bleed
    symbol = [(x, y) for x in range(192) for y in range(192) if pixels[x, y][:3] != ACCENT]
    xs, ys = [x for x, _ in symbol], [y for _, y in symbol]
    assert min(xs) >= 48 and max(xs) < 144 and min(ys) >= 48 and max(ys) < 144  # symbol inside the central 96×96
    assert len(symbol) > 96 * 96 * 0.2  # and it is there


def test_outline_icon_is_pure_white_on_transparent() -> None:
    image = outline_icon()
    assert image.size == (32, 32) and image.mode == "RGBA"
    pixels = rgba_pixels(image)
    assert all((r, g, b) == (255, 255, 255) for r, g, b, a in pixels if a > 0)
    assert sum(1 for *_, a in pixels if a == 0) > 32 * 32 * 0.3  # fully transparent background
    assert any(a == 255 for *_, a in pixels)  # a visible shape
    assert image.getpixel((0, 0))[3] == 0 and image.getpixel((31, 31))[3] == 0


def test_filled_manifest_is_valid() -> None:
    package = build(VALUES)
    assert validate(package, BOT_ID) == []
    manifest = package.manifest
    assert manifest["name"]["full"] == 'Contoso "Insights" tips and feedback'  # a quote in a value stays data
    assert manifest["bots"][0]["botId"] == BOT_ID and manifest["webApplicationInfo"]["id"] == BOT_ID
    assert set(manifest["bots"][0]["scopes"]) == {"personal", "team", "groupChat"}
    assert manifest["validDomains"] == ["nurture.contoso.com"]
    assert {lang["languageTag"] for lang in manifest["localizationInfo"]["additionalLanguages"]} == {
        "de",
        "fr",
        "es",
        "ja",
    }


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"bot_id": "not-a-guid"}, "bots[0].botId"),
        ({"teams_app_id": "app-1"}, "id"),
        ({"privacy_url": "ftp://contoso.com/privacy"}, "developer.privacyUrl"),
        ({"terms_url": ""}, "developer.termsOfUseUrl"),
        ({"product_name": "A product name that is far too long for Teams"}, "name.short"),
        ({"bot_domain": ""}, "validDomains[0]"),
        ({"bot_domain": "https://nurture.contoso.com"}, "validDomains[0]"),
        ({"app_version": "one"}, "version"),
    ],
)
def test_problems_name_the_field(change: dict[str, str], field: str) -> None:
    values = replace(VALUES, **change)
    problems = validate(build(values), values.bot_id if "bot_id" not in change else BOT_ID)
    assert field in {p.field for p in problems}, [str(p) for p in problems]


def test_bot_id_must_match_microsoft_app_id() -> None:
    problems = validate(build(VALUES), "11111111-2222-3333-4444-555555555555")
    assert [p.field for p in problems] == ["bots[0].botId"]


def test_bad_icons_are_refused(tmp_path: Path) -> None:
    shutil.copytree(TEMPLATE_DIR, tmp_path / "appPackage")
    Image.new("RGBA", (32, 32), (255, 0, 0, 255)).save(tmp_path / "appPackage" / "outline.png")
    Image.new("RGB", (100, 100), ACCENT).save(tmp_path / "appPackage" / "color.png")
    problems = {str(p) for p in validate(build(VALUES, tmp_path / "appPackage"), BOT_ID)}
    assert "icons.color: must be 192×192 pixels, is 100×100" in problems
    assert "icons.outline: every visible pixel must be pure white" in problems
    assert "icons.outline: the background must be transparent" in problems


def test_unfilled_placeholder_is_refused(tmp_path: Path) -> None:
    shutil.copytree(TEMPLATE_DIR, tmp_path / "appPackage")
    manifest_file = tmp_path / "appPackage" / "manifest.json"
    manifest = json.loads(manifest_file.read_text())
    manifest["developer"]["mpnId"] = "{{MPN_ID}}"
    manifest_file.write_text(json.dumps(manifest))
    problems = {str(p) for p in validate(build(VALUES, tmp_path / "appPackage"), BOT_ID)}
    assert "developer.mpnId: placeholder {{MPN_ID}} was not filled" in problems


def test_missing_field_is_refused(tmp_path: Path) -> None:
    shutil.copytree(TEMPLATE_DIR, tmp_path / "appPackage")
    manifest_file = tmp_path / "appPackage" / "manifest.json"
    manifest = json.loads(manifest_file.read_text())
    del manifest["developer"]
    manifest_file.write_text(json.dumps(manifest))
    problems = [str(p) for p in validate(build(VALUES, tmp_path / "appPackage"), BOT_ID)]
    assert "(manifest): 'developer' is a required property" in problems


def test_200_character_short_name_is_refused() -> None:
    problems = {str(p) for p in validate(build(replace(VALUES, product_name="x" * 200)), BOT_ID)}
    assert "name.short: 205 characters, at most 30" in problems


def test_localization_file_checked_against_its_schema(tmp_path: Path) -> None:
    shutil.copytree(TEMPLATE_DIR, tmp_path / "appPackage")
    de_file = tmp_path / "appPackage" / "de.json"
    data = json.loads(de_file.read_text(encoding="utf-8"))
    data["bots[0].unknownKey"] = "x"
    del data["description.full"]
    de_file.write_text(json.dumps(data), encoding="utf-8")
    fields = {p.field for p in validate(build(VALUES, tmp_path / "appPackage"), BOT_ID)}
    assert any(f.startswith("de.json") for f in fields), fields


def test_zip_has_the_files_at_its_root(tmp_path: Path) -> None:
    out = write_zip(build(VALUES), tmp_path / "app.zip")
    with zipfile.ZipFile(out) as archive:
        names = set(archive.namelist())
        assert names == {"manifest.json", "color.png", "outline.png", "de.json", "fr.json", "es.json", "ja.json"}
        manifest = json.loads(archive.read("manifest.json"))
        with Image.open(io.BytesIO(archive.read("color.png"))) as color:
            assert color.size == (192, 192)
    assert manifest["id"] == VALUES.teams_app_id


def test_nurture_package_command(tmp_path: Path) -> None:
    env = {
        "PATH": "/usr/bin:/bin",
        "MicrosoftAppId": BOT_ID,
        "NURTURE_PUBLIC_HOSTNAME": "nurture.contoso.com",
        "NURTURE_WEBSITE_URL": "https://contoso.com",
        "NURTURE_PRIVACY_URL": "https://contoso.com/privacy",
        "NURTURE_TERMS_URL": "https://contoso.com/terms",
    }
    ok = subprocess.run(
        [sys.executable, "-m", "bot", "package", "--out", str(tmp_path / "app.zip")],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert ok.returncode == 0, ok.stderr
    assert zipfile.is_zipfile(tmp_path / "app.zip")
    env["NURTURE_PRIVACY_URL"] = "not a url"
    bad = subprocess.run(
        [sys.executable, "-m", "bot", "package", "--out", str(tmp_path / "bad.zip")],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert bad.returncode == 2 and "manifest developer.privacyUrl" in bad.stderr
    assert not (tmp_path / "bad.zip").exists()
