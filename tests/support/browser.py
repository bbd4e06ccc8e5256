"""Prerequisites of the browser tests: Debian's Chromium, Node.js and the npm packages of package.json.

A missing prerequisite names exactly what to install. In CI (CI=true) it fails the test; on a developer's machine it
skips, so the rest of the suite still runs.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
NODE_MODULES = ROOT / "node_modules"
CHROMIUM = Path(os.environ.get("NURTURE_CHROMIUM", "/usr/bin/chromium"))
PLAYGROUND_BIN = NODE_MODULES / ".bin" / "agentsplayground"
RENDERER_JS = NODE_MODULES / "adaptivecards" / "dist" / "adaptivecards.min.js"

# Chromium as root, offline: no sandbox, and none of the background calls this closed network refuses.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def _missing() -> list[str]:
    missing = []
    if not CHROMIUM.exists():
        missing.append(f"Chromium at {CHROMIUM} (Debian: apt-get install chromium; or set NURTURE_CHROMIUM)")
    if shutil.which("node") is None:
        missing.append("Node.js 20+ (Debian: apt-get install nodejs npm)")
    if not PLAYGROUND_BIN.exists() or not RENDERER_JS.exists():
        missing.append("the npm packages of package.json (npm ci, or make test)")
    return missing


def require_manifest_schemas() -> None:
    schemas = NODE_MODULES / "@microsoft" / "app-manifest" / "build" / "json-schemas" / "teams"
    if not schemas.exists():
        missing_prerequisite("the manifest tests need Microsoft's schemas: npm ci (or make test)")


def require_browser_prerequisites() -> None:
    missing = _missing()
    if missing:
        missing_prerequisite("browser tests need: " + "; ".join(missing))


def missing_prerequisite(message: str) -> None:
    """Skip a test whose prerequisite this machine lacks; in CI, where everything must run, fail it."""
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(message, pytrace=False)
    pytest.skip(message)
