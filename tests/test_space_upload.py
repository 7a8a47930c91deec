"""The Space sync (``.github/space_upload.py``) through the real ``huggingface_hub`` client, against a
stand-in of the Hub's HTTP API on 127.0.0.1 (``HF_ENDPOINT``): it creates the Space (gradio, ZeroGPU
unless told otherwise), uploads exactly the staged files in one commit, and fails without a token."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys

from conftest import ROOT
from support import Refusal, Request, recording_server, space_upload

TOKEN = "hf_test_token_not_a_secret"


def hub(request: Request, base: str) -> object:
    """The Hub's answers to what ``create_repo`` and ``upload_folder`` ask."""
    if request.path == "/api/repos/create":
        return {"url": f"{base}/spaces/me/lookalike", "name": "me/lookalike"}
    if "/preupload/" in request.path:
        files = json.loads(request.body)["files"]
        return {"files": [{"path": f["path"], "uploadMode": "regular", "shouldIgnore": False} for f in files]}
    if "/commit/" in request.path:
        return {"commitUrl": f"{base}/spaces/me/lookalike/commit/{'a' * 40}", "commitOid": "a" * 40}
    if "/tree/" in request.path:
        return []
    return {}


def sync(endpoint: str, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HUGGING", "SPACE"))}
    environment.update({"HF_ENDPOINT": endpoint, "SPACE": "me/lookalike", **env})
    return subprocess.run([sys.executable, ".github/space_upload.py"], cwd=ROOT, env=environment,
                          capture_output=True, text=True, timeout=120)


def committed_files(requests: list[Request]) -> dict[str, bytes]:
    """The files of the commit the sync made (the commit endpoint's NDJSON lines), path -> content."""
    (commit,) = [r for r in requests if "/commit/" in r.path]
    lines = [json.loads(line) for line in commit.body.decode().splitlines()]
    return {line["value"]["path"]: base64.b64decode(line["value"]["content"]) for line in lines
            if line["key"] == "file"}


def test_sync_creates_a_zerogpu_space_and_uploads_exactly_the_staged_files():
    with recording_server(hub) as (endpoint, requests):
        result = sync(endpoint, HF_TOKEN=TOKEN)
    assert result.returncode == 0, result.stderr[-2000:]
    (create,) = [r for r in requests if r.path == "/api/repos/create"]
    assert json.loads(create.body) == {"name": "lookalike", "organization": "me", "type": "space",
                                             "sdk": "gradio", "hardware": "zero-a10g"}
    files = committed_files(requests)
    assert sorted(files) == space_upload().space_files()
    assert files["requirements.txt"] == (ROOT / "requirements.txt").read_bytes()
    assert all(r.headers.get("authorization") == f"Bearer {TOKEN}" for r in requests if r.path.startswith(
        ("/api/repos", "/api/spaces")))
    assert TOKEN not in result.stdout + result.stderr


def test_a_cpu_space_gets_torchs_cpu_only_wheels():
    with recording_server(hub) as (endpoint, requests):
        result = sync(endpoint, HF_TOKEN=TOKEN, SPACE_HARDWARE="cpu-basic")
    assert result.returncode == 0, result.stderr[-2000:]
    (create,) = [r for r in requests if r.path == "/api/repos/create"]
    assert json.loads(create.body)["hardware"] == "cpu-basic"
    requirements = committed_files(requests)["requirements.txt"].decode().splitlines()
    assert requirements[0] == "--extra-index-url https://download.pytorch.org/whl/cpu"
    assert requirements[1:] == (ROOT / "requirements.txt").read_text().splitlines()


def test_sync_without_a_token_fails_and_sends_nothing():
    with recording_server(hub) as (endpoint, requests):
        result = sync(endpoint)
    assert result.returncode == 1
    assert "HF_TOKEN is not set" in result.stderr
    assert requests == []


def test_sync_refuses_a_space_name_that_is_not_owner_slash_name():
    with recording_server(hub) as (endpoint, requests):
        result = sync(endpoint, HF_TOKEN=TOKEN, SPACE="lookalike")
    assert result.returncode == 1 and "SPACE must be owner/name" in result.stderr
    assert requests == []



def test_a_refusal_by_the_hub_fails_the_sync_with_the_hubs_sentence():
    def refuse_hardware(request: Request, base: str) -> object:
        if request.path == "/api/repos/create":
            return Refusal(402, {"error": "Upgrade to PRO to use this hardware"})
        if request.path == "/api/spaces/me/lookalike":  # asked after a failed create: no such Space yet
            return Refusal(404, {"error": "Repository not found"})
        return hub(request, base)

    with recording_server(refuse_hardware) as (endpoint, requests):
        result = sync(endpoint, HF_TOKEN=TOKEN)
    assert result.returncode == 1
    (line,) = [line for line in result.stderr.splitlines() if line.startswith("::error::")]
    assert "me/lookalike" in line and "402" in line and "Upgrade to PRO to use this hardware" in line
    assert not [r for r in requests if "/commit/" in r.path]  # nothing uploaded
    assert TOKEN not in result.stdout + result.stderr
