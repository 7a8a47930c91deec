"""A search's options as the page and the API send them after the photo (or the faces): matches per face
(``top_k``), one value per filter of :data:`lookalike.filters.FILTERS` in their order, and "well-known
people only". The page's events, the API's arguments and the traffic middleware's defaults follow this one
order, so a filter declared in :mod:`lookalike.filters` takes its place in each of them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from lookalike.filters import BadFilterError, Value, declared, describe, read_where

TOP_K = "top_k"
WELL_KNOWN_ONLY = "well_known_only"
MAX_TOP_K = 10
WELL_KNOWN_WORDS = "well-known people only"
_YES = {"true", "1", "yes", "on"}
_NO = {"false", "0", "no", "off"}


@dataclass(frozen=True)
class SearchOptions:
    """What a search keeps: ``top_k`` people per face, the declared filters' ``where`` (by filter name) and
    whether only well-known people count."""

    top_k: int
    where: dict[str, Value]
    well_known_only: bool

    @property
    def words(self) -> str:
        """The filters in words, for "nobody matches" messages: ``"women, well-known people only"``."""
        return ", ".join(part for part in (describe(self.where), WELL_KNOWN_WORDS if self.well_known_only else "")
                         if part)


RESERVED = {TOP_K, WELL_KNOWN_ONLY, "photo", "faces", "request"}
"""The API's argument names besides the filters': no filter may take one."""


def option_names() -> list[str]:
    """The options' names in the order the page and the API take them after the photo.

    Raises:
        ValueError: two filters share a name, or a filter takes one of :data:`RESERVED`.
    """
    names = [item.name for item in declared()]
    clashes = sorted({n for n in names if names.count(n) > 1} | (set(names) & RESERVED))
    if clashes:
        raise ValueError(f"filter names must be unique and not one of {sorted(RESERVED)}: {', '.join(clashes)}")
    return [TOP_K, *names, WELL_KNOWN_ONLY]


def read_options(values: Sequence[Any], default_top_k: int) -> SearchOptions:
    """The options from the values after the photo, in :func:`option_names`' order (missing ones take their
    defaults: ``default_top_k``, no filter, well-known only).

    Raises:
        BadFilterError: a filter's or well_known_only's value that cannot be read.
        TypeError: more values than options.
    """
    names = option_names()
    if len(values) > len(names):
        raise TypeError(f"{len(values)} option values, but the options are {', '.join(names)}")
    given = dict(zip(names, values, strict=False))
    return SearchOptions(clamp_top_k(given.get(TOP_K), default_top_k), read_where(given),
                         flag(given.get(WELL_KNOWN_ONLY)))


def flag(value: Any) -> bool:
    """The "well-known people only" option from the page's checkbox or an API value; unset: on."""
    if value is None or value == "":
        return True
    if isinstance(value, (bool, int, float)):
        return bool(value)
    text = str(value).strip().lower()
    if text in _YES or text in _NO:
        return text in _YES
    raise BadFilterError(f"Unknown {WELL_KNOWN_ONLY} value '{str(value)[:40]}': use true or false.")


def clamp_top_k(value: Any, default: int) -> int:
    """``top_k`` as a whole number from 1 to :data:`MAX_TOP_K`; ``default`` when it is not a number."""
    try:
        k = int(round(float(value)))
    except (TypeError, ValueError):
        return default
    return min(max(k, 1), MAX_TOP_K)


def option_docs(default_top_k: int) -> dict[str, str]:
    """Each option's description in the API (and the MCP tool), by name, in order."""
    return {TOP_K: f"how many look-alikes to return per face, 1 to {MAX_TOP_K} (default {default_top_k}).",
            **{item.name: item.doc for item in declared()},
            WELL_KNOWN_ONLY: "optional, true by default: only well-known people (about 15,000: celebrities and the "
                             "most popular TMDB people); false searches everyone in the index."}
