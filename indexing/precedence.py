"""The person-level facts of a run: each person's display name and metadata, by source precedence.

Sources are read in order and the order is the precedence: a person's display name is the first
spelling seen, each metadata field (``biography``, ...) the first value seen. Only the name and metadata
columns are read (no photo), so the person pass can run once after all shards of a sharded run and give
what one unsharded run gives.

:func:`mark_well_known` marks about :data:`WELL_KNOWN_PEOPLE` people well-known; the page shows only them by
default, so that a visitor's look-alikes are people they may know. They are everyone of a source without a
``popularity`` column (a celebrities set), then the most popular of the others (the TMDB sets): a rank, not
a fixed popularity, which on TMDB drifts from week to week.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from indexing.sources import Source
from lookalike.index.people import display_name

POPULARITY = "popularity"
"""The metadata column that ranks people (TMDB's popularity)."""

WELL_KNOWN_PEOPLE = 15_000
"""About how many people count as well-known: the people of the sources without popularity, then the
most popular of the others (everyone tied with the last one too)."""


@dataclass
class Person:
    """One identity across sources: the display name and metadata that precedence picked.

    ``unranked``: some row of the person comes from a source without a popularity column (a celebrities
    set). ``well_known``: set by :func:`mark_well_known`.
    """

    name: str
    metadata: dict[str, Any] = field(default_factory=dict)
    unranked: bool = False
    well_known: bool = True

    @property
    def popularity(self) -> float | None:
        """The popularity precedence picked, or None."""
        value = self.metadata.get(POPULARITY)
        return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None

    def note(self, metadata: dict[str, Any]) -> None:
        """Add the fields not seen yet (an earlier value always wins)."""
        for key, value in metadata.items():
            self.metadata.setdefault(key, value)


def collect_people(plan: Sequence[tuple[Source, Sequence[int]]]) -> dict[str, Person]:
    """Person id -> :class:`Person` over the chosen rows of each source, in precedence order.

    Rows whose name has no letters or digits belong to nobody and are left out.
    """
    people: dict[str, Person] = {}
    for source, indices in plan:
        unranked = POPULARITY not in source.metadata_columns
        for pid, raw_name, metadata in source.facts(indices):
            if not pid:
                continue
            person = people.get(pid)
            if person is None:
                person = people[pid] = Person(display_name(raw_name))
            elif not person.name:  # joined by id from a row without a name
                person.name = display_name(raw_name)
            person.note(metadata)
            person.unranked = person.unranked or unranked
    return people


def mark_well_known(people: dict[str, Person], keep: int = WELL_KNOWN_PEOPLE) -> float | None:
    """Set each person's ``well_known``: about ``keep`` people, those of the sources without popularity and
    the most popular others; a person of a ranked source whose popularity is unknown counts as well-known
    (nobody is hidden without a reason). ``keep`` 0: everyone is well-known.

    Returns the popularity threshold (the people at or above it are well-known), or None when everyone is.
    """
    ranked = sorted((p.popularity for p in people.values() if not p.unranked and p.popularity is not None),
                    reverse=True)
    room = keep - sum(1 for p in people.values() if p.unranked or p.popularity is None)
    if keep <= 0 or len(ranked) <= room:
        threshold = None
    else:
        threshold = ranked[room - 1] if room > 0 else math.inf
    for person in people.values():
        popularity = person.popularity
        person.well_known = (threshold is None or person.unranked or popularity is None
                             or popularity >= threshold)
    return threshold
