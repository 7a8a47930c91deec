"""The plan of a run: which rows of each source it indexes, the same in every shard, with the sources'
identities linked first; and the order one run reads photo references in."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from indexing.sampling import choose_rows
from indexing.sources import Source, link_unlinked

Plan = list[tuple[Source, list[int]]]
"""Each source with the row indices chosen from it (:func:`plan_rows`)."""


def plan_rows(sources: Sequence[Source], sample: int | None = None, per_person: int | None = None,
              seed: int = 0) -> Plan:
    """The rows of each source to index (:func:`indexing.sampling.choose_rows`), the same in every shard.

    The sources' identities are linked first (:func:`indexing.sources.link_unlinked`: those no opener
    linked, each on its own rows), since sampling and the person pass read their person ids."""
    link_unlinked(sources)
    return [(source, choose_rows(source.person_ids(), sample, per_person, seed)) for source in sources]


def ref_order(plan: Plan) -> Callable[[str], tuple]:
    """A sort key putting photo references in the order one run reads them: by the plan's sources,
    then row number (datasets) or path (image folders). References of sources this run does not read
    (an earlier run's) come first, as they were written first."""
    prefixes = [source.ref_prefix for source, _ in plan]

    def key(ref: str) -> tuple:
        for rank, prefix in enumerate(prefixes):
            if ref.startswith(prefix):
                rest = ref[len(prefix):]
                return (rank, int(rest), ()) if rest.isdigit() else (rank, -1, Path(rest).parts)
        return (-1, 0, ())

    return key
