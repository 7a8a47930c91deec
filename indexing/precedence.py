"""The person-level facts of a run: each person's display name and metadata, by source precedence.

Sources are read in order and the order is the precedence: a person's display name is the first
spelling seen, each metadata field (``biography``, ...) the first value seen. Only the name and
metadata columns are read (no photo), so the pass that spreads these facts over every point of a
person can run once after all shards of a sharded run, and gives what one unsharded run gives.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

from indexing.sources import Source
from lookalike.people import display_name


@dataclass
class Person:
    """One identity across sources: the display name and metadata that precedence picked."""

    name: str
    metadata: dict[str, Any] = field(default_factory=dict)

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
        for pid, raw_name, metadata in source.facts(indices):
            if not pid:
                continue
            person = people.get(pid)
            if person is None:
                person = people[pid] = Person(display_name(raw_name))
            person.note(metadata)
    return people
