"""Opening source specs as :class:`Source` objects: each split a spec names (:func:`open_sources`), and
the sources of a run, or of one shard of it, with their identities linked (:func:`open_all`)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import datasets

from indexing.shards import Shard
from indexing.sources.columns import image_column as find_image_column
from indexing.sources.columns import name_column as find_name_column
from indexing.sources.folders import ignored_files, load_image_folder, load_saved
from indexing.sources.known import KNOWN_SOURCES
from indexing.sources.linking import link_identities
from indexing.sources.parquet import load_parquet, parquet_files
from indexing.sources.source import DataFile, Source
from indexing.sources.spec import resolve
from indexing.sources.whole import load_whole

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SourceOptions:
    """How to open a source spec: the defaults its own ``?`` options override, and what to read of it.

    Attributes:
        split: the split to read ("all": every split); default the known source's, else ``train``.
        image_column, name_column: the photo's and the name's columns; default known or detected.
        config: the dataset's configuration (``load_dataset``'s ``name``).
        token: the Hugging Face token, for private or gated datasets.
        photos: False (the person pass) reads a parquet dataset's name and metadata columns only.
        columns: with ``photos=False``, the only columns read beside the name.
        files: the parquet files of the spec, as :func:`parquet_files` listed them (listed when None).
        share: some of ``files``, the only ones loaded (a file shard's part); None: the whole dataset.
    """

    split: str | None = None
    image_column: str | None = None
    name_column: str | None = None
    config: str | None = None
    token: str | None = None
    photos: bool = True
    columns: Sequence[str] | None = None
    files: Sequence[DataFile] | None = None
    share: Sequence[DataFile] | None = None


def open_sources(spec: str, options: SourceOptions = SourceOptions()) -> list[Source]:
    """Every split a source spec names (``split="all"`` takes each split of a dataset).

    ``spec`` is a hub id (``lansinuote/simple_facenet``), a folder saved with ``save_to_disk``, a
    local dataset folder (parquet shards, as on the hub), or an image folder with one sub-folder per
    person, optionally followed by per-source options (:func:`indexing.sources.parse_source_spec`).
    Columns not given come from :data:`KNOWN_SOURCES` or are detected.

    A parquet dataset given ``options.share`` loads only those files; a split with none of them is an
    empty source. ``options.photos=False`` (the person pass) streams a parquet dataset's name and
    metadata columns only, never its images; with ``options.columns``, only those beside the name.

    The spec options ``id_column`` and ``id_space`` (known for the TMDB sets: ``id``, ``tmdb``) name a
    column of person ids that sources of the same space share: such a source's identities are linked
    (:func:`indexing.sources.link_identities`) before its person ids are read.

    Raises:
        ValueError: the spec names nothing loadable, or a column is missing.
    """
    where = resolve(spec, options.split, options.config)
    image_column = where.options.get("image_column", options.image_column)
    name_column = where.options.get("name_column", options.name_column)
    known = KNOWN_SOURCES.get(where.spec, {})
    id_column = where.options.get("id_column", known.get("id_column"))
    id_space = where.options.get("id_space", known.get("id_space")) or id_column or ""
    photos, share = options.photos, options.share
    base_dir = where.path if where.image_folder else None
    numbers: dict[str, list[int]] = {}
    if where.saved:
        loaded = load_saved(where)
    elif where.image_folder:
        loaded = load_image_folder(where)
    elif share is not None or not photos:
        image_column = image_column or known.get("image_column")
        loaded, numbers, dropped = load_parquet(where, spec, options.token, options.files, share, image_column,
                                                photos, options.columns, name_column or known.get("name_column"))
        image_column = image_column or dropped
    else:
        loaded = load_whole(where, options.token)
    ignored = ignored_files(where)
    out = []
    for split_name, dataset in _splits(loaded, where.split, where.label):
        image_col = image_column or known.get("image_column") or find_image_column(dataset.features)
        name_col = name_column or known.get("name_column") or find_name_column(dataset.features)
        for column in ((image_col, name_col) if photos else (name_col,)) + ((id_column,) if id_column else ()):
            if column not in dataset.column_names:
                raise ValueError(f"{where.label} has no column '{column}' "
                                 f"(it has {', '.join(dataset.column_names)}).")
        if image_col in dataset.column_names:
            dataset = dataset.cast_column(image_col, datasets.Image(decode=False))
        out.append(Source(where.label, split_name, dataset, image_col, name_col, base_dir, ignored,
                          numbers.get(split_name), share is not None and photos, id_column, id_space))
    return out


def open_all(specs: Sequence[str], options: SourceOptions = SourceOptions(),
             shard: Shard | None = None) -> list[Source]:
    """The sources of ``specs`` in order, with their identities linked (:func:`link_identities`).

    With a ``shard`` of several, the parquet datasets hold only the files :meth:`Shard.files` gives that
    shard out of every source's files in one list (the other sources, local folders, are whole: their rows
    are split by content hash, :meth:`Shard.owns`). The sources with an id column share one
    :class:`Identities`, decided over all their rows (a shard reads the ids and names of its sources'
    other files too, without their images). ``options.files`` and ``options.share`` are set here, per spec.
    """
    options = replace(options, files=None, share=None)

    def opened(spec: str, **mode: Any) -> list[Source]:
        return open_sources(spec, replace(options, **mode))

    if shard is None or shard.count == 1 or not options.photos:
        whole = [source for spec in specs for source in opened(spec)]
        link_identities(whole)
        return whole
    listed = {spec: parquet_files(spec, options.split, options.config, options.token) for spec in specs}
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
                rows_of.extend(opened(spec, files=files, photos=False, columns=with_ids[:1]))
    link_identities(out, rows_of)
    return out


def _splits(loaded: Any, split: str, label: str) -> list[tuple[str, Any]]:
    """(split name, dataset) of each split ``split`` names (``"all"``: every split)."""
    if not isinstance(loaded, datasets.DatasetDict):
        return [(split, loaded)]
    if split == "all":
        return list(loaded.items())
    if split in loaded:
        return [(split, loaded[split])]
    raise ValueError(f"{label} has no split '{split}' (it has {', '.join(loaded)}).")
