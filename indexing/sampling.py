"""Which rows to index: all, a seeded random sample, and/or up to K photos per person."""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Sequence


def choose_rows(names: Sequence[str], sample: int | None = None, per_person: int | None = None,
                seed: int = 0) -> list[int]:
    """Row indices to index, in ascending order (the same for the same arguments).

    Args:
        names: the person key of every row (rows with an empty key are still candidates; the
            indexer skips them and counts why).
        sample: at most this many rows in all (None or 0: no limit).
        per_person: at most this many rows of each person, chosen at random (None or 0: no limit).
            With both, the per-person cut comes first, so a small sample still spreads over people.
    """
    rng = random.Random(seed)
    indices = list(range(len(names)))
    if per_person:
        by_person: dict[str, list[int]] = defaultdict(list)
        for index in indices:
            by_person[names[index]].append(index)
        indices = []
        for rows in by_person.values():
            indices.extend(rows if len(rows) <= per_person else rng.sample(rows, per_person))
    if sample and sample < len(indices):
        if per_person:
            # round-robin over people so every person gets a photo before anyone gets a second
            by_person = defaultdict(list)
            for index in sorted(indices):
                by_person[names[index]].append(index)
            people = list(by_person)
            rng.shuffle(people)
            for rows in by_person.values():
                rng.shuffle(rows)
            picked: list[int] = []
            depth = 0
            while len(picked) < sample:
                picked.extend(by_person[p][depth] for p in people if depth < len(by_person[p]))
                depth += 1
            indices = picked[:sample]
        else:
            indices = rng.sample(indices, sample)
    return sorted(indices)
