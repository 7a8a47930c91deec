"""Local folders that are not parquet datasets: image folders (one sub-folder per person) and folders
written by ``save_to_disk``."""

from __future__ import annotations

from typing import Any

import datasets

from indexing.sources.spec import Where

IMAGE_EXTENSIONS = {".jpg", ".jpeg", ".png", ".webp", ".gif", ".bmp", ".tif", ".tiff", ".jfif", ".pgm", ".ppm"}


def load_image_folder(where: Where) -> Any:
    """An image folder's image files as one ``train`` split, each labelled with its sub-folder."""
    images = [str(p) for p in sorted(where.path.rglob("*")) if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS]
    return datasets.load_dataset("imagefolder", data_files={"train": images}, drop_labels=False)


def ignored_files(where: Where) -> list[str]:
    """An image folder's files that are not images (reported, not read); none for other sources."""
    if not where.image_folder:
        return []
    return [str(p.relative_to(where.path)) for p in where.path.rglob("*")
            if p.is_file() and p.suffix.lower() not in IMAGE_EXTENSIONS]


def load_saved(where: Where) -> Any:
    """A ``save_to_disk`` folder: a dataset, or a dict of splits."""
    return datasets.load_from_disk(str(where.path))
