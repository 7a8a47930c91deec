"""Person names: one stable id per person, however a source spells the name.

``"Tony_Blair"``, ``"tony blair"``, ``"pins_Tony Blair"`` and ``"TONY-BLAIR"`` are one person,
``tony-blair``; accents are kept apart from the letters they sit on (``"Beyoncé"`` -> ``beyonce``)
so two spellings of one name meet. The display name keeps the accents.
"""

from __future__ import annotations

import re
import unicodedata

_PREFIXES = ("pins_", "pins ")
_WORD_BREAKS = re.compile(r"[\s_]+")
_SEPARATORS = re.compile(r"[\s_\-.]+")


def display_name(raw: str) -> str:
    """A readable name: known prefixes dropped, separators as spaces, words capitalised if all lower.

    ``_`` and white space always separate words; ``-`` and ``.`` only in a name that has neither
    (``"TONY-BLAIR"``), so ``"Roh_Moo-hyun"`` and ``"George W. Bush"`` keep their own. A name without
    letters or digits gives ``""``.

    >>> display_name("pins_tony_blair")
    'Tony Blair'
    """
    name = str(raw).strip()
    for prefix in _PREFIXES:
        if name.lower().startswith(prefix):
            name = name[len(prefix):]
    breaks = _WORD_BREAKS if _WORD_BREAKS.search(name.strip()) else _SEPARATORS
    name = breaks.sub(" ", name).strip(" -.")
    if not any(ch.isalnum() for ch in name):
        return ""
    if name.islower() or name.isupper():
        name = " ".join("-".join(part[:1].upper() + part[1:].lower() for part in word.split("-"))
                        for word in name.split(" "))
    return name


def person_id(raw: str) -> str:
    """The grouping key of a person: ASCII, lower case, words joined by ``-`` (``"tony-blair"``).

    Returns ``""`` for a name with no letters or digits; callers must not index such a row.
    """
    name = unicodedata.normalize("NFKD", display_name(raw))
    name = "".join(ch for ch in name if not unicodedata.combining(ch)).lower()
    return "-".join(re.findall(r"[0-9a-z]+", name))
