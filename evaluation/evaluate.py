"""``python -m evaluation``: how well the embeddings tell your people apart.

Embeds a gallery (the photos you index) and a query set (other photos of the same people) through the
same :class:`~lookalike.faces.FacePipeline` as indexing and search, in memory (the index itself is
never touched), then reports person-level identification accuracy, the share of photos without a
detected face, the people most often confused, the score distributions of true and false matches with
a suggested "no close match" threshold, and a 2-D picture of the gallery's embedding space.

    python -m evaluation --gallery tests/data/five_celebs/train \\
        --queries tests/data/five_celebs/val --out evaluation-report/

Writes ``report.json`` and ``embedding.png`` into ``--out``. The figures are only as meaningful as the
weights: with stand-in test weights they measure nothing.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from lookalike.errors import LookalikeError
from lookalike.faces import FacePipeline
from lookalike.index.people import display_name

log = logging.getLogger("evaluation")

PERCENTILES = (1, 5, 10, 25, 50, 75, 90, 95, 99)
KEEP_TRUE_SHARE = 0.95


@dataclass
class EmbeddedSet:
    """The main face of each photo of a set: vectors (n, 512), person ids, and what was skipped."""

    vectors: np.ndarray
    people: list[str]
    names: dict[str, str]
    digests: list[str]
    photos: int = 0
    photos_per_person: Counter = field(default_factory=Counter)
    no_face: int = 0
    unreadable: int = 0


@dataclass
class ScoreDistribution:
    """Percentiles of cosine scores (``{"p5": ..., ...}``), their count and mean."""

    count: int
    mean: float | None
    percentiles: dict[str, float]

    @classmethod
    def of(cls, scores: Sequence[float]) -> ScoreDistribution:
        if len(scores) == 0:
            return cls(0, None, {})
        array = np.asarray(scores, np.float64)
        return cls(len(array), round(float(array.mean()), 4),
                   {f"p{p}": round(float(np.percentile(array, p)), 4) for p in PERCENTILES})


@dataclass
class ConfusedPair:
    """A query of ``true_person`` whose best match was ``predicted_person``, ``count`` times."""

    true_person: str
    predicted_person: str
    count: int


@dataclass
class EvaluationReport:
    """Person-level identification of the query photos against the gallery.

    Attributes:
        gallery_photos / query_photos: image files (rows) read from each set.
        gallery_faces / query_faces: photos whose main face was detected and embedded.
        gallery_people / query_people: distinct persons with at least one embedded face.
        *_no_face_share: share of photos where no face was detected (unreadable photos count too).
        evaluated_queries: query faces whose person is in the gallery (the accuracy's denominator).
        unknown_person_queries: query faces of people the gallery does not hold (not scored).
        queries_in_gallery: query photos byte-identical to a gallery photo (they score ~1.0).
        rank1 / rank5: share of evaluated queries whose person is first / in the first ``top_k``.
        top_k: the k of ``rank_k`` (5 by default; ``rank5`` is the rank-``top_k`` accuracy).
        per_person_rank1: rank-1 accuracy of each person's queries.
        confused_pairs: the most frequent (true, predicted) pairs among rank-1 mistakes.
        true_scores: the best cosine of each query against its own person's gallery faces.
        false_scores: the best cosine of each query against any other person.
        suggested_threshold: the score that keeps ``KEEP_TRUE_SHARE`` of true matches; below it, say
            "no close match". false_above_threshold: share of false matches still above it.
        projection: ``"pca"`` or ``"umap"``; embedding_png: the picture's path.
    """

    gallery: str
    queries: str
    gallery_photos: int
    query_photos: int
    gallery_faces: int
    query_faces: int
    gallery_people: int
    query_people: int
    gallery_no_face_share: float
    query_no_face_share: float
    evaluated_queries: int
    unknown_person_queries: int
    queries_in_gallery: int
    top_k: int
    rank1: float | None
    rank5: float | None
    per_person_rank1: dict[str, float]
    confused_pairs: list[ConfusedPair]
    true_scores: ScoreDistribution
    false_scores: ScoreDistribution
    suggested_threshold: float | None
    false_above_threshold: float | None
    projection: str = "pca"
    embedding_png: str | None = None
    weights: str = ""
    likeness: dict[str, Any] | None = None

    def as_json(self) -> dict[str, Any]:
        return asdict(self)

    def summary(self) -> str:
        """A readable report."""
        def pct(value: float | None) -> str:
            return "n/a" if value is None else f"{100 * value:.1f} %"

        lines = [
            f"gallery: {self.gallery}: {self.gallery_photos} photos, {self.gallery_faces} faces, "
            f"{self.gallery_people} people, no face in {pct(self.gallery_no_face_share)}",
            f"queries: {self.queries}: {self.query_photos} photos, {self.query_faces} faces, "
            f"{self.query_people} people, no face in {pct(self.query_no_face_share)}",
            f"evaluated queries: {self.evaluated_queries} (people not in the gallery: {self.unknown_person_queries}; "
            f"photos also in the gallery: {self.queries_in_gallery})",
            f"rank-1 accuracy: {pct(self.rank1)}   rank-{self.top_k} accuracy: {pct(self.rank5)}",
        ]
        if self.confused_pairs:
            lines.append("most confused (true -> predicted, count): " + "; ".join(
                f"{p.true_person} -> {p.predicted_person} ({p.count})" for p in self.confused_pairs[:5]))
        for label, dist in (("true matches", self.true_scores), ("false matches", self.false_scores)):
            if dist.count:
                lines.append(f"{label}: n={dist.count}, mean {dist.mean:.3f}, p5 {dist.percentiles['p5']:.3f}, "
                             f"p50 {dist.percentiles['p50']:.3f}, p95 {dist.percentiles['p95']:.3f}")
        if self.suggested_threshold is not None:
            lines.append(f"suggested 'no close match' threshold: cosine {self.suggested_threshold:.3f} (keeps "
                         f"{KEEP_TRUE_SHARE:.0%} of true matches; {pct(self.false_above_threshold)} of false "
                         "matches score above it)")
        if self.likeness:
            lines.append(f"likeness fit (lookalike.likeness): LOOKALIKE_LIKENESS_CENTER={self.likeness['center']} "
                         f"LOOKALIKE_LIKENESS_WIDTH={self.likeness['width']}")
        if self.embedding_png:
            lines.append(f"embedding picture ({self.projection}): {self.embedding_png}")
        if self.weights:
            lines.append(f"weights: {self.weights}")
        return "\n".join(lines)


# -- embedding -------------------------------------------------------------------------------------------

def embed_sources(pipeline: FacePipeline, sources: Sequence[Any], batch_size: int = 32) -> EmbeddedSet:
    """The main face of every row of ``sources`` (as the indexer takes it, through the same
    rows-to-faces stage, :mod:`indexing.stage`), in batches; rows without a person name are left out.
    Sources with an id column are linked first, each on its own rows (:func:`indexing.sources.link_unlinked`)."""
    from indexing.sources import link_unlinked
    from indexing.stage import decoded_batches, main_faces
    from lookalike.batching import batched

    vectors: list[np.ndarray] = []
    people: list[str] = []
    digests: list[str] = []
    names: dict[str, str] = {}
    out = EmbeddedSet(np.zeros((0, 512), np.float32), people, names, digests)
    link_unlinked(sources)
    rows = (row for source in sources for row in source.rows(range(len(source))) if row.person)
    for batch in decoded_batches(pipeline, batched(rows, batch_size)):
        for photo in batch:
            out.photos += 1
            out.photos_per_person[photo.row.person] += 1
        readable = [photo for photo in batch if photo.image is not None]
        out.unreadable += len(batch) - len(readable)
        for photo, face in zip(readable, main_faces(pipeline, readable), strict=True):
            if face is None:
                out.no_face += 1
                continue
            row = photo.row
            names.setdefault(row.person, display_name(row.raw_name))
            vectors.append(face.vector)
            people.append(row.person)
            digests.append(row.sha256)
    out.vectors = np.stack(vectors).astype(np.float32) if vectors else np.zeros((0, 512), np.float32)
    return out


# -- scoring ---------------------------------------------------------------------------------------------

def person_scores(queries: np.ndarray, gallery: np.ndarray,
                  gallery_people: Sequence[str]) -> tuple[list[str], np.ndarray]:
    """Each query's best cosine against each gallery person: (person ids, (n_queries, n_people))."""
    persons = sorted(set(gallery_people))
    index = {p: i for i, p in enumerate(persons)}
    scores = queries @ gallery.T if len(queries) and len(gallery) else np.zeros((len(queries), len(gallery)))
    best = np.full((len(queries), len(persons)), -np.inf, np.float32)
    columns = np.array([index[p] for p in gallery_people], np.int64)
    for j in range(len(persons)):
        mask = columns == j
        if mask.any():
            best[:, j] = scores[:, mask].max(axis=1)
    return persons, best


def evaluate(pipeline: FacePipeline, gallery_sources: Sequence[Any], query_sources: Sequence[Any],
             top_k: int = 5, out_dir: Path | None = None, gallery_label: str = "gallery",
             query_label: str = "queries", projection: str = "auto", batch_size: int = 32) -> EvaluationReport:
    """Embed both sets, score every query against the gallery by person, write the report files."""
    gallery = embed_sources(pipeline, gallery_sources, batch_size)
    queries = embed_sources(pipeline, query_sources, batch_size)
    persons, best = person_scores(queries.vectors, gallery.vectors, gallery.people)
    column = {p: i for i, p in enumerate(persons)}
    known = [i for i, p in enumerate(queries.people) if p in column]
    ranks = _rank(queries.people, known, persons, column, best, top_k)
    true_scores, false_scores = ranks.true_scores, ranks.false_scores
    threshold = float(np.quantile(true_scores, 1 - KEEP_TRUE_SHARE)) if true_scores else None
    false_above = (float(np.mean(np.asarray(false_scores) >= threshold))
                   if threshold is not None and false_scores else None)
    gallery_digests = set(gallery.digests)
    report = EvaluationReport(
        gallery=gallery_label, queries=query_label,
        gallery_photos=gallery.photos, query_photos=queries.photos,
        gallery_faces=len(gallery.people), query_faces=len(queries.people),
        gallery_people=len(set(gallery.people)), query_people=len(set(queries.people)),
        gallery_no_face_share=_share(gallery.photos - len(gallery.people), gallery.photos),
        query_no_face_share=_share(queries.photos - len(queries.people), queries.photos),
        evaluated_queries=len(known), unknown_person_queries=len(queries.people) - len(known),
        queries_in_gallery=sum(d in gallery_digests for d in queries.digests),
        top_k=top_k,
        rank1=ranks.hits1 / len(known) if known else None, rank5=ranks.hitsk / len(known) if known else None,
        per_person_rank1={p: sum(v) / len(v) for p, v in sorted(ranks.per_person.items())},
        confused_pairs=[ConfusedPair(t, p, c) for (t, p), c in ranks.confusions.most_common(10)],
        true_scores=ScoreDistribution.of(true_scores), false_scores=ScoreDistribution.of(false_scores),
        suggested_threshold=None if threshold is None else round(threshold, 4),
        false_above_threshold=false_above,
        weights=pipeline.fingerprint.describe(),
    )
    report.likeness = _likeness_fit(true_scores, ranks.different_scores)
    if out_dir is not None:
        _write_files(report, gallery, Path(out_dir), gallery_label, projection)
    return report


@dataclass
class _Ranks:
    """Where each query's own person ranks among the gallery's people, and the scores around it."""

    hits1: int = 0
    hitsk: int = 0
    per_person: dict[str, list[int]] = field(default_factory=lambda: defaultdict(list))
    confusions: Counter = field(default_factory=Counter)
    true_scores: list[float] = field(default_factory=list)
    false_scores: list[float] = field(default_factory=list)
    different_scores: list[float] = field(default_factory=list)
    """Every query against every other person: for the likeness fit."""


def _rank(people: Sequence[str], known: Sequence[int], persons: Sequence[str], column: dict[str, int],
          best: np.ndarray, top_k: int) -> _Ranks:
    """The ranks of the ``known`` queries (their person is in the gallery) in ``best``'s person scores."""
    ranks = _Ranks()
    for i in known:
        truth = column[people[i]]
        order = np.argsort(-best[i], kind="stable")
        rank = int(np.where(order == truth)[0][0])
        ranks.hits1 += rank == 0
        ranks.hitsk += rank < top_k
        ranks.per_person[people[i]].append(int(rank == 0))
        if rank != 0:
            ranks.confusions[(people[i], persons[order[0]])] += 1
        ranks.true_scores.append(float(best[i, truth]))
        others = np.delete(best[i], truth)
        ranks.different_scores.extend(float(v) for v in others if np.isfinite(v))
        if len(others):
            ranks.false_scores.append(float(others.max()))
    return ranks


def _write_files(report: EvaluationReport, gallery: EmbeddedSet, out_dir: Path, gallery_label: str,
                 projection: str) -> None:
    """``report.json`` and, with any gallery face, ``embedding.png`` (the gallery projected to 2-D)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    if len(gallery.people):
        points, report.projection = project_2d(gallery.vectors, projection)
        png = out_dir / "embedding.png"
        draw_embedding(points, gallery.people, gallery.names, png,
                       title=f"{gallery_label}: {len(gallery.people)} faces, {report.projection.upper()}")
        report.embedding_png = str(png)
    (out_dir / "report.json").write_text(json.dumps(report.as_json(), indent=2))


def _likeness_fit(same: Sequence[float], different: Sequence[float]) -> dict[str, Any] | None:
    """lookalike.likeness's curve fitted to these scores (None when either list is empty)."""
    from lookalike.likeness import fit_likeness

    try:
        return fit_likeness(same, different).as_json()
    except ValueError:
        return None


def _share(part: int, whole: int) -> float:
    return part / whole if whole else 0.0


# -- the picture -----------------------------------------------------------------------------------------

def project_2d(vectors: np.ndarray, method: str = "auto") -> tuple[np.ndarray, str]:
    """(n, 2) coordinates: UMAP when installed, asked for (``auto`` or ``umap``) and given at least 10
    vectors, else PCA."""
    if method in ("auto", "umap") and len(vectors) >= 10:
        try:
            import umap  # type: ignore

            return np.asarray(umap.UMAP(n_components=2, random_state=0).fit_transform(vectors)), "umap"
        except ImportError:
            if method == "umap":
                log.warning("umap-learn is not installed: using PCA")
    centred = vectors - vectors.mean(axis=0, keepdims=True)
    if len(vectors) < 2:
        return np.zeros((len(vectors), 2)), "pca"
    _, _, components = np.linalg.svd(centred, full_matrices=False)
    points = centred @ components[:2].T
    if points.shape[1] < 2:
        points = np.pad(points, ((0, 0), (0, 2 - points.shape[1])))
    return points, "pca"


PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22",
           "#17becf", "#393b79", "#637939", "#8c6d31", "#843c39", "#7b4173", "#3182bd", "#e6550d", "#31a354",
           "#756bb1", "#636363"]


