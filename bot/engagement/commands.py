"""What a person typed to the bot, reduced to a command. Recognises the words in every supported language."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from enum import StrEnum


class Command(StrEnum):
    HELP = "help"
    STOP = "stop"
    START = "start"
    DELETE_MY_DATA = "delete my data"
    NPS = "nps"  # CSMs: "nps" or "nps <tenant id>"
    AT_RISK = "at risk"  # CSMs: accounts at risk
    ACCOUNT = "account"  # CSMs: "account <tenant id or name>"
    RENEWALS = "renewals"  # CSMs: renewals in the next 90 days
    UNKNOWN = "unknown"


# Phrases per command, English plus de, fr, es, ja; compared after normalize(), so accents and case do not matter.
_PHRASES: dict[Command, tuple[str, ...]] = {
    Command.HELP: ("help", "?", "hilfe", "aide", "ayuda", "ヘルプ"),
    Command.STOP: ("stop", "unsubscribe", "opt out", "abmelden", "arreter", "detener", "停止"),
    Command.START: ("start", "resume", "opt in", "anmelden", "reprendre", "reanudar", "再開"),
    Command.AT_RISK: ("at risk", "at-risk", "gefahrdet", "a risque", "en riesgo", "リスク"),
    Command.RENEWALS: ("renewals", "verlangerungen", "renouvellements", "renovaciones", "更新"),
    Command.DELETE_MY_DATA: (
        "delete my data",
        "meine daten loschen",
        "supprimer mes donnees",
        "borrar mis datos",
        "データを削除",
    ),
}
_MENTION = re.compile(r"<at>.*?</at>", re.IGNORECASE | re.DOTALL)
_TAGS = re.compile(r"<[^>]+>")


def normalize(text: str) -> str:
    """Drop @mentions and markup, accents, case, surrounding punctuation and repeated spaces."""
    text = _TAGS.sub(" ", _MENTION.sub(" ", text))
    decomposed = unicodedata.normalize("NFKD", text)
    text = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    text = " ".join(text.lower().split())
    return text.strip(" .!?。！？") or text.strip()


_LOOKUP = {normalize(phrase): command for command, phrases in _PHRASES.items() for phrase in phrases}


# Commands that take one argument after their keyword.
_WITH_ARGUMENT = {
    "nps": Command.NPS,
    "account": Command.ACCOUNT,
    "konto": Command.ACCOUNT,
    "compte": Command.ACCOUNT,
    "cuenta": Command.ACCOUNT,
    "アカウント": Command.ACCOUNT,
}


@dataclass(frozen=True)
class ParsedCommand:
    command: Command
    argument: str | None = None


def parse(text: str | None) -> ParsedCommand:
    cleaned = normalize(text or "")
    if cleaned in _LOOKUP:
        return ParsedCommand(_LOOKUP[cleaned])
    keyword, _, rest = cleaned.partition(" ")
    if keyword in _WITH_ARGUMENT:
        return ParsedCommand(_WITH_ARGUMENT[keyword], rest.strip() or None)
    return ParsedCommand(Command.UNKNOWN)


def parse_command(text: str | None) -> Command:
    return parse(text).command
