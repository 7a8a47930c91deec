"""The source model: a dataset split (:class:`Source`) and the rows it yields (:class:`Row`), the photos'
bytes never decoded here; and :class:`DataFile`, one parquet file of a split.

A source's person ids come from the name column, or, with an id column (TMDB's ``id``), from the
:class:`Identities` that :func:`indexing.sources.linking.link_identities` gives it before its rows are read.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import datasets

from indexing.identities import Identities
from lookalike.index.payload import clean_metadata
from lookalike.index.people import person_id

READ_BATCH = 64
"""Rows read from a dataset per ``Dataset.iter`` call."""


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
    ``identities`` (:class:`Identities`, decided over every source with ids), which
    :func:`indexing.sources.linking.link_identities` sets before any person id is asked for.
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
        if self.identities is None:
            raise RuntimeError(f"{self.label}: its person ids come from its '{self.id_column}' column; "
                               "link its identities first (indexing.sources.link_identities).")
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
