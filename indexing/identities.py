"""One person per id across sources that share an id space (TMDB's ``id``), decided in precedence order."""

from __future__ import annotations

from typing import Any

from lookalike.index.people import person_id


class Identities:
    """One person per (id space, id) across sources: the person ids of rows that carry an id (TMDB's ``id``).

    Decided over every row of the sources with ids, in precedence order (every shard reads the same rows
    in the same order, so every shard decides the same): an id's person id is that of the first name seen
    with it, so a later source's row with that id joins the person however it spells the name; a name that
    another id of the same space already holds gets the id appended (two TMDB people called "John Smith"
    stay two). Rows of sources without ids join by name.
    """

    def __init__(self) -> None:
        self._by_id: dict[tuple[str, str], str] = {}
        self._holder: dict[str, tuple[str, str]] = {}

    def add(self, space: str, value: Any, raw_name: str) -> None:
        """Note one row (in precedence order); an id already seen keeps its person."""
        key = _id_key(space, value)
        base = person_id(raw_name)
        if key is None or key in self._by_id or not base:
            return
        pid = base if self._holder.get(base, key) == key else f"{base}-{space}-{key[1]}"
        self._by_id[key] = pid
        self._holder.setdefault(pid, key)

    def person(self, space: str, value: Any, raw_name: str) -> str:
        """The person id of a row with id ``value`` (that of ``raw_name`` when the row has no known id)."""
        key = _id_key(space, value)
        return self._by_id.get(key, "") if key in self._by_id else person_id(raw_name)

    def __len__(self) -> int:
        return len(self._by_id)


def _id_key(space: str, value: Any) -> tuple[str, str] | None:
    """``(space, id as text)``: ``123``, ``123.0`` and ``"123"`` are one id; None, "" and booleans are none."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    text = str(value).strip()
    return (space, text) if text else None
