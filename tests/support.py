"""What the tests share, in one place: the committed test data, the stand-in FaceNet weights made from
it, datasets built from it in the hub datasets' layouts, and small helpers (free ports, photo folders).

Everything here works in a bare clone: the data lies in ``tests/data`` (see its README), nothing is
downloaded. ``../shared`` is never read.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import re
import shutil
import socket
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if __name__ == "__main__":  # `python tests/support.py DIR` from a clone: the tree's packages, as pytest has them
    import sys

    sys.path.insert(0, str(ROOT))

from lookalike.fingerprint import ModelFingerprint  # noqa: E402

DATA = ROOT / "tests" / "data"
FIVE_TRAIN = DATA / "five_celebs" / "train"
FIVE_VAL = DATA / "five_celebs" / "val"
LFW = DATA / "lfw"
MULTIFACE = DATA / "multiface.jpg"
BIOS_JSON = DATA / "bios.json"

FIVE_CELEBS_NAMES = {"ben_afflek": "Ben Affleck", "elton_john": "Elton John", "jerry_seinfeld": "Jerry Seinfeld",
                     "madonna": "Madonna", "mindy_kaling": "Mindy Kaling"}
"""The five_celebs folders' people as the hub dataset spells them (the folder ``ben_afflek`` is misspelt)."""

WEIGHTS_FILE_NAME = "20180402-114759-vggface2.pt"
VGGFACE2_CLASSES = 8631
STANDIN_SEED = 0


def image_files(folder: Path) -> list[Path]:
    """Every image file below ``folder``, sorted."""
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() in {".jpg", ".jpeg", ".png"})


def people(folder: Path) -> list[Path]:
    """The per-person sub-folders of a photo folder, sorted."""
    return sorted(p for p in folder.iterdir() if p.is_dir())


def copy_photos(source: Path, dest: Path, per_person: int | None = None,
                only: Iterable[str] | None = None, start: int = 0) -> Path:
    """A folder with one sub-folder per person of ``source`` (or of the names in ``only``), holding
    ``per_person`` photos of each (all when None) from the ``start``-th on, in name order; returns ``dest``."""
    chosen = [source / name for name in only] if only is not None else people(source)
    for person in chosen:
        (dest / person.name).mkdir(parents=True, exist_ok=True)
        for photo in image_files(person)[start:None if per_person is None else start + per_person]:
            shutil.copy(photo, dest / person.name / photo.name)
    return dest


ORIENTATION = 0x0112
"""The EXIF Orientation tag."""


def rotated_copy(source: Path, path: Path) -> Path:
    """The photo with its pixels turned 90 degrees counter-clockwise and Orientation=6 (turn clockwise)."""
    from PIL import Image

    with Image.open(source) as original:
        turned = original.convert("RGB").transpose(Image.Transpose.ROTATE_90)
    exif = Image.Exif()
    exif[ORIENTATION] = 6
    turned.save(path, quality=95, exif=exif.tobytes())
    return path


