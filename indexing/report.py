"""What an indexing run did: :class:`IndexReport`, its counts and the summary the CLI prints."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field


@dataclass
class IndexReport:
    """What a run did. ``faces_indexed`` counts new points, ``faces_reused`` those of them copied from the
    served version (``reused_from``) rather than embedded; ``already_indexed`` rows found in place;
    ``reuse_note`` why nothing could be reused."""

    collection: str = ""
    images_seen: int = 0
    faces_indexed: int = 0
    faces_reused: int = 0
    already_indexed: int = 0
    reused_from: str = ""
    reuse_note: str = ""
    skipped: Counter = field(default_factory=Counter)
    ignored_files: int = 0
    people: int = 0
    shard: str = ""
    alias_moved: bool = False
    centroids: int = 0
    name_conflicts: list[str] = field(default_factory=list)
    well_known: int = 0
    popularity_threshold: float | None = None
    elapsed_s: float = 0.0
    embed_s: float = 0.0

    @property
    def faces_embedded(self) -> int:
        """New points whose face was detected and embedded by this run."""
        return self.faces_indexed - self.faces_reused

    @property
    def faces_per_s(self) -> float:
        """New faces per second of the whole run."""
        return self.faces_indexed / self.elapsed_s if self.elapsed_s else 0.0

    def summary(self) -> str:
        """A few human-readable lines."""
        lines = [f"collection: {self.collection}" + (f" (shard {self.shard})" if self.shard else "")]
        lines += [
            f"images seen: {self.images_seen}",
            f"faces indexed: {self.faces_indexed} (already indexed: {self.already_indexed})",
            f"embedded: {self.faces_embedded}, reused: {self.faces_reused}" + (
                f" (from {self.reused_from}, same model fingerprint)" if self.reused_from
                else f" ({self.reuse_note})" if self.reuse_note else ""),
            f"people with a face indexed: {self.people}",
        ]
        if self.well_known:
            lines.append(f"well-known people in the sources: {self.well_known}" + (
                "" if self.popularity_threshold is None else f" (popularity >= {self.popularity_threshold:g})"))
        if self.centroids:
            lines.append(f"per-person mean faces (centroids): {self.centroids}")
        if self.name_conflicts:
            lines.append(f"photos two sources name differently (kept under the first source's name): "
                         f"{len(self.name_conflicts)}, e.g. {'; '.join(self.name_conflicts[:3])}")
        for reason, count in sorted(self.skipped.items()):
            lines.append(f"skipped, {reason.replace('_', ' ')}: {count}")
        if self.ignored_files:
            lines.append(f"files ignored (not an image type): {self.ignored_files}")
        lines.append(f"elapsed: {self.elapsed_s:.1f} s, {self.faces_per_s:.1f} faces/s")
        return "\n".join(lines)
