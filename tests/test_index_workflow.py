"""The weekly index workflow's own shell scripts, run as GitHub runs them.

Each test takes a step's actual ``run:`` script from ``.github/workflows/index.yml`` and runs it under
the shell GitHub would use for it (``bash --noprofile --norc -eo pipefail`` when the workflow names
``shell: bash``, ``bash -e`` otherwise), with a stub ``python`` on PATH standing in for the indexer, so
what is checked is the workflow's bash: a failed or garbled ``--prepare`` and a missing ``QDRANT_URL``
must fail the job with one ``::error::`` line instead of passing an empty version on to the shards.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from conftest import ROOT

INDEX_YML = ROOT / ".github" / "workflows" / "index.yml"

STUB_PYTHON = """#!/bin/sh
# Stands in for `python -m indexing --prepare`: prints STUB_OUTPUT, exits with STUB_STATUS.
printf '%s\\n' "INFO indexing: a log line first" "$STUB_OUTPUT"
exit "${STUB_STATUS:-0}"
"""


def _workflow() -> dict[str, Any]:
    return yaml.safe_load(INDEX_YML.read_text())


def _step(job: str, name: str) -> dict[str, Any]:
    (step,) = [s for s in _workflow()["jobs"][job]["steps"] if s.get("name") == name]
    return step


def _github_shell(job: str) -> list[str]:
    """The command GitHub runs a ``run:`` script with: pipefail only when ``shell: bash`` is named
    (docs: "Using a specific shell"), by the job's or the workflow's ``defaults``."""
    workflow = _workflow()
    shell = (workflow["jobs"][job].get("defaults", {}).get("run", {}).get("shell")
             or workflow.get("defaults", {}).get("run", {}).get("shell"))
    return ["bash", "--noprofile", "--norc", "-eo", "pipefail"] if shell == "bash" else ["bash", "-e"]


def _run_step(tmp_path: Path, job: str, name: str, **env: str) -> tuple[subprocess.CompletedProcess[str], str]:
    """Runs the step's script in ``tmp_path`` with the stub python first on PATH; returns the process and
    what it wrote to ``$GITHUB_OUTPUT``."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    stub = bin_dir / "python"
    stub.write_text(STUB_PYTHON)
    stub.chmod(0o755)
    script = tmp_path / "step.sh"
    script.write_text(_step(job, name)["run"])
    output = tmp_path / "github_output"
    output.write_text("")
    environment = {"PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}", "GITHUB_OUTPUT": str(output),
                   "HOME": str(tmp_path), **env}
    result = subprocess.run([*_github_shell(job), str(script)], cwd=tmp_path, env=environment,
                            capture_output=True, text=True, timeout=30, check=False)
    return result, output.read_text()


PREPARE = ("prepare", "Create or resume the collection version")
PIN = ("prepare", "Pin the sources to their current commits")
CHECK = "Require the QDRANT_URL secret"


def test_prepare_passes_the_version_it_is_given(tmp_path: Path) -> None:
    result, output = _run_step(tmp_path, *PREPARE, STUB_OUTPUT="7", QDRANT_URL="https://q.example")
    assert result.returncode == 0, result.stdout + result.stderr
    assert output == "version=7\n"


@pytest.mark.parametrize("printed", ["", "error: Qdrant is unreachable", "v7", "0", "7 8"])
def test_prepare_fails_when_it_prints_no_version_number(tmp_path: Path, printed: str) -> None:
    result, output = _run_step(tmp_path, *PREPARE, STUB_OUTPUT=printed, QDRANT_URL="https://q.example")
    assert result.returncode != 0
    errors = [line for line in result.stdout.splitlines() if line.startswith("::error::")]
    assert len(errors) == 1 and "version number" in errors[0], result.stdout
    assert "version=" not in output  # the shards never get an empty or garbled version


def test_prepare_fails_when_the_indexer_fails_even_if_its_last_line_is_a_number(tmp_path: Path) -> None:
    """Without pipefail ``tail`` decides the pipe's status: a failed --prepare would pass on its last line."""
    result, output = _run_step(tmp_path, *PREPARE, STUB_OUTPUT="7", STUB_STATUS="1", QDRANT_URL="https://q.example")
    assert result.returncode != 0, result.stdout
    assert output == ""


def test_a_missing_qdrant_url_stops_prepare_first_and_so_every_job(tmp_path: Path) -> None:
    jobs = _workflow()["jobs"]
    steps = jobs["prepare"]["steps"]
    assert steps[0]["name"] == CHECK  # before checkout, install or any download
    assert steps[0]["env"] == {"QDRANT_URL": "${{ secrets.QDRANT_URL }}"}
    assert jobs["index"]["needs"] == "prepare" and "prepare" in jobs["finalize"]["needs"]  # they never start
    for missing in ({"QDRANT_URL": ""}, {}):
        result, _ = _run_step(tmp_path, "prepare", CHECK, **missing)
        assert result.returncode != 0
        errors = [line for line in result.stdout.splitlines() if line.startswith("::error::")]
        assert len(errors) == 1 and "QDRANT_URL" in errors[0], result.stdout
    result, _ = _run_step(tmp_path, "prepare", CHECK, QDRANT_URL="https://q.example")
    assert result.returncode == 0 and result.stdout == "", result.stdout + result.stderr


def test_every_job_installs_the_runtime_requirements_alone() -> None:
    for job_id, job in _workflow()["jobs"].items():
        installs = [s["run"] for s in job["steps"] if "pip install" in s.get("run", "")]
        assert installs == ["pip install -r requirements.txt"], job_id
        assert "PIP_EXTRA_INDEX_URL" not in str(job.get("env", {})) + str(job["steps"]), job_id  # not overridden


def test_readme_states_the_workflows_timeouts() -> None:
    jobs = _workflow()["jobs"]
    readme = (ROOT / "README.md").read_text()
    stated = {int(m) for m in re.findall(r"`timeout-minutes: (\d+)`", readme)}
    assert stated == {jobs["index"]["timeout-minutes"]}, stated
    assert jobs["finalize"]["timeout-minutes"] <= jobs["index"]["timeout-minutes"]


def test_pin_passes_the_pinned_sources_on_and_fails_without_them(tmp_path: Path) -> None:
    pinned = '["owner/name?revision=abc", "other/set?revision=def"]'
    result, output = _run_step(tmp_path, *PIN, STUB_OUTPUT=pinned, SOURCE="")
    assert result.returncode == 0, result.stdout + result.stderr
    assert output == f"sources={pinned}\n"
    for printed, status in (("error: Qdrant is unreachable", "0"), (pinned, "2")):
        result, output = _run_step(tmp_path, *PIN, STUB_OUTPUT=printed, STUB_STATUS=status, SOURCE="")
        assert result.returncode != 0 and output == "", result.stdout
