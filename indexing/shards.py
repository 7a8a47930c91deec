"""``--shard I/N``: which part of the sources one of N parallel runners indexes. The split is decided here.

**By file** (parquet datasets: hub ids and local dataset folders). Every shard lists the parquet files of
every source's split (as ``datasets`` resolves them) with their row counts, all sources' files in one
list, and spreads them over the N shards by rows, largest file first onto the shard with the fewest rows
so far (:meth:`Shard.files`). Every shard computes the same list and so the same assignment: the shards
read disjoint files that together are every file once, and a runner downloads only its files, about 1/N
of the data when there are several files per shard. A file is never split (``datasets`` loads whole
files), so a source with fewer files than shards is read by some shards only, and the balance is as fine
as the files are. Rows count, not bytes: the time of a shard is the time it takes to embed its photos.

**By content hash** (image folders and ``save_to_disk`` folders, which are local: nothing to download;
a hub dataset whose files are not parquet; and every sharded run with ``--sample``/``--per-person``,
whose choice needs every row of a source).
Shard ``I`` of ``N`` owns the photos whose SHA-256 (read as a number) is ``I`` modulo ``N``
(:meth:`Shard.owns`). The same photo is always in the same shard, whichever source or row it comes from.
Rows without a photo (nothing to index, only a reason to count) belong to shard 0, so the counts of the
shards add up to an unsharded run's.

Either way the N shards write the points of one unsharded run: point ids are the photos' hashes, a photo
found by two shards (the same bytes in two files) is merged into one point in precedence order
(:class:`indexing.indexer.Indexer`), and ``--finalize`` spreads each person's name and metadata over all
of their points.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, Sequence


class Hashed(Protocol):
    """What :meth:`Shard.owns` reads of a row (:class:`indexing.sources.Row`): its photo's hex SHA-256."""

    sha256: str


@dataclass(frozen=True)
class Shard:
    """Shard ``index`` (0-based) of ``count``."""

    index: int = 0
    count: int = 1

    def __post_init__(self) -> None:
        if self.count < 1 or not 0 <= self.index < self.count:
            raise ValueError(f"a shard is I/N with 0 <= I < N, not {self.index}/{self.count}")

    @classmethod
    def parse(cls, text: str) -> "Shard":
        """``"1/4"`` -> ``Shard(1, 4)`` (shards are numbered from 0).

        Raises:
            ValueError: not ``I/N`` with ``0 <= I < N``.
        """
        index, slash, count = text.partition("/")
        try:
            if not slash:
                raise ValueError
            return cls(int(index), int(count))
        except ValueError:
            raise ValueError(f"a shard is I/N with 0 <= I < N (e.g. 0/4), not {text!r}") from None

    def owns(self, row: Hashed) -> bool:
        """True when this shard indexes ``row`` of a source split by content hash."""
        if self.count == 1:
            return True
        if not row.sha256:
            return self.index == 0
        return int(row.sha256[:16], 16) % self.count == self.index

    def files(self, rows: Sequence[int]) -> list[int]:
        """The positions of the files this shard reads, in order, given the row count of every file of
        every source in one list (the same list in every shard).

        Largest file first (ties: the earlier file), each onto the shard with the fewest rows so far
        (ties: the lower shard): every file goes to exactly one shard, and no shard gets more rows than
        another plus the largest file.
        """
        if self.count == 1:
            return list(range(len(rows)))
        load = [0] * self.count
        owner = [0] * len(rows)
        for position in sorted(range(len(rows)), key=lambda p: (-rows[p], p)):
            shard = min(range(self.count), key=lambda s: (load[s], s))
            owner[position] = shard
            load[shard] += rows[position]
        return [p for p in range(len(rows)) if owner[p] == self.index]

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"
