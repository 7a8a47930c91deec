"""Create the Hugging Face Space named by $SPACE if needed and upload the app to it (run by sync-space.yml).

``stage(folder)`` copies exactly what the Space runs (the tracked files minus :data:`IGNORE`) into a
folder; the upload sends that folder, and ``tests/test_space_rehearsal.py`` starts the app from one.
Remote files that are no longer in the repository are deleted in the same commit, so the Space mirrors
main. The token is read from the environment by huggingface_hub and never printed.

Environment: ``HF_TOKEN`` (write access, required), ``SPACE`` (``owner/name``, required),
``SPACE_HARDWARE`` (``zero-a10g``, the ZeroGPU hardware a free account can host, by default; or a paid
CPU flavour such as ``cpu-basic``, whose requirements then take torch's CPU-only wheels).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

IGNORE = ["tests/**", "bench/**", ".github/**", ".ci/**", ".git/**", "**/__pycache__/**", "data/**",
          ".venv/**", "test-output/**", "requirements-dev.txt", ".gitignore"]
"""Kept out of the Space: tests and their photos, benchmarks, CI, local data and caches."""

ZERO_GPU = "zero-a10g"
"""ZeroGPU's hardware name in the Hub's API (the GPU behind it is whatever Hugging Face runs now)."""

CPU_WHEELS = "--extra-index-url https://download.pytorch.org/whl/cpu"
"""Prepended to a CPU Space's requirements: pip then takes torch's CPU-only build (no CUDA libraries)."""


def space_files(root: Path = ROOT) -> list[str]:
    """The repository's tracked files that the Space runs, as paths relative to ``root``."""
    from huggingface_hub.utils import filter_repo_objects

    tracked = subprocess.run(["git", "ls-files", "-z"], cwd=root, capture_output=True, text=True,
                             check=True).stdout.split("\0")
    return sorted(filter_repo_objects([f for f in tracked if f], ignore_patterns=IGNORE))


def stage(folder: Path, hardware: str = ZERO_GPU, root: Path = ROOT) -> list[str]:
    """Copy the Space's files into ``folder`` (requirements adapted to ``hardware``); returns their paths."""
    files = space_files(root)
    for name in files:
        target = folder / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(root / name, target)
    if hardware.startswith("cpu"):
        requirements = folder / "requirements.txt"
        requirements.write_text(f"{CPU_WHEELS}\n{requirements.read_text()}")
    return files


def main() -> int:
    space, hardware = os.environ.get("SPACE", ""), os.environ.get("SPACE_HARDWARE") or ZERO_GPU
    if not os.environ.get("HF_TOKEN"):
        print("::error::HF_TOKEN is not set: add a Hugging Face token with write access as the repository "
              "secret HF_TOKEN (README, Deploy).", file=sys.stderr)
        return 1
    if space.count("/") != 1:
        print(f"::error::SPACE must be owner/name, not {space!r} (repository variable HF_SPACE).", file=sys.stderr)
        return 1
    from huggingface_hub import HfApi
    from huggingface_hub.errors import HfHubHTTPError

    api = HfApi()
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                            text=True).stdout.strip()
    try:
        # exist_ok: an existing Space keeps its hardware, secrets and settings; a new one gets ``hardware``.
        url = api.create_repo(space, repo_type="space", space_sdk="gradio", space_hardware=hardware, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix="space-") as folder:
            files = stage(Path(folder), hardware)
            api.upload_folder(repo_id=space, repo_type="space", folder_path=folder, delete_patterns=["*"],
                              commit_message=f"Sync from GitHub {commit}".strip())
    except HfHubHTTPError as exc:  # the Hub's own sentence (a 402 for hardware the account cannot use, say)
        print(f"::error::The Hub refused the sync of {space}: {' '.join(str(exc).split())}", file=sys.stderr)
        return 1
    print(f"uploaded {len(files)} files to {url}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
