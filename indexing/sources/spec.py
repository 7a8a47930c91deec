"""Source specs: ``owner/name?split=test&name_column=person`` parsed, checked, pinned to a Hub commit, and
resolved to what they name (a Hub dataset, a local dataset folder, a ``save_to_disk`` or image folder)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qsl

from indexing.hub import dataset_revision, is_repo_id
from indexing.sources.known import KNOWN_SOURCES

SOURCE_OPTIONS = ("split", "config", "image_column", "name_column", "id_column", "id_space", "revision")


def parse_source_spec(text: str) -> tuple[str, dict[str, str]]:
    """``"owner/name?split=test&name_column=person"`` -> ``("owner/name", {"split": "test", ...})``.

    Options after ``?`` apply to that source only and override the command-line defaults.

    Raises:
        ValueError: an unknown option.
    """
    spec, _, query = text.partition("?")
    options = dict(parse_qsl(query, keep_blank_values=False)) if query else {}
    unknown = sorted(set(options) - set(SOURCE_OPTIONS))
    if unknown:
        raise ValueError(f"{spec}: unknown source option {', '.join(unknown)} (known: {', '.join(SOURCE_OPTIONS)}).")
    return spec, options


def check_source_spec(text: str) -> tuple[str, dict[str, str]]:
    """:func:`parse_source_spec`, and the checks that need no download: a folder that does not exist or a
    file is refused at once (so a run stops before loading any model).

    Raises:
        ValueError: an unknown option, a missing folder, a file.
    """
    spec, options = parse_source_spec(text)
    path = Path(spec).expanduser()
    if not path.exists() and not is_repo_id(spec):
        raise ValueError(f"{spec}: no such folder (a source is a folder, or a hub id like owner/name).")
    if path.is_file():
        raise ValueError(f"{spec} is a file; a source is a dataset or image folder, or a hub id like owner/name.")
    return spec, options


def pin_source(text: str, token: str | None = None) -> str:
    """``text`` with its Hub dataset pinned to the commit it is at now (``owner/name?revision=<sha>``), so
    every shard of one build reads the same files; a local folder, an already pinned spec, or any spec with
    ``HF_HUB_OFFLINE=1``, as it is."""
    where = resolve(text, None, None)
    if where.path.exists() or where.revision:
        return text
    revision = dataset_revision(where.spec, token)
    if revision is None:
        return text
    return f"{text}{'&' if '?' in text else '?'}revision={revision}"


@dataclass(frozen=True)
class Where:
    """A source spec resolved: what it names and how to load it."""

    spec: str
    options: dict[str, str]
    path: Path
    split: str
    config: str | None
    revision: str | None = None

    @property
    def hub_revision(self) -> str | None:
        """The Hub commit to read (``?revision=``); None for a local folder or the newest commit."""
        return None if self.path.exists() else self.revision

    @property
    def saved(self) -> bool:
        """A ``save_to_disk`` folder."""
        return self.path.is_dir() and ((self.path / "dataset_info.json").exists()
                                       or (self.path / "dataset_dict.json").exists())

    @property
    def image_folder(self) -> bool:
        return self.path.is_dir() and not self.saved and _is_image_folder(self.path)

    @property
    def target(self) -> str:
        """What ``load_dataset`` takes: the local folder, or the hub id."""
        return str(self.path) if self.path.exists() else self.spec

    @property
    def label(self) -> str:
        """How the source is named in its rows' references and in messages: the folder's name, or the hub id."""
        return self.path.name if self.path.exists() else self.spec


def resolve(text: str, split: str | None, config: str | None) -> Where:
    """What ``text`` names, its own options winning over ``split`` and ``config``, then :data:`KNOWN_SOURCES`.

    Raises:
        ValueError: as :func:`check_source_spec`.
    """
    spec, options = check_source_spec(text)
    known = KNOWN_SOURCES.get(spec, {})
    return Where(spec, options, Path(spec).expanduser(), options.get("split", split) or known.get("split", "train"),
                 options.get("config", config), options.get("revision"))


def _is_image_folder(path: Path) -> bool:
    """A folder of per-person sub-folders of image files (not a parquet dataset)."""
    if any(path.glob("*.parquet")) or (path / "data").is_dir() and any((path / "data").glob("*.parquet")):
        return False
    return any(p.is_dir() for p in path.iterdir())