def iou(a, b) -> float:
    """Intersection over union of two boxes ``[x1, y1, x2, y2]``."""
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def free_port() -> int:
    """A TCP port of 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def serve(demo, **launch) -> str:
    """A Gradio app launched in this process on a free port of 127.0.0.1, without blocking (``launch``: more
    of ``demo.launch``'s arguments): its root URL, ending in /. Close it with ``demo.close()``."""
    port = free_port()
    demo.launch(prevent_thread_lock=True, server_name="127.0.0.1", server_port=port, quiet=True, **launch)
    return f"http://127.0.0.1:{port}/"


def app_settings(settings, **fields):
    """The web app's settings (``webapp.settings.AppSettings``) with the core ``settings``' values and ``fields``."""
    from webapp.settings import AppSettings

    return AppSettings(**{**settings.model_dump(), **fields})


def space_upload():
    """``.github/space_upload.py`` (the Space sync script) as a module."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("space_upload", ROOT / ".github" / "space_upload.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@dataclass(frozen=True)
class Request:
    """One request a :func:`recording_server` received."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass(frozen=True)
class Refusal:
    """An error answer of a :func:`recording_server`: HTTP ``status`` with the JSON ``body``."""

    status: int
    body: Any


@contextlib.contextmanager
def recording_server(answer: Callable[[Request, str], Any]) -> Iterator[tuple[str, list[Request]]]:
    """An HTTP server on 127.0.0.1 standing in for a remote API: every request is recorded, and
    ``answer(request, base_url)`` gives the JSON it is answered with (status 200), or a
    :class:`Refusal` to answer with instead. Yields the base URL and the list of requests, in order."""
    requests: list[Request] = []

    class Handler(BaseHTTPRequestHandler):
        def _handle(self) -> None:
            size = int(self.headers.get("Content-Length") or 0)
            request = Request(self.command, self.path, {k.lower(): v for k, v in self.headers.items()},
                              self.rfile.read(size) if size else b"")
            requests.append(request)
            reply = answer(request, base)
            status, reply = (reply.status, reply.body) if isinstance(reply, Refusal) else (200, reply)
            data = json.dumps(reply).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_PUT = do_DELETE = _handle

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    base = f"http://127.0.0.1:{server.server_address[1]}"
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield base, requests
    finally:
        server.shutdown()
        server.server_close()


# -- the app's REST API, as curl calls it ------------------------------------------------------------


def rest_upload(http, url: str, data: bytes, name: str = "photo.jpg", headers: dict | None = None):
    """``POST /gradio_api/upload`` of one file: the response (its JSON is the list of stored paths)."""
    return http.post(f"{url}gradio_api/upload", files={"files": (name, data)}, headers=headers or {})


def rest_call(http, url: str, data: list, headers: dict | None = None,
              api: str = "lookalike") -> tuple[int, str | None, object]:
    """``POST /gradio_api/call/<api>`` with ``data``, then its event stream: (the POST's status, the last
    event's name, its data as JSON). A refused POST gives (status, None, its JSON body)."""
    import json

    # json.dumps as a lenient client sends it (NaN written as NaN): the app must refuse such values itself
    submitted = http.post(f"{url}gradio_api/call/{api}", content=json.dumps({"data": data}),
                          headers={"content-type": "application/json", **(headers or {})})
    if submitted.status_code != 200:
        return submitted.status_code, None, submitted.json()
    event, payload = None, None
    stream = http.get(f"{url}gradio_api/call/{api}/{submitted.json()['event_id']}", headers=headers or {})
    for line in stream.text.splitlines():
        if line.startswith("event:"):
            event = line.removeprefix("event:").strip()
        elif line.startswith("data:") and event in ("complete", "error"):
            payload = json.loads(line.removeprefix("data:").strip())
    return submitted.status_code, event, payload


def readme_block(section: str, language: str) -> str:
    """The first ``language`` code block of the README's section whose heading (any level) is ``section``."""
    text = (ROOT / "README.md").read_text()
    heading = re.search(rf"^#+ {re.escape(section)}\s*$", text, flags=re.M)
    assert heading, f"the README has no section {section!r}"
    block = re.search(rf"```{language}\n(.*?)```", text[heading.end():], flags=re.S)
    assert block, f"the README's {section!r} section has no {language} block"
    return block.group(1)


def file_data(path: str) -> dict:
    """The API's photo input for a path that ``rest_upload`` returned."""
    return {"path": path, "meta": {"_type": "gradio.FileData"}}


# -- the app's API through gradio_client -------------------------------------------------------------


def predict(client, photo: Path | str, *args) -> dict:
    """``/lookalike`` through gradio_client for the photo file ``photo`` and the optional inputs ``args``
    (top_k, gender, department, well_known_only): the answer. ``client``: a ``gradio_client.Client``, or
    the app's URL (a client is made for this one call)."""
    from gradio_client import Client, handle_file

    if isinstance(client, str):
        client = Client(client, verbose=False)
    return client.predict(handle_file(str(photo)), *args, api_name="/lookalike")


def predict_once_past(client, photo: Path | str, reason: str, timeout_s: float, pause_s: float = 1.0) -> dict:
    """:func:`predict` again every ``pause_s`` while the app refuses with ``reason`` (the index still filling,
    the store held by another process): its first other answer, or the last one after ``timeout_s``."""
    import time

    from gradio_client import Client

    if isinstance(client, str):
        client = Client(client, verbose=False)
    deadline = time.monotonic() + timeout_s
    while True:
        out = predict(client, photo)
        if out.get("reason") != reason or time.monotonic() > deadline:
            return out
        time.sleep(pause_s)


# -- datasets in the hub layouts, built from the committed photos ------------------------------------


def bios_records() -> list[dict]:
    """The rows of ``bios.json``: TMDB-style columns, ``photo`` relative to ``tests/data``."""
    return json.loads(BIOS_JSON.read_text(encoding="utf-8"))


def build_bios_dataset(dest: Path) -> Path:
    """A local dataset in the layout of ``ashraq/tmdb-celeb-10k`` (parquet under ``data/``): one row per
    person of ``bios.json``, an ``image`` column (the person's first LFW photo, its bytes unchanged), a
    ``name`` column and the TMDB metadata columns. ``datasets.load_dataset(str(dest))`` reads it offline."""
    import datasets

    records = bios_records()
    columns = {key: [r[key] for r in records] for key in records[0] if key != "photo"}
    features = datasets.Features({
        "adult": datasets.Value("bool"), "also_known_as": datasets.Value("string"),
        "biography": datasets.Value("string"), "birthday": datasets.Value("string"),
        "deathday": datasets.Value("string"), "gender": datasets.Value("int64"),
        "homepage": datasets.Value("string"), "id": datasets.Value("int64"), "imdb_id": datasets.Value("string"),
        "known_for_department": datasets.Value("string"), "name": datasets.Value("string"),
        "place_of_birth": datasets.Value("string"), "popularity": datasets.Value("float64"),
        "profile_path": datasets.Value("string"), "image": datasets.Image(),
    })
    columns["image"] = [{"bytes": (DATA / r["photo"]).read_bytes(), "path": None} for r in records]
    _write_parquet(datasets.Dataset.from_dict(columns, features=features), dest, "train")
    return dest


def build_simple_facenet_dataset(dest: Path) -> Path:
    """A local dataset in the layout of ``lansinuote/simple_facenet``: parquet shards under ``data/``,
    columns ``image`` and ``label`` (the name as a string, :data:`FIVE_CELEBS_NAMES`); five_celebs train -> train,
    val -> test."""
    import datasets

    features = datasets.Features({"image": datasets.Image(), "label": datasets.Value("string")})
    for split, folder in (("train", FIVE_TRAIN), ("test", FIVE_VAL)):
        photos = image_files(folder)
        data = {"image": [{"bytes": p.read_bytes(), "path": None} for p in photos],
                "label": [FIVE_CELEBS_NAMES[p.parent.name] for p in photos]}
        _write_parquet(datasets.Dataset.from_dict(data, features=features), dest, split)
    return dest


def build_multifile_dataset(dest: Path, files: int = 5, per_person: int = 2) -> Path:
    """A local dataset in the hub's multi-file layout, ``data/train-0000k-of-0000n.parquet`` (``files``
    files), as a dataset several shards read a part of: the first ``per_person`` LFW photos of each
    person, people in folder order and spread over the files in runs of unequal length (file k holds
    k + 1 people more or less, so the row counts differ). Columns: ``image``, ``name`` (the folder name
    with spaces) and ``caption`` (``"<name>, row <n>"``: a metadata field whose first value, by
    precedence, is the person's). The last file ends with a copy of the first row's photo under another
    name ("Photo Double"), so one photo is in two files. Its ``README.md`` has the card data that
    ``push_to_hub`` writes (``configs`` with the data files, ``dataset_info`` with the split's row
    count), which ``datasets`` reads and checks a load against. ``datasets.load_dataset(str(dest))``
    reads it."""
    import datasets

    rows = [(photo, person.name.replace("_", " ")) for person in people(LFW)
            for photo in image_files(person)[:per_person]]
    rows.append((rows[0][0], "Photo Double"))
    weights = [k + 1 for k in range(files)]
    bounds = [round(len(rows) * sum(weights[:k]) / sum(weights)) for k in range(files + 1)]
    features = datasets.Features({"image": datasets.Image(), "name": datasets.Value("string"),
                                  "caption": datasets.Value("string")})
    datasets.disable_progress_bars()
    (dest / "data").mkdir(parents=True, exist_ok=True)
    for k in range(files):
        part = rows[bounds[k]:bounds[k + 1]]
        data = {"image": [{"bytes": photo.read_bytes(), "path": None} for photo, _ in part],
                "name": [name for _, name in part],
                "caption": [f"{name}, row {bounds[k] + n}" for n, (_, name) in enumerate(part)]}
        datasets.Dataset.from_dict(data, features=features).to_parquet(
            str(dest / "data" / f"train-{k:05d}-of-{files:05d}.parquet"))
    _write_card(dest, features, len(rows))
    return dest


def _write_card(dest: Path, features, rows: int) -> None:
    """The ``README.md`` card that ``push_to_hub`` writes for one ``train`` split in ``data/train-*``."""
    import datasets
    import yaml

    card = {"configs": [{"config_name": "default", "data_files": [{"split": "train", "path": "data/train-*"}]}],
            "dataset_info": {**datasets.DatasetInfo(features=features)._to_yaml_dict(),
                             "splits": [{"name": "train", "num_examples": rows}]}}
    (dest / "README.md").write_text(f"---\n{yaml.safe_dump(card, sort_keys=False)}---\n", encoding="utf-8")


TMDB_FEATURES_SPEC = {
    "adult": "bool", "also_known_as": "string", "biography": "string", "birthday": "string", "deathday": "string",
    "gender": "int64", "homepage": "string", "id": "int64", "imdb_id": "string", "known_for_department": "string",
    "name": "string", "place_of_birth": "string", "popularity": "float64", "profile_path": "string",
}
"""The TMDB columns of ``ashraq/tmdb-celeb-10k`` and ``ashraq/tmdb-people-image`` (beside ``image``)."""

TMDB_PEOPLE_FILES: list[list[tuple[str, int, float, str]]] = [
    [("Anthony Blair", 900029, 40.0, "lfw/Tony_Blair/1"),
     ("Lula", 900020, 12.0, "lfw/Luiz_Inacio_Lula_da_Silva/1"),
     ("Angelina Jolie", 900002, 35.0, "lfw/Angelina_Jolie/1"),
     ("Alejandro Toledo", 900000, 31.0, "lfw/Alejandro_Toledo/0")],
    [(name, 990001 + k, 0.5 + k / 10, f"five_celebs/train/{folder}/0")
     for k, (folder, name) in enumerate(FIVE_CELEBS_NAMES.items())],
    [("Hans Blix", 990010, 0.4, "five_celebs/val/jerry_seinfeld/0"),
     ("Colin Powell", 900005, 26.0, "lfw/Colin_Powell/1"),
     ("Kofi Annan", 900018, 13.0, "lfw/Kofi_Annan/1")],
]
"""The rows of :func:`build_tmdb_people_dataset`, file by file: (name, TMDB id, popularity, photo as
``<folder under tests/data>/<n-th photo>``). Ids 9000xx are people of ``bios.json`` (the tmdb-celeb-10k
fixture), some spelt otherwise ("Anthony Blair" is bios' "Tony Blair", "Lula" its "Luiz Inacio Lula da
Silva"), with their second LFW photo, except Alejandro Toledo's, the very photo bios has; ids 9900xx are
people bios does not have, little known (popularity below 1): the five_celebs people and a namesake of
bios' Hans Blix (another TMDB id, another face)."""


def tmdb_people_photo(where: str) -> Path:
    """The photo a :data:`TMDB_PEOPLE_FILES` row names."""
    folder, _, number = where.rpartition("/")
    return image_files(DATA / folder)[int(number)]


def build_tmdb_people_dataset(dest: Path) -> Path:
    """A local dataset in the layout of ``ashraq/tmdb-people-image``: several parquet files
    (``data/train-0000k-of-0000n.parquet``, the rows of :data:`TMDB_PEOPLE_FILES`, files of unequal
    size), the TMDB columns and ``image``, and the card ``push_to_hub`` writes. One photo per person, as
    there; ``datasets.load_dataset(str(dest))`` reads it offline."""
    import datasets

    features = datasets.Features({**{c: datasets.Value(t) for c, t in TMDB_FEATURES_SPEC.items()},
                                  "image": datasets.Image()})
    datasets.disable_progress_bars()
    (dest / "data").mkdir(parents=True, exist_ok=True)
    for k, rows in enumerate(TMDB_PEOPLE_FILES):
        columns: dict[str, list] = {c: [None] * len(rows) for c in TMDB_FEATURES_SPEC}
        columns.update(name=[r[0] for r in rows], id=[r[1] for r in rows], popularity=[r[2] for r in rows],
                       adult=[False] * len(rows), known_for_department=["Acting"] * len(rows),
                       biography=[f"{r[0]}, a TMDB person (id {r[1]})." for r in rows],
                       image=[{"bytes": tmdb_people_photo(r[3]).read_bytes(), "path": None} for r in rows])
        datasets.Dataset.from_dict(columns, features=features).to_parquet(
            str(dest / "data" / f"train-{k:05d}-of-{len(TMDB_PEOPLE_FILES):05d}.parquet"))
    _write_card(dest, features, sum(len(rows) for rows in TMDB_PEOPLE_FILES))
    return dest


def _write_parquet(dataset, dest: Path, split: str) -> None:
    import datasets

    datasets.disable_progress_bars()
    (dest / "data").mkdir(parents=True, exist_ok=True)
    dataset.to_parquet(str(dest / "data" / f"{split}-00000-of-00001.parquet"))


# -- stand-in FaceNet weights ------------------------------------------------------------------------


def calibration_photos() -> list[Path]:
    """The photos whose face crops calibrate the stand-in weights: every 4th LFW and five_celebs/train photo."""
    return image_files(LFW)[::4] + image_files(FIVE_TRAIN)[::4]


def standin_weights_key() -> str:
    """What the stand-in weights depend on: this code, the calibration photos and the library versions."""
    from importlib.metadata import version

    digest = hashlib.sha256(Path(__file__).read_bytes())
    for photo in calibration_photos():
        digest.update(photo.read_bytes())
    for package in ("torch", "facenet-pytorch"):
        digest.update(version(package).encode())
    return digest.hexdigest()[:16]


def make_standin_state_dict(seed: int = STANDIN_SEED) -> dict:
    """A state dict with the vggface2 layout: a seeded init whose BatchNorm statistics are set from real
    face crops of the committed photos.

    Why: a plain random init maps every face to nearly the same vector (cosine above 0.999 between any two
    people), so no search, ranking or preprocessing test could fail. With calibrated statistics the vectors
    spread out like real ones (``tests/test_standin_weights.py`` checks the properties the suite relies on).
    They still know nothing of identity: no figure made with them is an accuracy figure.
    """
    import torch
    from facenet_pytorch import MTCNN, InceptionResnetV1
    from PIL import Image

    mtcnn = MTCNN(image_size=160, margin=0, device="cpu")
    crops = [c for c in (mtcnn(Image.open(p).convert("RGB")) for p in calibration_photos()) if c is not None]
    torch.manual_seed(seed)
    model = InceptionResnetV1(classify=True, num_classes=VGGFACE2_CLASSES).eval()
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm1d | torch.nn.BatchNorm2d):
            module.reset_running_stats()
            module.momentum = None  # a cumulative average over the calibration batches
            module.train()
    with torch.no_grad():
        for batch in torch.stack(crops).split(16):
            model(batch)
    return model.eval().state_dict()


