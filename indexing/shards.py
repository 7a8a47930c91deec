"""``--shard I/N``: which part of the sources one of N parallel runners indexes. The split is decided here.

Parquet datasets (hub ids, local dataset folders) are split **by file** (:meth:`Shard.files`): every shard
lists every source's files with their row counts and computes the same assignment, so each runner reads,
and downloads, only its files. Other sources, and every run with ``--sample``/``--per-person`` (whose
choice needs every row of a source), are split **by content hash** (:meth:`Shard.owns`). Either way the N
shards write the points of one unsharded run (README, "Sharded builds").
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol


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
    def parse(cls, text: str) -> Shard:
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
        """True when this shard indexes ``row`` of a source split by content hash: shard ``I`` owns the
        photos whose SHA-256 (its first 16 hex digits as a number) is ``I`` modulo ``N``, so a photo is in
        the same shard whichever source or row it comes from. Rows without a photo belong to shard 0, so
        the shards' skip counts add up to an unsharded run's."""
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
        another plus the largest file. Rows, not bytes: a shard's time is the time to embed its photos.
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