def draw_embedding(points: np.ndarray, people: Sequence[str], names: dict[str, str], path: Path,
                   title: str = "") -> Path:
    """A scatter plot of ``points`` coloured by person, with a legend (matplotlib if installed, else PIL)."""
    persons = sorted(set(people))
    colour = {p: PALETTE[i % len(PALETTE)] for i, p in enumerate(persons)}
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(8, 6), dpi=100)
        for p in persons:
            mask = np.array([q == p for q in people])
            ax.scatter(points[mask, 0], points[mask, 1], s=18, c=colour[p], label=names.get(p, p))
        ax.set_title(title)
        if len(persons) <= 30:
            ax.legend(fontsize=7, loc="best")
        fig.tight_layout()
        fig.savefig(path)
        plt.close(fig)
        return path
    except ImportError:
        pass
    from PIL import Image, ImageDraw

    width, height, legend_w, pad = 900, 640, 220, 30
    image = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(image)
    draw.text((pad, 8), title, fill="black")
    low, high = points.min(axis=0), points.max(axis=0)
    span = np.where(high - low > 0, high - low, 1.0)
    plot_w, plot_h = width - legend_w - 2 * pad, height - 2 * pad
    draw.rectangle((pad, pad, pad + plot_w, pad + plot_h), outline="#cccccc")
    for (x, y), p in zip(points, people, strict=True):
        px = pad + (x - low[0]) / span[0] * plot_w
        py = pad + plot_h - (y - low[1]) / span[1] * plot_h
        draw.ellipse((px - 4, py - 4, px + 4, py + 4), fill=colour[p], outline="black")
    for i, p in enumerate(persons[:40]):
        y = pad + i * 15
        draw.rectangle((width - legend_w + 5, y + 2, width - legend_w + 15, y + 12), fill=colour[p])
        draw.text((width - legend_w + 22, y), names.get(p, p)[:28], fill="black")
    image.save(path, format="PNG")
    return path