def write_standin_weights(torch_home: Path, cache_dir: Path | None = None) -> Path:
    """Stand-in weights at ``torch_home/checkpoints/<vggface2 file>``, where facenet-pytorch's own
    ``pretrained="vggface2"`` path reads them; copied from ``cache_dir`` when it holds a file made by
    the same code from the same photos (the calibration takes 20-30 s). Returns the file's path."""
    import torch

    path = Path(torch_home) / "checkpoints" / WEIGHTS_FILE_NAME
    path.parent.mkdir(parents=True, exist_ok=True)
    cached = Path(cache_dir) / f"standin-{standin_weights_key()}.pt" if cache_dir else None
    if cached is not None and cached.is_file():
        shutil.copyfile(cached, path)
        return path
    torch.save(make_standin_state_dict(), path)
    if cached is not None:  # whole or not at all: another test process may be reading the cache
        cached.parent.mkdir(parents=True, exist_ok=True)
        partial = cached.with_name(f".{cached.name}.{os.getpid()}")
        shutil.copyfile(path, partial)
        os.replace(partial, cached)
    return path


def alias_payloads(settings) -> dict[str, dict]:
    """Point id -> payload of every point the store of ``settings`` serves through its alias."""
    from lookalike.index.store import FaceStore

    store = FaceStore.open(settings.store_config())
    try:
        return {str(p.id): p.payload for p in store.points(store.alias)}
    finally:
        store.close()


