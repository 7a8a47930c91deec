"""Helpers shared by the benchmark scripts: machine info, percentiles, synthetic identity-like vectors,
payloads of real size, test photos, and stand-in weights when the real ones are missing.

Not a test module: the scripts print figures (Markdown tables); nothing here asserts a timing.
"""

from __future__ import annotations

import atexit
import base64
import io
import os
import platform
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, redirect_stdout
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
FACES = ROOT / "tests" / "data"  # the committed test photos (tests/data/README.md)
FIVE_TRAIN = FACES / "five_celebs" / "train"
FIVE_VAL = FACES / "five_celebs" / "val"
LFW = FACES / "lfw"
MULTIFACE = FACES / "multiface.jpg"
DIM = 512


# -- machine -----------------------------------------------------------------------------------------

def _version(name: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(name)
    except PackageNotFoundError:
        return "not installed"


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def load_average() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "unknown"


def machine_info() -> str:
    """A Markdown block: cores, CPU model, load at start, package versions."""
    import torch

    packages = ["torch", "openvino", "qdrant-client", "qdrant-edge-py", "gradio", "facenet-pytorch", "numpy"]
    lines = [
        f"- machine: {os.cpu_count()} cores, {cpu_model()}, Python {platform.python_version()}, "
        f"torch threads {torch.get_num_threads()}",
        f"- load average at start (1/5/15 min): {load_average()}",
        "- versions: " + ", ".join(f"{p} {_version(p)}" for p in packages),
    ]
    return "\n".join(lines)


def command_line() -> str:
    return "python " + " ".join([os.path.relpath(sys.argv[0], ROOT)] + sys.argv[1:])


def header(title: str) -> str:
    return f"## {title}\n\n`{command_line()}`\n\n{machine_info()}\n"


# -- numbers -----------------------------------------------------------------------------------------

def close_app(app) -> None:
    """Close a launched Gradio app without its "Closing server running on port" line, which would land
    in the Markdown these scripts print."""
    with redirect_stdout(io.StringIO()):
        app.close()


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def launch_app(app, **kwargs) -> str:
    """Launch a Gradio app on a free port of 127.0.0.1 without blocking (``kwargs``: more of
    ``launch``'s arguments); its root URL, ending in /. Close it with :func:`close_app`."""
    port = free_port()
    app.launch(prevent_thread_lock=True, server_name="127.0.0.1", server_port=port, quiet=True, **kwargs)
    return f"http://127.0.0.1:{port}/"


def write_photos(folder: Path, photos: Sequence[bytes], stem: str) -> list[str]:
    """Encoded photos written to ``folder`` as ``<stem>_<i>.jpg``: their paths, in order."""
    paths = []
    for i, data in enumerate(photos):
        path = Path(folder) / f"{stem}_{i}.jpg"
        path.write_bytes(data)
        paths.append(str(path))
    return paths


def p50_p95(samples_s: Sequence[float]) -> tuple[float, float]:
    """Median and 95th percentile of durations in seconds, as milliseconds."""
    array = np.asarray(samples_s, np.float64) * 1000
    return float(np.percentile(array, 50)), float(np.percentile(array, 95))


def interleaved(paths: dict[str, Callable[[int], Sequence[float]]], runs: int,
                rounds: int) -> dict[str, list[float]]:
    """Time several paths in turn: ``rounds`` rounds, each running every path once for its share of
    ``runs`` timed runs (the order reversed every other round), the samples pooled per path.

    This project's machines drift (the same script ran 2x slower in a busy minute), so paths timed one
    after the other can differ by the minute they ran in; taken in alternating blocks, a drift shifts
    every path alike and their ratio holds. ``paths``: name -> a function that takes a number of timed
    runs, does its own warm-up and returns their durations in seconds. Returns name -> all its durations.
    """
    samples: dict[str, list[float]] = {name: [] for name in paths}
    names = list(paths)
    for round_index in range(rounds):
        share = runs // rounds + (1 if round_index < runs % rounds else 0)
        for name in names if round_index % 2 == 0 else names[::-1]:
            if share:
                samples[name].extend(paths[name](share))
    return samples


def table(columns: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A Markdown table."""
    def cell(value: object) -> str:
        if isinstance(value, float):
            return f"{value:.3g}" if abs(value) < 10 else f"{value:.1f}" if abs(value) < 1000 else f"{value:.0f}"
        return str(value)

    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


class Stopwatch:
    """Accumulated seconds per stage name."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self.calls: dict[str, int] = {}

    @contextmanager
    def time(self, stage: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[stage] = self.seconds.get(stage, 0.0) + time.perf_counter() - start
            self.calls[stage] = self.calls.get(stage, 0) + 1

    def wrap(self, owner: object, attribute: str, stage: str) -> None:
        """Time every call of ``owner.attribute`` (an instance attribute shadows the method)."""
        inner = getattr(owner, attribute)

        def timed(*args, **kwargs):
            with self.time(stage):
                return inner(*args, **kwargs)

        setattr(owner, attribute, timed)


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS"):
            return int(line.split()[1]) / 1024
    return float("nan")


def peak_rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM"):
            return int(line.split()[1]) / 1024
    return float("nan")


def disk_mb(path: Path) -> float:
    return sum(p.stat().st_size for p in Path(path).rglob("*") if p.is_file()) / 2**20


# -- synthetic data ----------------------------------------------------------------------------------

def unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=-1, keepdims=True)).astype(np.float32)


def identity_vectors(n: int, per_person: int = 17, seed: int = 0,
                     chunk: int = 100_000) -> tuple[np.ndarray, np.ndarray]:
    """``n`` unit 512-d vectors in clusters of ``per_person`` (one cluster per synthetic person).

    Each vector is its person's centre plus noise of norm ~1: cos(photo, centre) ~ 0.71 and
    cos(photo, photo of the same person) ~ 0.5, close to FaceNet's same-identity spread; unrelated
    people are near 0. Returns (vectors (n, 512) float32, person index (n,) int64).
    """
    rng = np.random.default_rng(seed)
    people = max(1, -(-n // per_person))
    centres = unit(rng.standard_normal((people, DIM), dtype=np.float32))
    person = np.arange(n) // per_person
    out = np.empty((n, DIM), np.float32)
    for start in range(0, n, chunk):
        stop = min(n, start + chunk)
        noise = rng.standard_normal((stop - start, DIM), dtype=np.float32) / np.sqrt(DIM)
        out[start:stop] = unit(centres[person[start:stop]] + noise)
    return out, person


def identity_queries(n_people: int, count: int, seed: int = 1, per_person: int = 17) -> np.ndarray:
    """``count`` new photos of existing synthetic people (same centres as :func:`identity_vectors`)."""
    rng = np.random.default_rng(0)  # the centres of identity_vectors(seed=0)
    centres = unit(rng.standard_normal((n_people, DIM), dtype=np.float32))
    qrng = np.random.default_rng(seed)
    chosen = qrng.integers(0, n_people, count)
    return unit(centres[chosen] + qrng.standard_normal((count, DIM), dtype=np.float32) / np.sqrt(DIM))


def exact_top_k(queries: np.ndarray, vectors: np.ndarray, k: int = 10, chunk: int = 200_000) -> np.ndarray:
    """Indices of the exact top-k cosine neighbours (vectors are unit length), best first."""
    best_scores = np.full((len(queries), 0), -np.inf, np.float32)
    best_index = np.zeros((len(queries), 0), np.int64)
    for start in range(0, len(vectors), chunk):
        scores = queries @ vectors[start:start + chunk].T
        top = np.argpartition(-scores, min(k, scores.shape[1] - 1), axis=1)[:, :k]
        best_scores = np.concatenate([best_scores, np.take_along_axis(scores, top, 1)], axis=1)
        best_index = np.concatenate([best_index, top + start], axis=1)
        keep = np.argsort(-best_scores, axis=1)[:, :k]
        best_scores = np.take_along_axis(best_scores, keep, 1)
        best_index = np.take_along_axis(best_index, keep, 1)
    return best_index


# -- synthetic people (person-level recall) --------------------------------------------------------

PEOPLE_SPREAD = {"shared": 1.0, "traits": 1.6, "trait_dims": 16, "noise": (0.45, 0.80), "zipf": 2.0,
                 "max_photos": 170}
"""The person generator's parameters (:class:`SyntheticPeople`), chosen so that cosines read like real
FaceNet (vggface2) ones: same person about 0.6-0.8, different people mostly 0.0-0.4 (median about
0.15), and a person's best look-alike among a few hundred thousand others about 0.55-0.6."""


class SyntheticPeople:
    """Synthetic identities with a realistic cosine spread and a long tail of photos per person.

    A person's centre is ``unit(shared * m + traits * B u + r)``: ``m`` one unit direction all faces
    share (different people are not orthogonal: FaceNet's different-person cosines centre near 0.15),
    ``B u`` a point of a ``trait_dims``-dimensional subspace (``u`` ~ N(0, I/trait_dims); traits such as
    age or sex, which make some strangers much closer than others), ``r`` ~ N(0, I/512) the person's own
    part. A photo is ``unit(centre + s * e)``, ``e`` ~ N(0, I/512), with ``s`` drawn per photo from
    ``noise`` (a clean photo or a poor one). Photos per person follow Zipf(``zipf``) capped at
    ``max_photos``: 61 % of people have one photo (like tmdb's one profile photo), the mean is about 4
    (the product's default index: about 45,000 photos of 11,000 people), a few have 170.
    """

    def __init__(self, seed: int = 0, spread: dict | None = None):
        self.spread = dict(PEOPLE_SPREAD, **(spread or {}))
        rng = np.random.default_rng([seed, 0])
        self.shared = unit(rng.standard_normal(DIM, dtype=np.float32))
        self.basis = np.linalg.qr(rng.standard_normal((DIM, self.spread["trait_dims"])))[0].T.astype(np.float32)
        self.seed = seed

    def centres(self, rng: np.random.Generator, count: int) -> np.ndarray:
        k = self.spread["trait_dims"]
        traits = rng.standard_normal((count, k), dtype=np.float32) / np.sqrt(k)
        own = rng.standard_normal((count, DIM), dtype=np.float32) / np.sqrt(DIM)
        return unit(self.spread["shared"] * self.shared + self.spread["traits"] * (traits @ self.basis) + own)

    def photos(self, rng: np.random.Generator, centres: np.ndarray) -> np.ndarray:
        low, high = self.spread["noise"]
        scale = rng.uniform(low, high, (len(centres), 1)).astype(np.float32)
        return unit(centres + scale * rng.standard_normal(centres.shape, dtype=np.float32) / np.sqrt(DIM))

    def faces(self, n: int, chunk: int = 100_000) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``n`` photos, grouped by person: (vectors (n, 512) float32, person index (n,), the people's
        centres). Person ``p``'s photos are contiguous; the last person may have fewer than drawn."""
        rng = np.random.default_rng([self.seed, 1])
        counts = np.minimum(rng.zipf(self.spread["zipf"], n), self.spread["max_photos"])
        people = int(np.searchsorted(np.cumsum(counts), n)) + 1
        person = np.repeat(np.arange(people), counts[:people])[:n]
        centres = self.centres(rng, people)
        out = np.empty((n, DIM), np.float32)
        for start in range(0, n, chunk):
            stop = min(n, start + chunk)
            out[start:stop] = self.photos(rng, centres[person[start:stop]])
        return out, person, centres

    def queries(self, centres: np.ndarray, count: int) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """Two kinds of ``count`` visitor faces: ``indexed`` (a new photo of a person in the index,
        people drawn uniformly) and ``stranger`` (a photo of a new person, nobody in the index: their
        top people are near-ties). Kind -> (vectors, the indexed person or -1)."""
        rng = np.random.default_rng([self.seed, 2])
        chosen = rng.integers(0, len(centres), count)
        strangers = self.photos(rng, self.centres(rng, count))
        return {"indexed": (self.photos(rng, centres[chosen]), chosen),
                "stranger": (strangers, np.full(count, -1))}


def person_starts(person: np.ndarray) -> np.ndarray:
    """Where each person's run of rows starts (rows grouped by person, as :meth:`SyntheticPeople.faces`)."""
    return np.flatnonzero(np.r_[True, person[1:] != person[:-1]])


def exact_top_people(queries: np.ndarray, vectors: np.ndarray, starts: np.ndarray, k: int,
                     batch: int = 32) -> tuple[np.ndarray, np.ndarray]:
    """The exact ``k`` best people of each query, best first, by each person's best cosine over all of
    their photos (a full scan; rows grouped by person, ``starts`` from :func:`person_starts`).
    Returns (people (queries, k), their scores (queries, k))."""
    people = np.empty((len(queries), k), np.int64)
    scores = np.empty((len(queries), k), np.float32)
    for q in range(0, len(queries), batch):
        best = np.maximum.reduceat(queries[q:q + batch] @ vectors.T, starts, axis=1)
        top = np.argpartition(-best, k - 1, axis=1)[:, :k]
        top_scores = np.take_along_axis(best, top, 1)
        order = np.argsort(-top_scores, axis=1)
        people[q:q + batch] = np.take_along_axis(top, order, 1)
        scores[q:q + batch] = np.take_along_axis(top_scores, order, 1)
    return people, scores


def person_recall(exact: Sequence[Sequence[object]] | np.ndarray, got: Sequence[Sequence[object]], k: int) -> float:
    """Mean over queries of |exact top-k people & the k people returned| / k."""
    return float(np.mean([len(set(e[:k]) & set(g[:k])) / k for e, g in zip(exact, got, strict=True)]))


_THUMBNAIL: str | None = None


def thumbnail_b64() -> str:
    """A real ~4 KB base64 face thumbnail JPEG (128x128, as the indexer writes)."""
    global _THUMBNAIL
    if _THUMBNAIL is None:
        from PIL import Image

        from lookalike.images import encode_jpeg

        photo = sorted(LFW.rglob("*.jpg"))[0]
        with Image.open(photo) as image:
            face = image.convert("RGB").crop((62, 62, 188, 188)).resize((128, 128))
        _THUMBNAIL = base64.b64encode(encode_jpeg(face, max_side=128, quality=90)).decode("ascii")
    return _THUMBNAIL


def open_store(settings, engine: str):
    """The face store on ``engine``: ``edge`` (the product's embedded store, ``FaceStore.open``) or ``local``
    (qdrant-client's local mode, no longer a product option, kept here for comparison)."""
    from lookalike.index.store import FaceStore

    if engine == "edge":
        return FaceStore.open(settings.store_config())
    from lookalike.index.storage.port import CollectionSettings
    from lookalike.index.storage.qdrant import QdrantEngine

    path = settings.data_dir / "qdrant"
    path.mkdir(parents=True, exist_ok=True)
    return FaceStore(QdrantEngine.in_process(str(path)), settings.collection, where=f"local mode at {path}",
                     serialize=True, collection_defaults=CollectionSettings.for_server(quantization=None))


def synthetic_payload(person: int, row: int) -> dict:
    """A payload of real size: name, person_id, a ~4 KB thumbnail, sources and metadata."""
    return {
        "name": f"Synthetic Person {person}",
        "person_id": f"synthetic-person-{person}",
        "content_sha256": f"{row:064x}",
        "thumbnail": thumbnail_b64(),
        "sources": [f"synthetic:train:{row}"],
        "metadata": {"known_for_department": "Acting", "biography": "A synthetic person for benchmarks."},
        "box": [10.0, 12.0, 150.0, 170.0],
        "probability": 0.999,
    }


# -- photos --------------------------------------------------------------------------------------------

def canvas_photos(width: int, height: int, count: int = 5) -> list[bytes]:
    """``count`` JPEGs of ``width`` x ``height``: a different real face photo from five_celebs/val
    (one person each, in turn) resized to 70 % of the height and pasted onto a neutral background."""
    from PIL import Image, ImageFilter

    people = sorted(p for p in FIVE_VAL.iterdir() if p.is_dir())
    files = []
    for i in range(count):
        photos = sorted(people[i % len(people)].glob("*.jpg"))
        files.append(photos[(i // len(people)) % len(photos)])
    out = []
    for i, file in enumerate(files):
        with Image.open(file) as opened:
            photo = opened.convert("RGB")
        background = photo.resize((width, height)).filter(ImageFilter.GaussianBlur(25))
        scale = 0.7 * height / photo.height
        face = photo.resize((max(1, round(photo.width * scale)), round(photo.height * scale)), Image.Resampling.BICUBIC)
        x = (width - face.width) // 2 + (i % 3 - 1) * width // 8
        background.paste(face, (max(0, x), (height - face.height) // 2))
        buffer = io.BytesIO()
        background.save(buffer, format="JPEG", quality=90)
        out.append(buffer.getvalue())
    return out


# -- weights -------------------------------------------------------------------------------------------

def ensure_weights() -> str:
    """The weights the benchmark runs with: the real file, or stand-in weights in a temporary
    TORCH_HOME (deleted at exit) when it is missing. Timings do not depend on the weights' values."""
    from lookalike.faces.facenet import default_weights_path, file_sha256

    given = os.environ.get("LOOKALIKE_WEIGHTS")
    path = Path(given) if given else default_weights_path()
    if path.is_file():
        return f"{path} (sha256 {file_sha256(path)[:12]}; timings do not depend on which weights)"
    home = tempfile.mkdtemp(prefix="bench_torch_home_")
    atexit.register(shutil.rmtree, home, True)
    subprocess.run([sys.executable, str(ROOT / "tests" / "support.py"), home], check=True, capture_output=True)
    os.environ["TORCH_HOME"] = home
    return "stand-in weights in a temporary TORCH_HOME (timings only: any score made with them means nothing)"


def parse_list(text: str, kind=str) -> list:
    return [kind(v.strip()) for v in text.split(",") if v.strip()]
