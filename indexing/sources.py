"""Where celebrity photos come from: Hugging Face datasets (hub ids, local dataset folders,
``save_to_disk`` folders) and image folders with one sub-folder per person, all through ``datasets``.

Each source yields :class:`Row` records with the photo's encoded bytes (never decoded here), the
person's raw name, metadata columns and a reference to where the photo came from. A parquet dataset can
also be opened as some of its files (a shard's share, :mod:`indexing.shards`): only those files are
downloaded, and rows keep their row numbers in the whole split, so a photo's reference is the same
whichever shard read it. The person pass opens sources without their photos (``photos=False``).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import datasets

from indexing.hub import check_hub, dataset_revision, is_repo_id, parquet_footer
from indexing.identities import Identities
from indexing.shards import Shard
from lookalike.index.payload import clean_metadata
from lookalike.index.people import person_id

log = logging.getLogger(__name__)

DEFAULT_SOURCES = ("ashraq/tmdb-celeb-10k", "ashraq/tmdb-people-image", "tonyassi/celebrity-1000",
                   "lansinuote/simple_facenet")
"""The default index, in precedence order (names and metadata of earlier sources win); README "Default
sources" describes each, :data:`KNOWN_SOURCES` their columns."""

SMALL_DEFAULT_SOURCES = tuple(s for s in DEFAULT_SOURCES if s != "ashraq/tmdb-people-image")
"""The default sources less the 3.7 GB one: what the app's background fill samples (it downloads whole
parquet files even for a sample)."""

NAME_COLUMNS = ("label", "name", "person", "celebrity", "identity")
"""Columns tried, in order, for the person's name when a source does not say."""

KNOWN_SOURCES: dict[str, dict[str, Any]] = {
    # 105 people, 17,334 train + 200 test 160x160 face crops; `label` is the name as a string.
    "lansinuote/simple_facenet": {"image_column": "image", "name_column": "label", "split": "train"},
    # 997 people, ~18k photos; `label` is a ClassLabel whose names carry accents.
    "tonyassi/celebrity-1000": {"image_column": "image", "name_column": "label", "split": "train"},
    # 10,000 people, one TMDB profile photo each, with `biography` and other TMDB columns; `id` is TMDB's.
    "ashraq/tmdb-celeb-10k": {"image_column": "image", "name_column": "name", "split": "train",
                              "id_column": "id", "id_space": "tmdb"},
    # 116,403 people, one TMDB profile photo each, in 9 parquet files; the same columns as tmdb-celeb-10k.
    "ashraq/tmdb-people-image": {"image_column": "image", "name_column": "name", "split": "train",
                                 "id_column": "id", "id_space": "tmdb"},
}

READ_BATCH = 64
"""Rows read from a dataset per ``Dataset.iter`` call."""

IMAGE_EXTENSIONS = {".jpg", ".jpeg", ".png", ".webp", ".gif", ".bmp", ".tif", ".tiff", ".jfif", ".pgm", ".ppm"}


@dataclass(frozen=True)
class Row:
    """One photo of a source, not yet decoded.

    Attributes:
        data: the encoded image bytes, or None when the row has no image.
        raw_name: the person's name as the source spells it ("" when missing).
        metadata: the row's other scalar columns (biography, birthday, ...), empty values dropped.
        ref: where the photo came from, e.g. ``"celebrity_mini:train:12"`` or ``"lfw_dev:Tony_Blair/x.jpg"``.
        problem: a skip reason found while reading (``"unreadable_file"``), else None.
        person: the person id of ``raw_name`` (:func:`lookalike.index.people.person_id`), computed once
            when the row is read ("" when the name has no letters or digits).
        sha256: the hex SHA-256 of ``data`` ("" without data): the photo's identity and point id.
    """

    data: bytes | None
    raw_name: str
    metadata: dict[str, Any] = field(default_factory=dict)
    ref: str = ""
    problem: str | None = None
    person: str = ""
    sha256: str = ""

    @classmethod
    def read(cls, data: bytes | None, raw_name: str, metadata: dict[str, Any] | None = None, ref: str = "",
             problem: str | None = None, person: str | None = None) -> Row:
        """A row with its person id (``person``, else that of ``raw_name``) and content hash filled in."""
        return cls(data, raw_name, metadata or {}, ref, problem, person_id(raw_name) if person is None else person,
                   hashlib.sha256(data).hexdigest() if data else "")


