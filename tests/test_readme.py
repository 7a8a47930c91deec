"""The README's set-up commands are the ones CI runs, and its configuration table is complete."""

from __future__ import annotations

import re

from conftest import ROOT


def _bash_blocks(text: str) -> list[str]:
    return re.findall(r"```bash\n(.*?)```", text, flags=re.S)


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    ci_command = (ROOT / ".ci" / "run").read_text().strip().splitlines()[-1].strip()
    assert "pytest" in ci_command
    assert any(line.strip() == ci_command for block in _bash_blocks(readme) for line in block.splitlines())


def test_readme_run_command_installs_indexes_and_starts_the_app():
    readme = (ROOT / "README.md").read_text()
    run = [line for block in _bash_blocks(readme) for line in block.splitlines() if "app.py" in line][0]
    assert "pip install -r requirements.txt" in run and "-m indexing --if-empty" in run


def test_every_setting_is_documented():
    from webapp.settings import AppSettings  # the core's settings and the app's own

    readme = (ROOT / "README.md").read_text()
    for name, field in AppSettings.model_fields.items():
        alias = field.validation_alias
        names = list(alias.choices) if alias is not None else [f"LOOKALIKE_{name.upper()}"]
        assert any(f"`{n}`" in readme for n in names), f"{names[0]} is not in the README's configuration table"
