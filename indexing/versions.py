"""Collection versions behind the store's alias: ``<alias>_v1``, ``<alias>_v2``, ...

The one place that names, parses, creates, adopts, switches and drops versions, for the indexer, the
CLI, the tests and the benchmarks. Readers never need it: they go through the alias
(:meth:`lookalike.index.store.FaceStore.current_collection`). A rebuild fills a new version and moves the alias
(and the centroids alias beside it) in one atomic step, so readers never see a half-built index.
"""

from __future__ import annotations

import re

from lookalike.errors import ModelMismatchError
from lookalike.fingerprint import ModelFingerprint
from lookalike.index.storage.port import CollectionSettings
from lookalike.index.store import FaceStore, centroids_collection


def version_name(store: FaceStore, number: int) -> str:
    """The collection of version ``number`` behind the store's alias (``celebrities_v7``)."""
    return f"{store.alias}_v{number}"


def version_number(store: FaceStore, name: str) -> int | None:
    """The number of a version of the store's alias (7 for ``celebrities_v7``); None for any other name."""
    found = re.fullmatch(rf"{re.escape(store.alias)}_v(\d+)", name)
    return int(found.group(1)) if found else None


def versions(store: FaceStore) -> list[str]:
    """Names of the alias's versions, oldest first."""
    return [name for _, name in _numbered(store)]


def _numbered(store: FaceStore) -> list[tuple[int, str]]:
    """(number, name) of each of the alias's versions, oldest first."""
    return sorted((number, name) for name in store.collections()
                  if (number := version_number(store, name)) is not None)


def create_version(store: FaceStore, fingerprint: ModelFingerprint, quantization: str | None = None,
                   settings: CollectionSettings | None = None, number: int | None = None) -> str:
    """A new empty version recording ``fingerprint``: number ``number``, else the next after the newest.

    ``settings`` (default: the store's :meth:`~FaceStore.collection_settings` of ``quantization``) sets
    vectors, HNSW, quantization, on-disk placement and the payload indexes.
    """
    if number is None:
        number = max((n for n, _ in _numbered(store)), default=0) + 1
    name = version_name(store, number)
    store.create_collection(name, fingerprint, settings or store.collection_settings(quantization))
    return name


def ensure_version(store: FaceStore, number: int, fingerprint: ModelFingerprint,
                   quantization: str | None = None) -> str:
    """Version ``number``, created (empty, with the fingerprint) when it does not exist.

    Safe when several shards start at once: a shard that loses the race to create it uses the one
    the winner made.

    Raises:
        ModelMismatchError: the version exists and was built with other weights.
    """
    name = version_name(store, number)
    if name not in versions(store):
        try:
            create_version(store, fingerprint, quantization, number=number)
        except Exception:
            if name not in versions(store):
                raise
    store.check_fingerprint(fingerprint, name)
    return name


def current_or_new(store: FaceStore, fingerprint: ModelFingerprint, quantization: str | None = None,
                   settings: CollectionSettings | None = None) -> str:
    """The version behind the alias; else the newest version (adopted: a first run killed before the
    alias moved, resumed instead of starting over); else a new one. The alias is not moved.

    Raises:
        ModelMismatchError: that version was built with other weights.
    """
    current = store.current_collection()
    if current is None:
        existing = versions(store)
        if not existing:
            return create_version(store, fingerprint, quantization, settings)
        current = existing[-1]
    store.check_fingerprint(fingerprint, current)
    return current


def ensure_collection(store: FaceStore, fingerprint: ModelFingerprint, quantization: str | None = None,
                      settings: CollectionSettings | None = None) -> str:
    """:func:`current_or_new`, with the alias pointed at it when the alias had none: a store ready to read."""
    collection = current_or_new(store, fingerprint, quantization, settings)
    if store.current_collection() != collection:
        switch_alias(store, collection)
    return collection


def switch_alias(store: FaceStore, collection: str) -> None:
    """Move the alias to ``collection``, and the centroids alias to its centroids (removed when it has
    none), in one atomic step."""
    centroids = centroids_collection(collection)
    has_centroids = centroids in store.collections()
    store.set_aliases({store.alias: collection, store.centroids_alias: centroids if has_centroids else None})


def drop_old_versions(store: FaceStore, keep: int = 1) -> list[str]:
    """Delete all but the newest ``keep`` versions that the alias does not point at (with their centroids)."""
    current = store.current_collection()
    stale = [name for name in versions(store)[:-keep] if name != current] if keep else []
    names = set(store.collections())
    for name in stale:
        store.delete_collection(name)
        if centroids_collection(name) in names:
            store.delete_collection(centroids_collection(name))
    return stale


def prepare_version(store: FaceStore, fingerprint: ModelFingerprint, quantization: str | None = None) -> int:
    """The version a new build should write, created: the newest unfinished one, else the next number.

    Unfinished: newer than the version the alias points at and built with the same weights: a build
    whose shard failed, whose photos the next build then keeps instead of embedding them again.
    """
    numbers = [number for number, _ in _numbered(store)]
    current = store.current_collection()
    current_number = (version_number(store, current) or 0) if current else 0
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
