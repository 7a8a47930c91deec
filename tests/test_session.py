"""What a test session leaves behind: its temporary folders (the built datasets, Gradio's uploads, datasets'
cache, the models' exports) go when it ends, so runs do not pile up in the temp directory."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from conftest import ROOT


def test_a_session_leaves_nothing_in_the_temp_directory(tmp_path: Path):
    """A session of one quick test with its own temp directory; pytest's own folders go elsewhere
    (``--basetemp``), so whatever is left was made by the suite's conftest or support."""
    temp = tmp_path / "tmp"
    temp.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")} | {"TMPDIR": str(temp)}
    done = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-n", "0", "-q",
                           f"--basetemp={tmp_path / 'pytest'}",
                           "tests/test_layout.py::test_the_circle_check_finds_a_circle"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert sorted(p.name for p in temp.iterdir()) == []
