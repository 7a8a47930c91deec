"""Which column of a dataset holds the photo and which the person's name, when a source does not say."""

from __future__ import annotations

import datasets

NAME_COLUMNS = ("label", "name", "person", "celebrity", "identity")
"""Columns tried, in order, for the person's name when a source does not say."""


def image_column(features: datasets.Features) -> str:
    """The first image column.

    Raises:
        ValueError: the dataset has none.
    """
    for name, feature in features.items():
        if isinstance(feature, datasets.Image):
            return name
    raise ValueError(f"no image column among {', '.join(features)}; pass --image-column.")


def name_column(features: datasets.Features) -> str:
    """The first of :data:`NAME_COLUMNS` the dataset has, else its first class-label column.

    Raises:
        ValueError: the dataset has neither.
    """
    for name in NAME_COLUMNS:
        if name in features:
            return name
    for name, feature in features.items():
        if isinstance(feature, datasets.ClassLabel):
            return name
    raise ValueError(f"no name column among {', '.join(features)}; pass --name-column.")
