"""Request bodies read as JSON, the same way on every endpoint: content type, size, syntax and nesting.

Python's json parser recurses once per nesting level, and so do msrest's deserializer and the validators after it: a
2 KB body of a thousand nested arrays ended in RecursionError and a 500. Nesting is bounded here, without recursion,
so no later layer ever sees a deep document. Every refusal is an HTTP error whose body is `{"error": reason}`.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any, NoReturn

from aiohttp import web

MAX_DEPTH = 64  # far deeper than any activity or usage event; a document's own top level counts as one
_CONTAINERS = (dict, list)


class JsonRefused(ValueError):
    """The body is not JSON this server takes; the message is the reason, fit for the client."""


def parse_json(body: bytes, max_depth: int = MAX_DEPTH) -> Any:
    """`body` parsed, if it is UTF-8 JSON (RFC 8259 asks for nothing else between systems) nested at most
    `max_depth` levels, with finite numbers only and text a database can store."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise JsonRefused("body is not UTF-8 text") from None
    try:
        value = json.loads(text, parse_constant=_refuse_constant, parse_float=_finite_float)
    except RecursionError:
        raise JsonRefused(_too_deep(max_depth)) from None
    except JsonRefused:
        raise
    except ValueError:  # JSONDecodeError, UnicodeDecodeError, an integer of more digits than Python converts
        raise JsonRefused("body is not valid JSON") from None
    if _deeper_than(value, max_depth):
        raise JsonRefused(_too_deep(max_depth))
    if _ODD_ESCAPE.search(text):
        unstorable = _unstorable_text(value)
        if unstorable:
            raise JsonRefused(unstorable)
    return value


# JSON may spell, as escapes, characters no database stores: a lone UTF-16 surrogate (a str no driver, JSON encoder
# to UTF-8 or log line can write) and NUL (PostgreSQL's text refuses it). Only bodies with such an escape are
# looked at closely: nothing else can hold them (a raw control character is not valid JSON).
_ODD_ESCAPE = re.compile(r"\\u(?:[dD][89a-fA-F]|0000)")


def _unstorable_text(value: Any) -> str | None:
    """Why some text in `value` (keys included) cannot be stored (the reason for the client), or None; iterative,
    like `_deeper_than`."""
    pending = [value]
    while pending:
        node = pending.pop()
        if type(node) is str:
            if "\x00" in node:
                return "body holds a NUL character (\\u0000), which no database stores in text"
            try:
                node.encode("utf-8")
            except UnicodeEncodeError:
                return "body holds text that is not valid Unicode (an unpaired \\ud800-\\udfff escape)"
        elif type(node) is dict:
            pending.extend(node.keys())
            pending.extend(node.values())
        elif type(node) is list:
            pending.extend(node)
    return None


def _deeper_than(value: Any, limit: int) -> bool:
    """Whether `value` nests more than `limit` levels, counted one level at a time (no recursion)."""
    level = [value] if type(value) in _CONTAINERS else []
    depth = 0
    while level:
        depth += 1
        if depth > limit:
            return True
        level = [
            child
            for node in level
            for child in (node.values() if type(node) is dict else node)
            if type(child) in _CONTAINERS
        ]
    return False


def _too_deep(limit: int) -> str:
    return f"body is nested deeper than {limit} levels"


def _refuse_constant(name: str) -> NoReturn:
    raise JsonRefused(f"body is not valid JSON: {name} is not a JSON number")


def _finite_float(text: str) -> float:
    number = float(text)
    if not math.isfinite(number):  # 1e999: no database stores it as JSON
        raise JsonRefused("body holds a number too large to store")
    return number


async def read_json(request: web.Request, limit: int, too_large: str) -> Any:
    """The request's body parsed by `parse_json`; 415 for another content type, 413 (saying `too_large`) above
    `limit` bytes (decompressed: aiohttp inflates gzip and deflate bodies), 400 for anything else it does not take."""
    if request.content_type != "application/json":
        raise json_error(415, "Content-Type must be application/json")
    if request.content_length is not None and request.content_length > limit:
        raise json_error(413, too_large)
    try:
        body = await request.read()  # aiohttp enforces the app-wide client_max_size (413) …
    except web.HTTPRequestEntityTooLarge:
        raise json_error(413, too_large) from None
    except web.RequestPayloadError:  # a gzip or deflate body that does not decompress, or a broken chunked body
        raise json_error(400, "body could not be read: its Content-Encoding or chunked transfer is broken") from None
    if len(body) > limit:  # … and this route's own, smaller limit
        raise json_error(413, too_large)
    try:
        return parse_json(body)
    except JsonRefused as exc:
        raise json_error(400, str(exc)) from None


_ERRORS: dict[int, type[web.HTTPException]] = {
    400: web.HTTPBadRequest,
    401: web.HTTPUnauthorized,
    403: web.HTTPForbidden,
    415: web.HTTPUnsupportedMediaType,
    503: web.HTTPServiceUnavailable,
}


def json_error(status: int, reason: str, headers: dict[str, str] | None = None) -> web.HTTPException:
    """An HTTP error to raise, with `{"error": reason}` as its body."""
    body = json.dumps({"error": reason})
    if status == 413:
        return web.HTTPRequestEntityTooLarge(max_size=0, actual_size=0, text=body, content_type="application/json")
    return _ERRORS[status](text=body, content_type="application/json", headers=headers)