FINGERPRINT = ModelFingerprint("InceptionResnetV1", "vggface2", "a" * 64, "1")
"""The fingerprint the store's and the index's tests record in their collections (their vectors are random)."""


def unit(vector):
    """``vector`` as a float32 unit vector."""
    import numpy as np

    vector = np.asarray(vector, np.float32)
    return vector / np.linalg.norm(vector)


def random_unit(rng):
    """A random 512-d unit vector from the numpy generator ``rng``."""
    return unit(rng.standard_normal(512))


def make_point(vector, person: str, tag: str, **metadata):
    """A :class:`~lookalike.index.store.FacePoint` of ``person`` (its photo named by ``tag``) at ``vector``
    (normalised), with a small thumbnail and ``metadata``."""
    from lookalike.index.payload import FacePayload, point_id
    from lookalike.index.store import FacePoint

    digest = hashlib.sha256(f"{person}/{tag}".encode()).hexdigest()
    payload = FacePayload(name=person.title(), person_id=person, content_sha256=digest, sources=[f"test:{tag}"],
                          thumbnail="dGh1bWI=", metadata=metadata)
    return FacePoint(point_id(digest), unit(vector), payload)


def open_store(kind: str, settings):
    """A store of ``kind`` on ``settings``' data folder (edge, local) or on the server (alias in settings);
    ``local`` is qdrant-client's in-process mode, standing in for a server."""
    from lookalike.index.storage.port import CollectionSettings
    from lookalike.index.store import FaceStore

    if kind == "local":
        from lookalike.index.storage.qdrant import QdrantEngine

        path = settings.data_dir / "local"
        path.mkdir(parents=True, exist_ok=True)
        return FaceStore(QdrantEngine.in_process(str(path)), settings.collection, where=f"local mode at {path}",
                         serialize=True, collection_defaults=CollectionSettings.for_server(quantization=None))
    return FaceStore.open(settings.store_config())


