"""indexing.hub's look-up of a dataset before a run, against a recording stand-in of the Hub's HTTP API
(``huggingface_hub``'s endpoint pointed at it): asked once online, never with ``HF_HUB_OFFLINE=1``."""

from __future__ import annotations

import pytest

from indexing.hub import check_hub
from support import recording_server


@pytest.fixture
def hub(monkeypatch):
    """The requests the stand-in Hub receives; it knows one dataset, ``owner/faces``."""
    import huggingface_hub.constants

    def answer(request, base):
        return {"id": "owner/faces", "private": False, "sha": "0" * 40, "tags": [], "siblings": []}

    with recording_server(answer) as (url, requests):
        monkeypatch.setenv("HF_ENDPOINT", url)
        monkeypatch.setattr(huggingface_hub.constants, "ENDPOINT", url)
        monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
        monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
        yield requests


def test_online_the_hub_is_asked_once_for_the_dataset(hub):
    assert check_hub("owner/faces", None) is None
    asked = [(r.method, r.path.split("?")[0]) for r in hub if r.path.startswith("/api/datasets/")]
    assert asked == [("GET", "/api/datasets/owner/faces")]


def test_with_hf_hub_offline_the_hub_is_never_asked(hub, monkeypatch):
    import huggingface_hub.constants

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # as a user sets it; huggingface_hub reads it at import
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    assert check_hub("owner/faces", None) is None
    assert check_hub("owner/not-downloaded", None) is None  # datasets says so from its cache, at once
    assert hub == []
