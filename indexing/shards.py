"""``--shard I/N``: a deterministic split of the photos by content hash, for parallel runners.

Shard ``I`` of ``N`` owns the photos whose SHA-256 (read as a number) is ``I`` modulo ``N``. The same
photo is always in the same shard, whichever source or row it comes from, so N runs write disjoint
point sets whose union is exactly one unsharded run's (point ids are the photos' hashes too). Rows
without a photo (nothing to index, only a reason to count) belong to shard 0, so the counts of the
shards add up to an unsharded run's.
"""

from __future__ import annotations

from dataclasses import dataclass

from indexing.sources import Row


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

    def owns(self, row: Row) -> bool:
        """True when this shard indexes ``row``."""
        if self.count == 1:
            return True
        if not row.sha256:
            return self.index == 0
        return int(row.sha256[:16], 16) % self.count == self.index

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"
