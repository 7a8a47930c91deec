"""The README's set-up commands are the ones CI runs, its Python example runs, and its configuration table
is complete."""

from __future__ import annotations

import re
import shutil

import pytest

from conftest import CORE_FIXTURES, FIVE_TRAIN, ROOT
from support import copy_photos, image_files, readme_block


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


@pytest.mark.usefixtures(*CORE_FIXTURES)
def test_the_python_example_finds_the_person_in_an_indexed_photo(pipeline, monkeypatch, tmp_path, capsys):
    """The README's "Use it from Python" code, as written, in a folder whose ``./data`` holds an index of one
    photo of each five_celebs person, with me.jpg one of them (the session's models stand in for a second load)."""
    import lookalike.search
    from indexing.indexer import Indexer
    from indexing.sources import open_sources
    from lookalike.settings import Settings

    example = readme_block("Use it from Python", "python")
    for name in ("QDRANT_URL", "LOOKALIKE_QDRANT_URL", "LOOKALIKE_DATA_DIR", "LOOKALIKE_COLLECTION"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    photos = copy_photos(FIVE_TRAIN, tmp_path / "photos", per_person=1)
    store = lookalike.search.FaceStore.open(Settings().store_config())
    assert Indexer(pipeline, store).run(open_sources(str(photos)), progress=False).faces_indexed == 5
    store.close()
    shutil.copy(image_files(photos / "madonna")[0], tmp_path / "me.jpg")
    monkeypatch.setattr(lookalike.search, "FacePipeline", lambda *args, **kwargs: pipeline)

    namespace: dict = {}
    exec(compile(example, "README.md", "exec"), namespace)
    namespace["finder"].store.close()
    (line,) = capsys.readouterr().out.splitlines()  # one face
    assert line.endswith("]") and "('Madonna', 100)" in line and line.count("('") == 3  # top_k=3 people
