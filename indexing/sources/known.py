"""The sources this project knows: the default index and the columns of each of its datasets."""

from __future__ import annotations

from typing import Any

DEFAULT_SOURCES = ("ashraq/tmdb-celeb-10k", "ashraq/tmdb-people-image", "tonyassi/celebrity-1000",
                   "lansinuote/simple_facenet")
"""The default index, in precedence order (names and metadata of earlier sources win); README "Default
sources" describes each, :data:`KNOWN_SOURCES` their columns."""

SMALL_DEFAULT_SOURCES = tuple(s for s in DEFAULT_SOURCES if s != "ashraq/tmdb-people-image")
"""The default sources less the 3.7 GB one: what the app's background fill samples (it downloads whole
parquet files even for a sample)."""

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