@dataclass(frozen=True)
class DataFile:
    """One parquet file of a source's split (the unit a file shard takes, :meth:`Shard.files`).

    Attributes:
        spec: the source spec it belongs to, as given (with its options).
        split: the split it is part of.
        url: the file as ``datasets`` resolved it: a local path, or ``hf://datasets/owner/name@commit/...``.
        rows: its row count (from the parquet footer).
        first_row: the row number of its first row in the whole split (the files in ``datasets``' order).
    """

    spec: str
    split: str
    url: str
    rows: int
    first_row: int


@dataclass
class Source:
    """A dataset split with known image and name columns, rows addressable by index.

    ``row_numbers`` (when only some files of the split were loaded) maps each row to its number in the
    whole split, the number its reference carries; ``file_share`` says that a shard's part of the split
    was loaded (its files), so the shard takes every row of it. ``id_column`` names a column of person ids
    shared with other sources of the same ``id_space`` (TMDB's ``id``): its rows' person ids come from
    ``identities`` (:class:`Identities`, decided over every source with ids; :func:`link_identities`).
    """

    label: str
    split: str
    dataset: datasets.Dataset
    image_column: str
    name_column: str
    base_dir: Path | None = None
    ignored_files: list[str] = field(default_factory=list)
    row_numbers: list[int] | None = None
    file_share: bool = False
    id_column: str | None = None
    id_space: str = ""
    identities: Identities | None = None

    @property
    def ref_prefix(self) -> str:
        """How the references of this source's rows begin: ``label:`` (image folders), else ``label:split:``."""
        return f"{self.label}:" if self.base_dir is not None else f"{self.label}:{self.split}:"

    def __len__(self) -> int:
        return len(self.dataset)

    def names(self) -> list[str]:
        """The raw name of every row, without decoding images (for sampling)."""
        return [self._name(value) for value in self.dataset[self.name_column]]

    def person_ids(self) -> list[str]:
        """The person id of every row, without decoding images (for sampling)."""
        if self.id_column is None:
            return [person_id(name) for name in self.names()]
        return [self._person(self._name(record.get(self.name_column)), record)
                for _, record in self._records(range(len(self)), [self.name_column, self.id_column])]

    def identity_rows(self) -> Iterator[tuple[Any, str]]:
        """(id, raw name) of every row, in order (for :class:`Identities`); nothing without ``id_column``."""
        if self.id_column is None:
            return
        for _, record in self._records(range(len(self)), [self.name_column, self.id_column]):
            yield record.get(self.id_column), self._name(record.get(self.name_column))

    @property
    def metadata_columns(self) -> list[str]:
        """Every column but the image and the name: the candidates for a person's metadata."""
        return [c for c in self.dataset.column_names if c not in (self.image_column, self.name_column)]

    def rows(self, indices: Sequence[int]) -> Iterator[Row]:
        """The rows at ``indices``, in that order, read ``READ_BATCH`` at a time (images not decoded)."""
        for index, record in self._records(indices, self.dataset.column_names):
            data, problem, where = _image_bytes(record.get(self.image_column), self.base_dir)
            number = index if self.row_numbers is None else self.row_numbers[index]
            ref = f"{self.label}:{where}" if where else f"{self.label}:{self.split}:{number}"
            name = self._name(record.get(self.name_column))
            yield Row.read(data, name, clean_metadata({c: record.get(c) for c in self.metadata_columns}), ref,
                           problem, self._person(name, record))

    def facts(self, indices: Sequence[int]) -> Iterator[tuple[str, str, dict[str, Any]]]:
        """(person id, raw name, metadata) of the rows at ``indices``, without reading any image.

        The person-level pass (:func:`indexing.precedence.collect_people`) needs nothing else, so it can
        run after sharded runs without decoding or even reading a photo.
        """
        columns = [self.name_column, *self.metadata_columns]
        for _, record in self._records(indices, columns):
            name = self._name(record.get(self.name_column))
            yield self._person(name, record), name, clean_metadata({c: record.get(c) for c in self.metadata_columns})

    def _person(self, name: str, record: dict[str, Any]) -> str:
        """The person id of a row: by its id when the source has an id column, else by its name."""
        if self.id_column is None:
            return person_id(name)
        if self.identities is None:  # opened alone: its own rows decide
            link_identities([self])
        assert self.identities is not None
        return self.identities.person(self.id_space, record.get(self.id_column), name)

    def _records(self, indices: Sequence[int], columns: Sequence[str]) -> Iterator[tuple[int, dict[str, Any]]]:
        """(row index, {column: value}) of ``indices`` in order, through ``Dataset.select(...).iter``."""
        indices = [int(i) for i in indices]
        if not indices:
            return
        dataset = self.dataset.select_columns(list(columns)).select(indices)
        position = 0
        for chunk in dataset.iter(batch_size=READ_BATCH):
            size = len(chunk[columns[0]])
            for offset in range(size):
                yield indices[position + offset], {c: chunk[c][offset] for c in columns}
            position += size

    def _name(self, value: Any) -> str:
        feature = self.dataset.features.get(self.name_column)
        if isinstance(feature, datasets.ClassLabel) and isinstance(value, int):
            return feature.int2str(value)
        return "" if value is None else str(value)


