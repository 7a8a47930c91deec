"""Identity linking: one person per id across the sources that share an id space (TMDB's ``id``).

A step of its own, run before any person id of a source with an id column is read: :func:`open_all`
links the run's sources over all their rows, and the indexer links any source opened alone.
"""

from __future__ import annotations

from collections.abc import Sequence

from indexing.identities import Identities
from indexing.sources.source import Source


def link_identities(sources: Sequence[Source], rows_of: Sequence[Source] | None = None) -> None:
    """Give the sources with an id column one :class:`Identities`, decided over the rows of ``rows_of``
    (default: ``sources``, when they hold every row) in precedence order."""
    if not any(s.id_column for s in sources):
        return
    identities = Identities()
    for source in rows_of if rows_of is not None else sources:
        for value, name in source.identity_rows():
            identities.add(source.id_space, value, name)
    for source in sources:
        if source.id_column:
            source.identities = identities


def link_unlinked(sources: Sequence[Source]) -> None:
    """Link each source with an id column that has no :class:`Identities` yet (one opened alone, by
    :func:`indexing.sources.open_sources`) on its own rows."""
    for source in sources:
        if source.id_column and source.identities is None:
            link_identities([source])
