"""The Hugging Face Hub as the sources reach it: a quick check that it answers, repo ids, parquet footers.

``datasets`` does the downloading; these helpers make an unreachable Hub or a mistyped id fail at once,
in one sentence, and read a parquet file's row count and columns without reading its rows.
"""

from __future__ import annotations

from typing import Any

from huggingface_hub.errors import HFValidationError
from huggingface_hub.utils import validate_repo_id

from lookalike.errors import caused_by

HUB_TIMEOUT_S = 5.0
"""How long one look-up of a dataset on the Hub may take before it is called unreachable (seconds)."""


def parquet_footer(url: str, token: str | None) -> Any:
    """The parquet metadata of a local or ``hf://`` file (the footer only)."""
    import fsspec
    import pyarrow.parquet as pq

    fs, path = fsspec.core.url_to_fs(url, **({"token": token} if url.startswith("hf://") else {}))
    with fs.open(path, "rb") as handle:
        return pq.ParquetFile(handle).metadata


def is_repo_id(spec: str) -> bool:
    """True for a spec that can be a hub id (``name`` or ``owner/name``, as ``huggingface_hub`` checks).

    Anything else (``./x``, ``../x``, ``/x``, ``~/x``, ``a/b/c``) can only be a local folder, so a
    mistyped folder gets "no such folder" instead of a hub look-up.
    """
    try:
        validate_repo_id(spec)
    except HFValidationError:
        return False
    return True


def check_hub(repo_id: str, token: str | None) -> None:
    """Fail within ``HUB_TIMEOUT_S`` when the Hub cannot be reached or has no such dataset.

    Without it an unreachable Hub would cost ``datasets``' retries, each logged, before the run failed
    (``docs/decisions/indexing.md``). With ``HF_HUB_OFFLINE=1`` nothing is asked: ``datasets`` reads its
    cache (and says at once when the dataset is not there).

    Raises:
        ConnectionError: the Hub cannot be reached (one sentence, with what to do).
        ValueError: the Hub has no such dataset (or it is private and no token was given).
    """
    from huggingface_hub import HfApi, constants
    from huggingface_hub.errors import GatedRepoError, RepositoryNotFoundError

    if constants.HF_HUB_OFFLINE:
        return
    try:
        HfApi(token=token).dataset_info(repo_id, timeout=HUB_TIMEOUT_S)
    except GatedRepoError as exc:
        raise ValueError(f"{repo_id} is a gated dataset: accept its terms on the Hub and set HF_TOKEN.") from exc
    except RepositoryNotFoundError as exc:
        raise ValueError(f"{repo_id}: no such dataset on the Hugging Face Hub (or it is private: set "
                         "HF_TOKEN).") from exc
    except Exception as exc:  # httpx / requests connection and timeout errors, whichever backend
        if _is_network_error(exc):
            raise ConnectionError(
                f"The Hugging Face Hub cannot be reached to read {repo_id} ({type(exc).__name__}); check the "
                "network, or set HF_HUB_OFFLINE=1 to use a copy already downloaded.") from None
        raise


def dataset_revision(repo_id: str, token: str | None) -> str | None:
    """The commit a Hub dataset is at now (None with ``HF_HUB_OFFLINE=1``: the cache decides).

    Raises:
        ConnectionError, ValueError: as :func:`check_hub`.
    """
    from huggingface_hub import HfApi, constants

    if constants.HF_HUB_OFFLINE:
        return None
    check_hub(repo_id, token)
    return HfApi(token=token).dataset_info(repo_id, timeout=HUB_TIMEOUT_S).sha


def _is_network_error(exc: BaseException) -> bool:
    """True for a transport failure (DNS, refused, timeout) in ``exc`` or what caused it."""
    return caused_by(exc, _network_error_types())


def _network_error_types() -> tuple[type[BaseException], ...]:
    """Transport errors of the HTTP libraries ``huggingface_hub`` may use (httpx2 from 1.x, httpx, requests)."""
    import importlib

    kinds: list[type[BaseException]] = [ConnectionError, TimeoutError]
    for module, names in (("httpx2", ("TransportError",)), ("httpx", ("TransportError",)),
                          ("requests", ("ConnectionError", "Timeout"))):
        try:
            loaded = importlib.import_module(module)
        except ImportError:
            continue
        kinds.extend(getattr(loaded, name) for name in names)
    return tuple(kinds)
