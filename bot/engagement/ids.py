"""Microsoft Entra ids — a person's object id, a tenant's id — in the one form Nurture stores and compares.

They are GUIDs, and GUIDs are case-insensitive: Teams sends them in lower case, an admin may paste one in upper case.
Every boundary (activities, usage events, the command line, settings) turns them into this form, so one person is
always the same rows, and `nurture forget` finds them however the id was typed.
"""

from __future__ import annotations

import re
import string

# a GUID, or another directory id of at most 64 letters, digits, _ . - (what the usage API has always taken)
DIRECTORY_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}")


# Only A-Z: the case that makes a GUID's hex digits differ. str.lower() would also turn, say, "İ" into two
# characters, and an id that fitted its column would no longer fit.
_ASCII_LOWER = str.maketrans(string.ascii_uppercase, string.ascii_lowercase)


def stored_id(value: str) -> str:
    """The stored form of an id: A-Z in lower case, without surrounding spaces; never longer than `value`."""
    return value.strip().translate(_ASCII_LOWER)
