"""Where celebrity photos come from: Hugging Face datasets (hub ids, local dataset folders,
``save_to_disk`` folders) and image folders with one sub-folder per person, all through ``datasets``.

Each source yields :class:`Row` records with the photo's encoded bytes (never decoded here), the
person's raw name, metadata columns and a reference to where the photo came from. A parquet dataset can
also be opened as some of its files (a shard's share, :mod:`indexing.shards`): only those files are
downloaded, and rows keep their row numbers in the whole split, so a photo's reference is the same
whichever shard read it. The person pass opens sources without their photos (``SourceOptions(photos=False)``).

The modules: ``known`` (the default sources and their columns), ``spec`` (source specs and their
options), ``source`` (the source model), ``columns`` (image and name columns detected), one per loader
(``parquet`` files, ``folders``: image and ``save_to_disk`` folders, ``whole`` datasets), ``linking``
(one person per TMDB id across sources) and ``opening`` (specs to sources).
"""

from indexing.sources.columns import NAME_COLUMNS
from indexing.sources.folders import IMAGE_EXTENSIONS
from indexing.sources.known import DEFAULT_SOURCES, KNOWN_SOURCES, SMALL_DEFAULT_SOURCES
from indexing.sources.linking import link_identities, link_unlinked
from indexing.sources.opening import SourceOptions, open_all, open_sources
from indexing.sources.parquet import parquet_files
from indexing.sources.source import READ_BATCH, DataFile, Row, Source
from indexing.sources.spec import SOURCE_OPTIONS, check_source_spec, parse_source_spec, pin_source

__all__ = [
    "DEFAULT_SOURCES", "IMAGE_EXTENSIONS", "KNOWN_SOURCES", "NAME_COLUMNS", "READ_BATCH", "SMALL_DEFAULT_SOURCES",
    "SOURCE_OPTIONS", "DataFile", "Row", "Source", "SourceOptions", "check_source_spec", "link_identities",
    "link_unlinked", "open_all", "open_sources", "parquet_files", "parse_source_spec", "pin_source",
]
