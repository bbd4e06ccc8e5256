"""Reading the campaigns file (NURTURE_CAMPAIGNS, else the packaged defaults), with errors an operator can act on."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import yaml
from pydantic import ValidationError

from bot.config import ConfigError
from bot.engagement.campaigns import CampaignSet

DEFAULT_NAME = "packaged defaults (bot/engagement/default_campaigns.yaml)"


def default_campaigns_text() -> str:
    return resources.files("bot.engagement").joinpath("default_campaigns.yaml").read_text(encoding="utf-8")


def load_campaigns(path: str = "") -> CampaignSet:
    """The validated campaigns; ConfigError names the file, the place and the problem in one line."""
    if path:
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"NURTURE_CAMPAIGNS: cannot read {path}: {exc.strerror or exc}") from None
        where = path
    else:
        text, where = default_campaigns_text(), DEFAULT_NAME
    return parse_campaigns(text, where)


def parse_campaigns(text: str, where: str = "campaigns") -> CampaignSet:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or exc
        raise ConfigError(f"campaigns file {where}{at}: not valid YAML ({problem})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"campaigns file {where}: expected a mapping with a 'campaigns' list")
    try:
        return CampaignSet.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        place = _place(data, first["loc"])
        raise ConfigError(f"campaigns file {where}: {place}: {first['msg']}") from None


def _place(data: dict[str, object], loc: tuple[int | str, ...]) -> str:
    """campaigns[2] (id first-report).within_days — the campaign named, and the discriminator noise dropped."""
    parts: list[str] = []
    node: object = data
    for key in loc:
        if isinstance(key, int):
            parts[-1] += f"[{key}]"
            node = node[key] if isinstance(node, list) and key < len(node) else None
            if isinstance(node, dict) and isinstance(node.get("id"), str):
                parts[-1] += f" (id {node['id']})"
            continue
        if isinstance(node, dict) and key not in node and parts:
            continue  # pydantic's union tag, e.g. 'adoption'
        parts.append(str(key))
        node = node.get(key) if isinstance(node, dict) else None
    return ".".join(parts) or "top level"