SOURCE_OPTIONS = ("split", "config", "image_column", "name_column", "id_column", "id_space", "revision")


def parse_source_spec(text: str) -> tuple[str, dict[str, str]]:
    """``"owner/name?split=test&name_column=person"`` -> ``("owner/name", {"split": "test", ...})``.

    Options after ``?`` apply to that source only and override the command-line defaults.

    Raises:
        ValueError: an unknown option.
    """
    spec, _, query = text.partition("?")
    options = dict(parse_qsl(query, keep_blank_values=False)) if query else {}
    unknown = sorted(set(options) - set(SOURCE_OPTIONS))
    if unknown:
        raise ValueError(f"{spec}: unknown source option {', '.join(unknown)} (known: {', '.join(SOURCE_OPTIONS)}).")
    return spec, options


def pin_source(text: str, token: str | None = None) -> str:
    """``text`` with its Hub dataset pinned to the commit it is at now (``owner/name?revision=<sha>``), so
    every shard of one build reads the same files; a local folder, an already pinned spec, or any spec with
    ``HF_HUB_OFFLINE=1``, as it is."""
    where = _resolve(text, None, None)
    if where.path.exists() or where.revision:
        return text
    revision = dataset_revision(where.spec, token)
    if revision is None:
        return text
    return f"{text}{'&' if '?' in text else '?'}revision={revision}"


def check_source_spec(text: str) -> tuple[str, dict[str, str]]:
    """:func:`parse_source_spec`, and the checks that need no download: a folder that does not exist or a
    file is refused at once (so a run stops before loading any model).

    Raises:
        ValueError: an unknown option, a missing folder, a file.
    """
    spec, options = parse_source_spec(text)
    path = Path(spec).expanduser()
    if not path.exists() and not is_repo_id(spec):
        raise ValueError(f"{spec}: no such folder (a source is a folder, or a hub id like owner/name).")
    if path.is_file():
        raise ValueError(f"{spec} is a file; a source is a dataset or image folder, or a hub id like owner/name.")
    return spec, options


