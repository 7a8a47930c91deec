"""Upload the app to the Hugging Face Space named by $SPACE with $HF_TOKEN (run by sync-space.yml).

Only what the Space runs goes up; remote files that are no longer in the repository are deleted in the
same commit, so the Space mirrors main. The token is read from the environment by huggingface_hub and
never printed.
"""

from __future__ import annotations

import os
import subprocess

from huggingface_hub import upload_folder

IGNORE = ["tests/**", "bench/**", ".github/**", ".ci/**", ".git/**", "**/__pycache__/**", "data/**",
          ".venv/**", "test-output/**", "requirements-dev.txt"]
"""Kept out of the Space: tests and their photos, benchmarks, CI, local data and caches."""


def main() -> None:
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    upload_folder(repo_id=os.environ["SPACE"], repo_type="space", folder_path=".", ignore_patterns=IGNORE,
                  delete_patterns=["*"], commit_message=f"Sync from GitHub {commit}".strip())


if __name__ == "__main__":
    main()
