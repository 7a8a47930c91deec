"""The settings of the core and the indexer, read from the environment.

Qdrant's own variables keep their usual names (``QDRANT_URL``, ``QDRANT_API_KEY``); everything
else is prefixed ``LOOKALIKE_``. The API key is a ``SecretStr``: it never shows in ``repr``,
``str``, logs or error messages; nor does a ``user:password`` in ``QDRANT_URL`` (the repr shows the URL
without it, :mod:`lookalike.redaction`). The web app's own settings extend these in
:class:`webapp.settings.AppSettings`; the face pipeline takes its share as a
:class:`lookalike.faces.FaceConfig` (:meth:`Settings.face_config`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import AliasChoices, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from lookalike.redaction import without_credentials

if TYPE_CHECKING:
    from lookalike.faces.config import FaceConfig
    from lookalike.index.connection import StoreConfig

RuntimeName = Literal["auto", "openvino", "onnxruntime", "torch"]
"""A model's runtime setting (:mod:`lookalike.faces.runtime`): timed (``auto``) or forced."""

LEGACY_EMBEDDERS = {"onnx": "onnxruntime"}
"""Earlier values of ``LOOKALIKE_EMBEDDER`` and the runtime each meant."""


class Settings(BaseSettings):
    """Configuration, each field from the environment variable named in its ``validation_alias``.

    Without ``QDRANT_URL`` the store is an embedded Qdrant Edge store under ``data_dir / "edge"``.
    """

    model_config = SettingsConfigDict(env_prefix="LOOKALIKE_", extra="ignore", frozen=True, populate_by_name=True)

    qdrant_url: str | None = Field(
        default=None,
        validation_alias=AliasChoices("QDRANT_URL", "LOOKALIKE_QDRANT_URL"),
        description="Qdrant Cloud or server URL; unset means the embedded store.",
    )
    qdrant_api_key: SecretStr | None = Field(
        default=None,
        validation_alias=AliasChoices("QDRANT_API_KEY", "LOOKALIKE_QDRANT_API_KEY"),
        description="Qdrant API key (a secret: never printed).",
    )
    qdrant_timeout_s: float = Field(default=10.0, description="Timeout of one Qdrant request, seconds.")
    collection: str = Field(default="celebrities", description="The alias the app reads through.")
    data_dir: Path = Field(default=Path("data"), description="Folder of the embedded Qdrant store.")
    model_cache_dir: Path | None = Field(
        default=None,
        description="Folder of the models' ONNX exports and timed runtime choices; unset means data_dir/onnx.",
    )
    device: str = Field(default="auto", description="'auto' (CUDA when available), 'cpu' or 'cuda'.")
    top_k: int = Field(default=5, ge=1, le=50, description="Matches shown per face by default.")
    weights: Path | None = Field(
        default=None,
        description="Path of 20180402-114759-vggface2.pt; unset means $TORCH_HOME/checkpoints/.",
    )
    max_image_pixels: int = Field(
        default=50_000_000, ge=1, description="Larger images are refused before decoding (pixels)."
    )
    detect_max_side: int = Field(
        default=1280, ge=160, description="Images are shrunk to this longest side for detection (pixels)."
    )
    min_face_size: int = Field(default=40, ge=12, description="Smallest face MTCNN looks for (pixels).")
    detector: Literal["fast", "facenet"] = Field(
        default="fast",
        description="'fast' runs facenet-pytorch's MTCNN networks and stages with batched resampling, the "
        "networks in the runtime detector_runtime picks (same boxes, CPU); 'facenet' calls facenet-pytorch's "
        "own MTCNN.detect.",
    )
    use_centroids: bool = Field(
        default=False,
        description="Query the per-person mean faces built by `python -m indexing --centroids` (one point "
        "per person) instead of every face.",
    )
    embedder: RuntimeName = Field(
        default="auto",
        description="FaceNet's runtime: 'auto' times 'openvino', 'onnxruntime' and 'torch' the first time on a "
        "machine and keeps the fastest (cached with the export), or one of them forced (off the CPU: torch). "
        "The old value 'onnx' means 'onnxruntime'.",
    )
    detector_runtime: RuntimeName = Field(
        default="auto",
        description="The runtime of the fast detector's P-, R- and O-Net, chosen as the embedder's.",
    )

    hf_token: SecretStr | None = Field(
        default=None,
        validation_alias=AliasChoices("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN"),
        description="Hugging Face token for gated or private datasets (a secret: never printed).",
    )
    min_face_probability: float = Field(
        default=0.95, ge=0.0, le=1.0,
        description="Faces MTCNN is less sure of than this are boxed but not searched (a drawn face or a "
        "pattern: real faces score 0.99 and more).",
    )
    min_likeness: float = Field(
        default=25.0, ge=0.0, le=100.0,
        description="When even a face's best match is less alike than this (likeness, %), the face is "
        "answered as 'no close match'.",
    )
    likeness_center: float | None = Field(
        default=None, description="Cosine that reads 50 % likeness; unset: lookalike.likeness's default.")
    likeness_width: float | None = Field(
        default=None, gt=0, description="Cosine width of the likeness curve; unset: lookalike.likeness's default.")

    @field_validator("qdrant_url", mode="before")
    @classmethod
    def _blank_url_is_none(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("embedder", mode="before")
    @classmethod
    def _legacy_embedder(cls, value: object) -> object:
        return LEGACY_EMBEDDERS.get(value, value) if isinstance(value, str) else value

    def __repr_args__(self) -> Iterator[tuple[str | None, Any]]:
        # repr, str and pretty-printers all list the fields from here: the URL goes without its password
        for name, value in super().__repr_args__():
            yield name, without_credentials(value) if name == "qdrant_url" and value else value

    @property
    def embedded(self) -> bool:
        """True when no Qdrant URL is set and the store lives under ``data_dir``."""
        return self.qdrant_url is None

    @property
    def model_cache(self) -> Path:
        """Where the models' exports and runtime choices are kept (:mod:`lookalike.faces.runtime`)."""
        return self.model_cache_dir or self.data_dir / "onnx"

    @property
    def embedded_path(self) -> Path:
        """Folder of the embedded store (Qdrant Edge shards)."""
        return self.data_dir / "edge"

    def face_config(self) -> FaceConfig:
        """The face pipeline's share of these settings: each :class:`~lookalike.faces.FaceConfig` field
        from the setting of the same name."""
        from lookalike.faces.config import FaceConfig

        return FaceConfig(**{field.name: getattr(self, field.name) for field in dataclasses.fields(FaceConfig)})

    def store_config(self) -> StoreConfig:
        """Where the face store lives: the ``QDRANT_*`` server, else the embedded store under ``data_dir``."""
        from lookalike.index.connection import StoreConfig

        return StoreConfig(alias=self.collection, embedded_path=self.embedded_path, url=self.qdrant_url,
                           api_key=self.qdrant_api_key, timeout_s=self.qdrant_timeout_s)
