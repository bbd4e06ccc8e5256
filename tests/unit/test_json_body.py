"""The one JSON reader every endpoint uses: nesting bounded without recursion, finite numbers, reasons given."""

from __future__ import annotations

import json

import pytest

from bot.json_body import MAX_DEPTH, JsonRefused, parse_json


def deep(depth: int, opener: bytes = b"[", closer: bytes = b"]") -> bytes:
    return opener * depth + b"0" + closer * depth


@pytest.mark.parametrize(
    "body",
    [deep(MAX_DEPTH), deep(MAX_DEPTH, b'{"k":', b"}"), b'{"a": [1, {"b": [[]]}], "c": {}}', b"7", b'"text"'],
)
def test_documents_up_to_the_bound_are_parsed(body: bytes) -> None:
    assert parse_json(body) == json.loads(body)


@pytest.mark.parametrize(
    "body",
    [
        deep(MAX_DEPTH + 1),
        deep(MAX_DEPTH + 1, b'{"k":', b"}"),
        deep(MAX_DEPTH + 1, b'[{"k":', b"}]"),
        deep(1_000),  # Python's parser itself gives up here (RecursionError)
        deep(200_000, b'{"":', b"}"),
        b"[" + b"[], " * 10_000 + deep(MAX_DEPTH) + b"]",  # wide, and one branch one level too deep
    ],
    ids=["arrays", "objects", "mixed", "a thousand", "two hundred thousand", "one deep branch"],
)
def test_deeper_documents_are_refused_with_the_bound_named(body: bytes) -> None:
    with pytest.raises(JsonRefused, match=f"nested deeper than {MAX_DEPTH} levels"):
        parse_json(body)


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b'{"a": NaN}', "NaN is not a JSON number"),
        (b"[-Infinity]", "-Infinity is not a JSON number"),
        (b"[1e999]", "too large to store"),
        (b"[" + b"9" * 5000 + b"]", "not valid JSON"),
        (b'{"a": ', "not valid JSON"),
        (b'{"a": "\xff"}', "not UTF-8 text"),
        ('{"a": 1}'.encode("utf-16"), "not UTF-8 text"),
        (b'{"a": "\\ud800"}', "not valid Unicode"),
        (b'{"\\udfff": 1}', "not valid Unicode"),
        (b'["a\\u0000b"]', "NUL character"),
        (b"", "not valid JSON"),
    ],
)
def test_what_is_not_json_a_database_can_store_is_refused(body: bytes, reason: str) -> None:
    with pytest.raises(JsonRefused, match=reason):
        parse_json(body)


def test_a_pair_of_surrogates_is_one_character() -> None:
    assert parse_json(b'["\\ud83d\\ude00", "\\u0001"]') == ["\U0001f600", "\x01"]


def test_a_bound_can_be_chosen() -> None:
    assert parse_json(deep(3), max_depth=3) == [[[0]]]
    with pytest.raises(JsonRefused, match="deeper than 2 levels"):
        parse_json(deep(3), max_depth=2)
