"""Named collection versions for sharded builds: ``<alias>_v<V>``, created once, shared by the shards.

Created by :meth:`FaceStore.create_version`, so a server collection gets bench's recommended settings
(HNSW m=16, ef_construct=128, int8 with rescoring, vectors and payloads on disk, the payload indexes).
"""

from __future__ import annotations

from lookalike.errors import ModelMismatchError
from lookalike.fingerprint import ModelFingerprint
from lookalike.store import FaceStore


def version_name(store: FaceStore, version: int) -> str:
    """The collection of version ``version`` behind the store's alias (``celebrities_v7``)."""
    return f"{store.alias}_v{version}"


def ensure_version(store: FaceStore, version: int, fingerprint: ModelFingerprint,
                   quantization: str | None = None) -> str:
    """The collection of ``version``, created (empty, with the fingerprint) when it does not exist.

    Safe when several shards start at once: a shard that loses the race to create it uses the one
    the winner made.

    Raises:
        ModelMismatchError: the version exists and was built with other weights.
    """
    name = version_name(store, version)
    if name not in store.versions():
        try:
            store.create_version(fingerprint, quantization, name=name)
        except Exception:
            if name not in store.versions():
                raise
    store.check_fingerprint(fingerprint, name)
    return name


def prepare_version(store: FaceStore, fingerprint: ModelFingerprint, quantization: str | None = None) -> int:
    """The version a new build should write, created: the newest unfinished one, else the next number.

    Unfinished: newer than the version the alias points at and built with the same weights: a build
    whose shard failed, whose photos the next build then keeps instead of embedding them again.
    """
    versions = store.versions()
    current = store.current_collection()
    numbers = [int(name.rsplit("_v", 1)[1]) for name in versions]
    current_number = int(current.rsplit("_v", 1)[1]) if current in versions else 0
    for number in sorted(numbers, reverse=True):
        if number <= current_number:
            break
        try:
            store.check_fingerprint(fingerprint, version_name(store, number))
        except ModelMismatchError:
            continue
        return number
    number = max(numbers, default=0) + 1
    ensure_version(store, number, fingerprint, quantization)
    return number