def open_sources(spec: str, split: str | None = None, image_column: str | None = None,
                 name_column: str | None = None, config: str | None = None,
                 token: str | None = None, files: Sequence[DataFile] | None = None,
                 share: Sequence[DataFile] | None = None, photos: bool = True,
                 columns: Sequence[str] | None = None) -> list[Source]:
    """Every split a source spec names (``split="all"`` takes each split of a dataset).

    ``spec`` is a hub id (``lansinuote/simple_facenet``), a folder saved with ``save_to_disk``, a
    local dataset folder (parquet shards, as on the hub), or an image folder with one sub-folder per
    person, optionally followed by per-source options (:func:`parse_source_spec`). Columns not given
    come from :data:`KNOWN_SOURCES` or are detected.

    A parquet dataset given ``share`` (some of ``files``, its files as :func:`parquet_files` listed
    them) loads only those files; a split with none of them is an empty source. ``photos=False`` (the
    person pass) streams a parquet dataset's name and metadata columns only, never its images; with
    ``columns``, only those beside the name.

    The options ``id_column`` and ``id_space`` (known for the TMDB sets: ``id``, ``tmdb``) name a column
    of person ids that sources of the same space share (:class:`Identities`).

    Raises:
        ValueError: the spec names nothing loadable, or a column is missing.
    """
    where = _resolve(spec, split, config)
    image_column = where.options.get("image_column", image_column)
    name_column = where.options.get("name_column", name_column)
    known = KNOWN_SOURCES.get(where.spec, {})
    id_column = where.options.get("id_column", known.get("id_column"))
    id_space = where.options.get("id_space", known.get("id_space")) or id_column or ""
    base_dir = where.path if where.image_folder else None
    numbers: dict[str, list[int]] = {}
    if not where.saved and not where.image_folder and (share is not None or not photos):
        image_column = image_column or known.get("image_column")
        loaded, numbers, dropped = _load_parquet(where, spec, token, files, share, image_column, photos, columns,
                                                 name_column or known.get("name_column"))
        image_column = image_column or dropped
    else:
        loaded = _load_whole(where, token)
    label = where.path.name if where.path.exists() else where.spec
    ignored = _ignored_files(where)
    out = []
    for split_name, dataset in _splits(loaded, where.split, label):
        image_col = image_column or known.get("image_column") or _image_column(dataset.features)
        name_col = name_column or known.get("name_column") or _name_column(dataset.features)
        for column in ((image_col, name_col) if photos else (name_col,)) + ((id_column,) if id_column else ()):
            if column not in dataset.column_names:
                raise ValueError(f"{label} has no column '{column}' (it has {', '.join(dataset.column_names)}).")
        if image_col in dataset.column_names:
            dataset = dataset.cast_column(image_col, datasets.Image(decode=False))
        out.append(Source(label, split_name, dataset, image_col, name_col, base_dir, ignored,
                          numbers.get(split_name), share is not None and photos, id_column, id_space))
    return out


def _load_whole(where: _Where, token: str | None) -> Any:
    """A saved dataset, an image folder (one sub-folder per person) or a whole dataset, loaded."""
    if where.saved:
        return datasets.load_from_disk(str(where.path))
    if where.image_folder:
        images = [str(p) for p in sorted(where.path.rglob("*"))
                  if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS]
        return datasets.load_dataset("imagefolder", data_files={"train": images}, drop_labels=False)
    return _load(where, token)


def _load_parquet(where: _Where, spec: str, token: str | None, files: Sequence[DataFile] | None,
                  share: Sequence[DataFile] | None, image_column: str | None, photos: bool,
                  columns: Sequence[str] | None, name_column: str | None
                  ) -> tuple[Any, dict[str, list[int]], str | None]:
    """Some of a parquet dataset's files (``share``), or its name and metadata columns only: the dataset,
    each split's file numbers and the image column found, as :func:`_load_files`; a dataset that is not
    parquet files loads whole."""
    if files is None:
        files = parquet_files(spec, where.split, where.config, token)
    if files is None:
        return _load(where, token), {}, None
    return _load_files(where, files, share, image_column, token, photos, columns, name_column)


def _ignored_files(where: _Where) -> list[str]:
    """An image folder's files that are not images (reported, not read); none for other sources."""
    if not where.image_folder:
        return []
    return [str(p.relative_to(where.path)) for p in where.path.rglob("*")
            if p.is_file() and p.suffix.lower() not in IMAGE_EXTENSIONS]


def _splits(loaded: Any, split: str, label: str) -> list[tuple[str, Any]]:
    """(split name, dataset) of each split ``split`` names (``"all"``: every split)."""
    if not isinstance(loaded, datasets.DatasetDict):
        return [(split, loaded)]
    if split == "all":
        return list(loaded.items())
    if split in loaded:
        return [(split, loaded[split])]
    raise ValueError(f"{label} has no split '{split}' (it has {', '.join(loaded)}).")


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


