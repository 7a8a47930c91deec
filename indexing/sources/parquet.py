"""Parquet datasets read as files: each file of a split with its row count (the unit a file shard takes),
and some of those files loaded, or only their name and metadata columns, without the rest."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import datasets

from indexing.hub import check_hub, parquet_footer
from indexing.sources.columns import image_column as find_image_column
from indexing.sources.columns import name_column as find_name_column
from indexing.sources.source import DataFile
from indexing.sources.spec import Where, resolve
from indexing.sources.whole import load_whole


def parquet_files(spec: str, split: str | None = None, config: str | None = None,
                  token: str | None = None) -> list[DataFile] | None:
    """The parquet files of the split(s) ``spec`` names, as ``datasets`` resolves them for
    ``load_dataset`` (``load_dataset_builder(...).config.data_files``), with their row counts; None for a
    source that is not parquet files (a ``save_to_disk`` or image folder, a dataset of other files).

    Only the parquet footers are read (a range request each on the Hub), no row.

    Raises:
        ValueError: the dataset has no such split.
    """
    where = resolve(spec, split, config)
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
        raise ValueError(f"{where.label} has no split '{where.split}' (it has {', '.join(resolved)}).")
    out = []
    for name in splits:
        first = 0
        for url in resolved[name]:
            rows = parquet_footer(url, token).num_rows
            out.append(DataFile(spec, name, url, rows, first))
            first += rows
    return out


def load_parquet(where: Where, spec: str, token: str | None, files: Sequence[DataFile] | None,
                 share: Sequence[DataFile] | None, image_column: str | None, photos: bool,
                 columns: Sequence[str] | None, name_column: str | None
                 ) -> tuple[Any, dict[str, list[int]], str | None]:
    """Some of a parquet dataset's files (``share``), or its name and metadata columns only: the dataset,
    each split's row numbers and the image column found, as :func:`load_files`; a dataset that is not
    parquet files loads whole."""
    if files is None:
        files = parquet_files(spec, where.split, where.config, token)
    if files is None:
        return load_whole(where, token), {}, None
    return load_files(where, files, share, image_column, token, photos, columns, name_column)


def load_files(where: Where, files: Sequence[DataFile], share: Sequence[DataFile] | None,
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
        image = image_column or find_image_column(every)
        name = name_column or find_name_column(every)
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
