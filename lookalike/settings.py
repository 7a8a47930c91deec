"""One settings object for the app, the indexer and the benchmarks, read from the environment.

Qdrant's own variables keep their usual names (``QDRANT_URL``, ``QDRANT_API_KEY``); everything
else is prefixed ``LOOKALIKE_``. The API key is a ``SecretStr``: it never shows in ``repr``,
``str``, logs or error messages.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

WEIGHTS_FILE_NAME = "20180402-114759-vggface2.pt"


class Settings(BaseSettings):
    """Configuration, each field from the environment variable named in its ``validation_alias``.

    Without ``QDRANT_URL`` the store is an embedded Qdrant under ``data_dir / "qdrant"``.
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
    embedded_engine: Literal["edge", "local"] = Field(
        default="edge",
        description="Embedded store engine: 'edge' (Qdrant's own engine in-process, HNSW) or 'local' "
        "(qdrant-client's pure-Python local mode).",
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
        description="'fast' runs facenet-pytorch's MTCNN networks and stages with batched resampling in "
        "onnxruntime (same boxes, CPU); 'facenet' calls facenet-pytorch's own "
        "MTCNN.detect.",
    )
    use_centroids: bool = Field(
        default=False,
        description="Query the per-person mean faces built by `python -m indexing --centroids` (one point "
        "per person) instead of every face.",
    )
    embedder: Literal["torch", "onnx"] = Field(
        default="onnx",
        description="'onnx' runs FaceNet in onnxruntime on the CPU (exported once, cached; ~3x faster at "
        "batch 1, same vectors to 1e-7); 'torch' runs it in torch.",
    )

    @field_validator("qdrant_url", mode="before")
    @classmethod
    def _blank_url_is_none(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    @property
    def embedded(self) -> bool:
        """True when no Qdrant URL is set and the store lives under ``data_dir``."""
        return self.qdrant_url is None

    @property
    def embedded_path(self) -> Path:
        """Folder of the embedded Qdrant store (one per engine: their formats differ)."""
        return self.data_dir / ("edge" if self.embedded_engine == "edge" else "qdrant")

    def resolved_device(self) -> str:
        """``"cuda"`` or ``"cpu"``: ``auto`` picks CUDA when torch sees a GPU."""
        if self.device != "auto":
            return self.device
        import torch

        return "cuda" if torch.cuda.is_available() else "cpu"