def kill_at(spec: str) -> None:
    """Makes this process kill itself with SIGKILL the ``n``-th time (``<point>[:<n>]``, default 1) the
    indexer logs the write point ``<point>`` (``indexing.indexer._reached``): a crash at an exact place."""
    import logging
    import signal

    point, _, nth = spec.partition(":")
    reached = []

    class Killer(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if getattr(record, "write_point", None) == point:
                reached.append(point)
                if len(reached) >= int(nth or 1):
                    os.kill(os.getpid(), signal.SIGKILL)

    logger = logging.getLogger("indexing.indexer")
    logger.setLevel(logging.DEBUG)
    logger.addHandler(Killer())


INDEXING_IMPORTS = ["indexing.cli", "indexing.indexer", "lookalike.index.store", "facenet_pytorch"]
"""What ``python -m indexing`` imports before its first photo: the preload of its :class:`CommandServer`."""


class CommandServer:
    """Runs Python command lines (``-m indexing ARGS``, ``bench/x.py ARGS``) as real processes forked from
    one warm parent, which has imported ``preload`` once: each command is its own process (it can exit,
    crash or be killed with SIGKILL like a fresh one) without paying those imports again.

    The environment given to ``run`` is set in the child before the command starts; variables that
    modules read while being imported come from ``env``, the server's own environment.
    """

    def __init__(self, preload: Iterable[str], env: dict[str, str], cwd: Path = ROOT):
        import subprocess
        import sys

        code = (f"import sys; sys.path.insert(0, {str(Path(__file__).parent)!r}); import support; "
                f"support._serve_commands({list(preload)!r})")
        self._process = subprocess.Popen([sys.executable, "-c", code], cwd=cwd, env=env, text=True,
                                         stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        self.cwd = cwd

    def run(self, command: Iterable[str], env: dict[str, str], timeout: int = 300, setup: tuple[str, ...] = ()):
        """``python COMMAND`` to its end: a ``subprocess.CompletedProcess`` (returncode -N: killed by signal N).
        ``setup``: a function of this module and its arguments, called in the command's process first."""
        import subprocess
        import tempfile

        command = list(command)
        assert self._process.stdin is not None and self._process.stdout is not None  # both piped
        with tempfile.TemporaryDirectory() as folder:
            out, err = Path(folder) / "stdout", Path(folder) / "stderr"
            request = {"command": command, "env": env, "cwd": str(self.cwd), "timeout": timeout,
                       "stdout": str(out), "stderr": str(err), "setup": list(setup)}
            self._process.stdin.write(json.dumps(request) + "\n")
            self._process.stdin.flush()
            answer = self._process.stdout.readline()
            if not answer:
                raise RuntimeError(f"the command server exited ({self._process.wait()})")
            return subprocess.CompletedProcess(command, json.loads(answer)["returncode"],
                                               out.read_text(errors="replace"), err.read_text(errors="replace"))

    def close(self) -> None:
        assert self._process.stdin is not None  # piped
        self._process.stdin.close()
        self._process.wait(timeout=30)


def _serve_commands(preload: list[str]) -> None:
    """The warm parent of :class:`CommandServer`: one JSON request per stdin line, one answer per line."""
    import importlib
    import signal
    import sys

    for name in preload:
        importlib.import_module(name)
    answers = sys.stdout
    for line in sys.stdin:
        request = json.loads(line)
        pid = os.fork()
        if pid == 0:  # the command's own process: its environment, argv and output files
            code = 1
            try:
                os.chdir(request["cwd"])
                os.environ.clear()
                os.environ.update(request["env"])
                for fd, path in ((1, request["stdout"]), (2, request["stderr"])):
                    os.dup2(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC), fd)
                signal.alarm(request["timeout"])
                if request["setup"]:
                    name, *args = request["setup"]
                    getattr(sys.modules[__name__], name)(*args)
                _run_command(request["command"])
                code = 0
            except SystemExit as exit_:
                code = exit_.code if isinstance(exit_.code, int) else (0 if exit_.code is None else 1)
                if exit_.code is not None and not isinstance(exit_.code, int):
                    print(exit_.code, file=sys.stderr)
            except BaseException:
                import traceback
                traceback.print_exc()
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        answers.write(json.dumps({"returncode": os.waitstatus_to_exitcode(status)}) + "\n")
        answers.flush()


def _run_command(command: list[str]) -> None:
    """Runs ``python COMMAND`` in this process as the interpreter would: ``-m module ARGS`` or ``script ARGS``."""
    import runpy
    import sys

    if command[0] == "-m":
        sys.argv = [command[1], *command[2:]]
        runpy.run_module(command[1], run_name="__main__", alter_sys=True)
    else:
        sys.argv = list(command)
        sys.path.insert(0, str(Path(command[0]).resolve().parent))  # the script's folder first, as python does
        runpy.run_path(command[0], run_name="__main__")


if __name__ == "__main__":  # python tests/support.py TORCH_HOME: stand-in weights for a benchmark or a try
    import sys

    if len(sys.argv) != 2:
        sys.exit("usage: python tests/support.py TORCH_HOME_DIR")
    print(write_standin_weights(Path(sys.argv[1])))


# -- the browser: Debian's chromium (or Playwright's) driven by Playwright ------------------------------------


def _chromium() -> str | None:
    """Debian's ``chromium`` where it is installed, else the Chromium build that ``playwright install
    chromium`` fetched (GitHub's runners, where apt needs sudo), else None."""
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found:
        return found
    try:
        from playwright.sync_api import sync_playwright

        with sync_playwright() as pw:
            path = pw.chromium.executable_path
    except Exception:  # noqa: BLE001 - no browser at all: the tests are skipped with the reason below
        return None
    return path if Path(path).exists() else None


CHROMIUM = _chromium()
OUTPUT = Path(__file__).resolve().parents[1] / "test-output"
SERVER_MODE = "?mode=server"
"""Appended to the app's URL: the page searches in server mode (sends the photo), as before private mode."""
CAPTION = re.compile(r"^(.+) — (\d{1,3}) %$")
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--no-first-run", "--disable-sync"]
TIMEOUT_MS = 120_000
DESKTOP: dict[str, Any] = {"viewport": {"width": 1280, "height": 900}}
PHONE: dict[str, Any] = {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True}
VIEWPORTS = {"desktop": DESKTOP, "phone": PHONE}
RECORD_MEDIA_CONSTRAINTS = """
window.__mediaConstraints = [];
const original = navigator.mediaDevices.getUserMedia.bind(navigator.mediaDevices);
navigator.mediaDevices.getUserMedia = (constraints) => {
  window.__mediaConstraints.push(JSON.parse(JSON.stringify(constraints)));
  return original(constraints);
};
"""


def open_browser(playwright, *extra: str):
    return playwright.chromium.launch(executable_path=CHROMIUM, args=[*ARGS, *extra])


def new_page(browser, viewport: str = "desktop", **options):
    context = browser.new_context(**VIEWPORTS[viewport], **options)
    context.add_init_script(RECORD_MEDIA_CONSTRAINTS)
    return context.new_page()


def screenshot(page, tmp_path: Path, name: str) -> Path:
    path = tmp_path / name
    page.screenshot(path=str(path), full_page=True)
    OUTPUT.mkdir(exist_ok=True)
    shutil.copy(path, OUTPUT / name)
    return path


def captions(root, gallery: str = "#gallery") -> list[tuple[str, int]]:
    """The (name, percent) of every gallery tile, waiting for the gallery to fill."""
    root.locator(f"{gallery} .caption-label").first.wait_for(timeout=TIMEOUT_MS)
    texts = root.locator(f"{gallery} .caption-label").all_inner_texts()
    parsed = [CAPTION.match(t.strip()) for t in texts]
    matched = [m for m in parsed if m is not None]
    assert texts and len(matched) == len(texts), texts
    return [(m.group(1), int(m.group(2))) for m in matched]


def upload_and_find(root, photo: Path) -> None:
    root.locator("#photo input[type=file]").set_input_files(str(photo))
    root.locator("#photo img").first.wait_for(timeout=TIMEOUT_MS)
    root.locator("#find").click()


def box(page, selector: str) -> dict:
    """The element's box in page coordinates (scroll included)."""
    return page.locator(selector).first.evaluate(
        "e => { const r = e.getBoundingClientRect(); return {top: r.top + window.scrollY, bottom: r.bottom + "
        "window.scrollY, left: r.left, right: r.right, height: r.height, width: r.width}; }")



def fake_camera(photos: list[Path], folder: Path, frames_each: int = 10) -> Path:
    """An MJPEG file (concatenated 640x480 JPEGs) of ``photos`` in turn for chromium's fake webcam (which
    plays it at 30 frames a second, in a loop)."""
    from PIL import Image

    data = b""
    for photo in photos:
        image = Image.open(photo).convert("RGB")
        image.thumbnail((640, 480))
        frame = Image.new("RGB", (640, 480), (128, 128, 128))
        frame.paste(image, ((640 - image.width) // 2, (480 - image.height) // 2))
        buffer = io.BytesIO()
        frame.save(buffer, "JPEG", quality=90)
        data += buffer.getvalue() * frames_each
    path = folder / "face.mjpeg"
    path.write_bytes(data)
    return path


def camera_browser(playwright, photos: list[Path], tmp_path, viewport: str = "desktop", frames_each: int = 10):
    mjpeg = fake_camera(photos, tmp_path, frames_each)
    browser = open_browser(playwright, "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
                           f"--use-file-for-fake-video-capture={mjpeg}")
    return browser, new_page(browser, viewport, permissions=["camera"])
