"""A dataset loaded whole through ``load_dataset``: a Hub dataset, or a local dataset folder."""

from __future__ import annotations

from typing import Any

import datasets

from indexing.hub import check_hub
from indexing.sources.spec import Where


def load_whole(where: Where, token: str | None) -> Any:
    """The whole dataset (every file of every split); a Hub dataset is checked first, for a clear error.

    Raises:
        ConnectionError, ValueError: an unreachable Hub, or no such dataset (:func:`indexing.hub.check_hub`).
    """
    if not where.path.exists():
        check_hub(where.spec, token)
    return datasets.load_dataset(where.target, name=where.config, token=token, revision=where.hub_revision)
