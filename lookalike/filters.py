"""The search's filters, each declared once.

A :class:`Filter` names a payload field a search can keep people by, and everything said about it: its
value type, its label and choices on the page, the words a client may send, and how it reads in the API's
and the MCP tool's descriptions. :data:`FILTERS` is the one list. From it come the payload indexes of a new
collection (:func:`lookalike.index.payload.payload_indexes`), the fields a query may filter on, the values
:meth:`lookalike.search.LookalikeFinder.filter_values` reads, the page's dropdowns, the API's arguments
and their checks, and the descriptions. Adding a filter is adding one entry here; every consumer reads the
list when it is called, not when it is imported.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from lookalike.errors import LookalikeError

Value = str | int
"""A filter's value as stored and matched: a keyword (``str``) or an integer code (``int``)."""


class BadFilterError(LookalikeError):
    """A filter's value that cannot be read (an unknown word for a coded filter, say)."""

    reason = "bad_filter"


@dataclass(frozen=True)
class Filter:
    """One filter of the search.

    Attributes:
        name: the API's argument, the ``where`` key of :meth:`~lookalike.search.LookalikeFinder.find` and the
            page control's ``elem_id`` (``"gender"``).
        path: the payload path it matches (``"metadata.gender"``); new collections index it.
        kind: ``int`` (an integer index, codes) or ``str`` (a keyword index, words matched as they are).
        label: the page control's label.
        anyone: the control's choice that keeps everyone (``"Anyone"``).
        keeps: who it keeps, for the descriptions (``"celebrities of this gender"``).
        labels: value -> its name on the page and in messages (``1: "Women"``). When given, the page offers
            only these values; else every value the index holds, as it is.
        words: value -> the words a client may send for it, the first one named in the descriptions
            (``1: ("female", "woman", ...)``). An ``int`` filter takes its codes too; a ``str`` one any text.
        example: a value named in the descriptions when there are no words (``"Acting"``).
    """

    name: str
    path: str
    kind: type[int] | type[str]
    label: str
    anyone: str
    keeps: str
    labels: Mapping[Value, str] = field(default_factory=dict)
    words: Mapping[Value, tuple[str, ...]] = field(default_factory=dict)
    example: str = ""

    def __post_init__(self) -> None:
        if not self.name.isidentifier():
            raise ValueError(f"filter name {self.name!r}: it names an API argument, so it must be an identifier")
        for value, words in self.words.items():
            if not isinstance(value, self.kind) or any(word != word.lower() for word in words):
                raise ValueError(f"filter {self.name}: words are lowercase and name {self.kind.__name__} values")
        if any(not isinstance(value, self.kind) for value in self.labels):
            raise ValueError(f"filter {self.name}: labels name {self.kind.__name__} values")

    def read(self, given: Any) -> Value | None:
        """The value to keep for what the page or a client sent; None for an empty value (no filter).

        Raises:
            BadFilterError: an ``int`` filter got a word that is neither one of its words nor a number.
        """
        if given is None:
            return None
        text = str(given).strip()
        if not text:
            return None
        for value, words in self.words.items():
            if text.lower() in words:
                return value
        if self.kind is str:
            return text
        try:
            return int(float(text))
        except (ValueError, OverflowError):
            raise BadFilterError(f"Unknown {self.name} filter '{text[:40]}': use {self.spelled('or')}.") from None

    def choices(self, values: Iterable[Any]) -> list[tuple[str, Value]]:
        """The page's choices for the values the index holds: the "anyone" choice first, then each value
        that can be offered under its label; ``[]`` (hide the control) when none can."""
        held = [v for v in values if isinstance(v, self.kind) and not isinstance(v, bool)]
        if self.labels:
            held = [v for v in held if v in self.labels]
        offered = [(self.labels.get(v, str(v)), v) for v in held]
        return [(self.anyone, ""), *offered] if offered else []

    def describe(self, value: Value) -> str:
        """``value`` in a sentence (``"women"``, ``"Acting"``)."""
        return self.labels[value].lower() if value in self.labels else str(value)

    def spelled(self, conjunction: str = "or") -> str:
        """The values a client may send, as the descriptions name them: ``"female", "male" or "non-binary"``
        (each value's first word), or ``e.g. "Acting"``."""
        names = [f'"{words[0]}"' for words in self.words.values() if words]
        if not names:
            return f'e.g. "{self.example}"' if self.example else "a value"
        return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} {conjunction} {names[-1]}"

    @property
    def doc(self) -> str:
        """The API argument's description (the MCP tool's too)."""
        return f"optional: only {self.keeps}, {self.spelled()}; empty for {self.anyone.lower()}."


FILTERS: tuple[Filter, ...] = (
    Filter("gender", "metadata.gender", int, label="Gender", anyone="Anyone", keeps="celebrities of this gender",
           labels={1: "Women", 2: "Men", 3: "Non-binary people"},  # tmdb-celeb-10k's codes (0: not set)
           words={1: ("female", "woman", "women", "f"), 2: ("male", "man", "men", "m"),
                  3: ("non-binary", "nonbinary")}),
    Filter("department", "metadata.known_for_department", str, label="Known for", anyone="Any field",
           keeps="celebrities known for this department", example="Acting"),
)
"""The filters, in the order of the page's controls and the API's arguments (after ``top_k``)."""


def declared() -> tuple[Filter, ...]:
    """:data:`FILTERS` as they are now (read at call time, so that a filter added to them is seen everywhere)."""
    return FILTERS


def read_where(values: Mapping[str, Any]) -> dict[str, Value]:
    """The ``where`` of a search from each filter's value as sent (by filter name); empty ones dropped.

    Raises:
        BadFilterError: a value a filter cannot read.
    """
    where: dict[str, Value] = {}
    for item in declared():
        value = item.read(values.get(item.name))
        if value is not None:
            where[item.name] = value
    return where


def describe(where: Mapping[str, Value]) -> str:
    """A ``where`` in words, for messages: ``"women, Acting"``."""
    by_name = {item.name: item for item in declared()}
    return ", ".join(by_name[key].describe(value) if key in by_name else str(value) for key, value in where.items())
