"""Chat commands in every supported language."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.engagement.commands import Command, parse_command


@pytest.mark.parametrize(
    ("text", "command"),
    [
        ("help", Command.HELP),
        ("  HELP  ", Command.HELP),
        ("<at>Nurture</at> help", Command.HELP),
        ("Hilfe", Command.HELP),
        ("aide", Command.HELP),
        ("ヘルプ", Command.HELP),
        ("stop", Command.STOP),
        ("Stop!", Command.STOP),
        ("arrêter", Command.STOP),
        ("停止", Command.STOP),
        ("start", Command.START),
        ("reanudar", Command.START),
        ("delete my data", Command.DELETE_MY_DATA),
        ("Delete  my   data.", Command.DELETE_MY_DATA),
        ("Meine Daten löschen", Command.DELETE_MY_DATA),
        ("supprimer mes données", Command.DELETE_MY_DATA),
        ("borrar mis datos", Command.DELETE_MY_DATA),
        ("データを削除", Command.DELETE_MY_DATA),
        ("at risk", Command.AT_RISK),
        ("At Risk?", Command.AT_RISK),
        ("gefährdet", Command.AT_RISK),
        ("à risque", Command.AT_RISK),
        ("renewals", Command.RENEWALS),
        ("Renouvellements", Command.RENEWALS),
        ("account contoso", Command.ACCOUNT),
        ("Konto Contoso", Command.ACCOUNT),
        ("please delete my data and more", Command.UNKNOWN),
        ("hello", Command.UNKNOWN),
        ("", Command.UNKNOWN),
        (None, Command.UNKNOWN),
    ],
)
def test_parse(text: str | None, command: Command) -> None:
    assert parse_command(text) is command


@given(st.text(max_size=200))
def test_any_text_parses_without_error(text: str) -> None:
    assert isinstance(parse_command(text), Command)


def test_account_takes_its_argument() -> None:
    from bot.engagement.commands import parse

    assert parse("account  Contoso Pharma ").argument == "contoso pharma"
    assert parse("account").argument is None