def open_all(specs: Sequence[str], split: str | None = None, image_column: str | None = None,
             name_column: str | None = None, config: str | None = None, token: str | None = None,
             shard: Shard | None = None, photos: bool = True) -> list[Source]:
    """The sources of ``specs`` in order; with a ``shard`` of several, the parquet datasets hold only the
    files :meth:`Shard.files` gives that shard out of every source's files in one list (the other
    sources, local folders, are whole: their rows are split by content hash, :meth:`Shard.owns`). The
    sources with an id column share one :class:`Identities`, decided over all their rows (a shard reads
    the ids and names of its sources' other files too, without their images)."""
    def opened(spec: str, **kwargs: Any) -> list[Source]:
        return open_sources(spec, split, image_column, name_column, config, token, photos=photos, **kwargs)

    if shard is None or shard.count == 1 or not photos:
        whole = [source for spec in specs for source in opened(spec)]
        link_identities(whole)
        return whole
    listed = {spec: parquet_files(spec, split, config, token) for spec in specs}
    every = [f for files in listed.values() for f in files or ()]
    mine = [every[p] for p in shard.files([f.rows for f in every])]
    log.info("shard %s reads %d of %d parquet files (%d of %d rows)", shard, len(mine), len(every),
             sum(f.rows for f in mine), sum(f.rows for f in every))
    out: list[Source] = []
    rows_of: list[Source] = []  # every row's id and name, for persons by id (file shares: all their files)
    for spec, files in listed.items():
        if files is None:
            log.info("%s is not parquet files: shard %s reads all of it and takes its photos by content hash",
                     spec, shard)
            whole = opened(spec)
            out.extend(whole)
            rows_of.extend(whole)
        else:
            part = opened(spec, files=files, share=[f for f in files if f in mine])
            out.extend(part)
            with_ids = [s.id_column for s in part if s.id_column]
            if with_ids:  # read without images, only the id beside the name
                rows_of.extend(open_sources(spec, split, image_column, name_column, config, token, files=files,
                                            photos=False, columns=with_ids[:1]))
    link_identities(out, rows_of)
    return out


def parquet_files(spec: str, split: str | None = None, config: str | None = None,
                  token: str | None = None) -> list[DataFile] | None:
    """The parquet files of the split(s) ``spec`` names, as ``datasets`` resolves them for
    ``load_dataset`` (``load_dataset_builder(...).config.data_files``), with their row counts; None for a
    source that is not parquet files (a ``save_to_disk`` or image folder, a dataset of other files).

    Only the parquet footers are read (a range request each on the Hub), no row.

    Raises:
        ValueError: the dataset has no such split.
    """
    where = _resolve(spec, split, config)
    if where.saved or where.image_folder:
        return None
    if not where.path.exists():
        check_hub(where.spec, token)
    builder = datasets.load_dataset_builder(where.target, name=where.config, token=token, revision=where.hub_revision)
    resolved = {str(name): [str(url) for url in urls] for name, urls in (builder.config.data_files or {}).items()}
    if not resolved or not all(url.endswith(".parquet") for urls in resolved.values() for url in urls):
        return None
    if where.split == "all":
        splits = list(resolved)
    elif where.split in resolved:
        splits = [where.split]
    else:
        label = where.path.name if where.path.exists() else where.spec
        raise ValueError(f"{label} has no split '{where.split}' (it has {', '.join(resolved)}).")
    out = []
    for name in splits:
        first = 0
        for url in resolved[name]:
            rows = parquet_footer(url, token).num_rows
            out.append(DataFile(spec, name, url, rows, first))
            first += rows
    return out


@dataclass(frozen=True)
class _Where:
    """A source spec resolved: what it names and how to load it."""

    spec: str
    options: dict[str, str]
    path: Path
    split: str
    config: str | None
    revision: str | None = None

    @property
    def hub_revision(self) -> str | None:
        """The Hub commit to read (``?revision=``); None for a local folder or the newest commit."""
        return None if self.path.exists() else self.revision

    @property
    def saved(self) -> bool:
        """A ``save_to_disk`` folder."""
        return self.path.is_dir() and ((self.path / "dataset_info.json").exists()
                                       or (self.path / "dataset_dict.json").exists())

    @property
    def image_folder(self) -> bool:
        return self.path.is_dir() and not self.saved and _is_image_folder(self.path)

    @property
    def target(self) -> str:
        """What ``load_dataset`` takes: the local folder, or the hub id."""
        return str(self.path) if self.path.exists() else self.spec


def _resolve(text: str, split: str | None, config: str | None) -> _Where:
    spec, options = check_source_spec(text)
    known = KNOWN_SOURCES.get(spec, {})
    return _Where(spec, options, Path(spec).expanduser(), options.get("split", split) or known.get("split", "train"),
                  options.get("config", config), options.get("revision"))


def _load(where: _Where, token: str | None) -> Any:
    """The whole dataset (every file of every split)."""
    if not where.path.exists():
        check_hub(where.spec, token)
    return datasets.load_dataset(where.target, name=where.config, token=token, revision=where.hub_revision)


