"""ruff and mypy over the linted paths (pyproject.toml holds their settings): each test fails with the
linter's own report."""

from __future__ import annotations

import subprocess
import sys

import pytest

from conftest import ROOT

LINTED = ["app.py", "lookalike", "indexing", "webapp", "evaluation", "bench", "tests"]
"""The paths both linters check: every Python file of the project."""


def run(*command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", *command], cwd=ROOT, capture_output=True, text=True, timeout=300)


def test_ruff_finds_nothing():
    done = run("ruff", "check", "--no-cache", "--output-format", "concise", *LINTED)
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.timeout(300)
def test_mypy_finds_nothing():
    """Its cache (``.mypy_cache``, git-ignored) makes a second run about 1 s instead of 15-20 s."""
    done = run("mypy", *LINTED)
    assert done.returncode == 0, done.stdout + done.stderr
