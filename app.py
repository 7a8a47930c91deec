"""The Space's entry point: ``python app.py`` serves the look-alike app on 0.0.0.0:7860.

Every setting comes from :class:`webapp.settings.AppSettings` (the environment: ``QDRANT_URL`` /
``QDRANT_API_KEY`` as Space secrets, ``GRADIO_SERVER_NAME`` / ``GRADIO_SERVER_PORT``, ``LOOKALIKE_MCP``,
``LOOKALIKE_TORCH_THREADS``, ...); the wiring is :mod:`webapp.wiring`.
"""

from __future__ import annotations

import logging

# First: on ZeroGPU, spaces patches torch's CUDA before anything imports torch (a no-op elsewhere).
import spaces  # noqa: F401, I001

from webapp.settings import AppSettings
from webapp.wiring import create_app, launch_kwargs


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    settings = AppSettings()
    create_app(settings).launch(**launch_kwargs(settings))


if __name__ == "__main__":
    main()
