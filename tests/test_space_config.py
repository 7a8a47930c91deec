"""The Space's configuration fits where it runs: the README front matter and requirements.txt against
ZeroGPU's supported versions (Hugging Face's ZeroGPU docs: Python 3.10.13 or 3.12.12, PyTorch 2.8.0 to
2.11.0), Gradio pinned to the front matter's SDK version, and every dependency bounded."""

from __future__ import annotations

import tomllib

from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.version import Version

from conftest import ROOT

ZEROGPU_PYTHONS = {"3.10", "3.12"}
ZEROGPU_TORCH = SpecifierSet(">=2.8.0,<2.12")


def front_matter() -> dict[str, str]:
    text = (ROOT / "README.md").read_text().split("---\n")[1]
    return {key.strip(): value.strip().strip('"') for key, value in
            (line.split(":", 1) for line in text.splitlines() if ":" in line)}


def requirements(name: str) -> dict[str, Requirement]:
    lines = (ROOT / name).read_text().splitlines()
    found = [Requirement(line) for line in lines if line.strip() and not line.startswith(("#", "-"))]
    return {req.name.lower(): req for req in found}


def pinned(req: Requirement) -> Version:
    (spec,) = req.specifier
    assert spec.operator == "==", f"{req} is not pinned"
    return Version(spec.version)


def test_the_space_runs_a_python_and_torch_that_zerogpu_supports():
    python = front_matter()["python_version"]
    assert python in ZEROGPU_PYTHONS
    declared = SpecifierSet(tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["requires-python"])
    assert Version(python) in declared and Version("3.11") in declared
    runtime = requirements("requirements.txt")
    assert pinned(runtime["torch"]) in ZEROGPU_TORCH
    # torchvision's minor release follows torch's: 0.26 is built for torch 2.11, 0.25 for 2.10, ...
    assert pinned(runtime["torchvision"]).minor == pinned(runtime["torch"]).minor + 15
    assert "spaces" in runtime


def test_gradio_is_pinned_to_the_front_matters_sdk_version():
    assert front_matter()["sdk"] == "gradio"
    assert pinned(requirements("requirements.txt")["gradio"]) == Version(front_matter()["sdk_version"])


def test_every_dependency_has_an_upper_bound():
    for name in ("requirements.txt", "requirements-dev.txt"):
        for req in requirements(name).values():
            assert any(spec.operator in ("==", "<", "<=", "~=") for spec in req.specifier), f"{name}: {req}"

