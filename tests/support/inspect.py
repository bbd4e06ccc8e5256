"""Reading what the bot produced: the visible text of a card, the rows of a table."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from storage.engine import create_engine, session_factory

VISIBLE_KEYS = ("text", "title", "label", "errorMessage", "value")


def card_texts(card: Any) -> str:
    """Every string a person could read on the card, one per line."""
    found: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key in VISIBLE_KEYS and isinstance(value, str):
                    found.append(value)
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(card)
    return "\n".join(found)


async def rows_of(database_url: str, model: type) -> list[Any]:
    engine = create_engine(database_url)
    try:
        async with session_factory(engine)() as session:
            return list((await session.execute(select(model))).scalars())
    finally:
        await engine.dispose()