def _load_files(where: _Where, files: Sequence[DataFile], share: Sequence[DataFile] | None,
                image_column: str | None, token: str | None, photos: bool,
                only: Sequence[str] | None = None, name_column: str | None = None
                ) -> tuple[datasets.DatasetDict, dict[str, list[int]], str | None]:
    """The dataset made of ``share`` (all ``files`` when None), split by split, with the row numbers of
    its rows in the whole splits; without ``photos``, only the name and metadata columns (or the name and
    ``only``), streamed (the image column left out is returned third)."""
    taken = list(files if share is None else share)
    by_split: dict[str, list[DataFile]] = {}
    for file in files:
        by_split.setdefault(file.split, [])
    for file in taken:
        by_split[file.split].append(file)
    loaded: dict[str, datasets.Dataset] = {}
    numbers: dict[str, list[int]] = {}

    def features(split: str) -> datasets.Features:  # the columns, from the split's first parquet footer
        first = next(f for f in files if f.split == split)
        return datasets.Features.from_arrow_schema(parquet_footer(first.url, token).schema.to_arrow_schema())

    columns = image = None
    if not photos:
        every = features(next(iter(by_split)))
        image = image_column or _image_column(every)
        name = name_column or _name_column(every)
        columns = [c for c in every if c != image and (only is None or c == name or c in only)]
    wanted = {name: [f.url for f in chosen] for name, chosen in by_split.items() if chosen}
    if wanted and photos:
        # The card's row count is the whole split's, not these files': the rows are checked against the
        # footers below instead.
        read = datasets.load_dataset(where.target, name=where.config, data_files=wanted, token=token,
                                     revision=where.hub_revision,
                                     verification_mode=datasets.VerificationMode.NO_CHECKS)
        loaded.update(read.items())
    elif wanted:
        streamed = datasets.load_dataset(where.target, name=where.config, data_files=wanted, token=token,
                                         revision=where.hub_revision, columns=columns, streaming=True)
        for name, stream in streamed.items():
            loaded[name] = datasets.Dataset.from_list(list(stream), features=stream.features)
    for name, chosen in by_split.items():
        if name not in loaded:  # none of this split's files: an empty source
            empty = features(name)
            loaded[name] = datasets.Dataset.from_dict({c: [] for c in empty}, features=empty)
        numbers[name] = [f.first_row + k for f in chosen for k in range(f.rows)]
        if len(numbers[name]) != len(loaded[name]):
            raise ValueError(f"{where.spec}: the files of split '{name}' changed while they were read "
                             f"({len(loaded[name])} rows, the footers said {len(numbers[name])}); run again.")
    return datasets.DatasetDict(loaded), numbers, image


def _is_image_folder(path: Path) -> bool:
    """A folder of per-person sub-folders of image files (not a parquet dataset)."""
    if any(path.glob("*.parquet")) or (path / "data").is_dir() and any((path / "data").glob("*.parquet")):
        return False
    return any(p.is_dir() for p in path.iterdir())


def _image_column(features: datasets.Features) -> str:
    for name, feature in features.items():
        if isinstance(feature, datasets.Image):
            return name
    raise ValueError(f"no image column among {', '.join(features)}; pass --image-column.")


def _name_column(features: datasets.Features) -> str:
    for name in NAME_COLUMNS:
        if name in features:
            return name
    for name, feature in features.items():
        if isinstance(feature, datasets.ClassLabel):
            return name
    raise ValueError(f"no name column among {', '.join(features)}; pass --name-column.")


def _image_bytes(value: Any, base_dir: Path | None) -> tuple[bytes | None, str | None, str | None]:
    """(bytes, problem, file reference) of an undecoded ``datasets.Image`` value."""
    if not value:
        return None, "missing_image", None
    data, path = value.get("bytes"), value.get("path")
    where = None
    if path and base_dir is not None:
        try:
            where = str(Path(path).resolve().relative_to(base_dir.resolve()))
        except ValueError:
            where = Path(path).name
    if data is None and path:
        try:
            data = Path(path).read_bytes()
        except OSError:
            return None, "unreadable_file", where
    if not data:
        return None, ("empty_file" if path else "missing_image"), where
    return data, None, where