# -- command line ----------------------------------------------------------------------------------------

def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m evaluation",
        description="Identification accuracy of the face pipeline: a gallery (as indexed) against query photos "
                    "of the same people. Works in memory; the index is not touched.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--gallery", required=True, help="image folder (one sub-folder per person) or dataset")
    parser.add_argument("--queries", required=True, help="other photos of the same people, same forms")
    parser.add_argument("--gallery-split", default=None, help="dataset split of the gallery")
    parser.add_argument("--queries-split", default=None, help="dataset split of the queries")
    parser.add_argument("--top-k", type=int, default=5, help="k of the rank-k accuracy")
    parser.add_argument("--out", default="evaluation", help="folder for report.json and embedding.png")
    parser.add_argument("--projection", choices=("auto", "pca", "umap"), default="auto")
    parser.add_argument("--batch-size", type=int, default=32)
    return parser


def main(argv: Sequence[str] | None = None, pipeline: FacePipeline | None = None) -> int:
    """Run the evaluation; 0 on success, 2 on a configuration error, 1 when nothing could be evaluated."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    from indexing.sources import SourceOptions, open_sources
    from lookalike.settings import Settings

    try:
        gallery = open_sources(args.gallery, SourceOptions(split=args.gallery_split))
        queries = open_sources(args.queries, SourceOptions(split=args.queries_split))
        pipeline = pipeline or FacePipeline(Settings().face_config())
        report = evaluate(pipeline, gallery, queries, args.top_k, Path(args.out), args.gallery, args.queries,
                          args.projection, args.batch_size)
    except (LookalikeError, ValueError, OSError) as exc:
        print(f"error: {' '.join(str(exc).split())}", file=sys.stderr)
        return 2
    print(report.summary())
    print(f"report: {Path(args.out) / 'report.json'}")
    return 0 if report.evaluated_queries else 1
