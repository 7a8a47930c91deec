"""The layers' promises (ARCHITECTURE.md), checked where the files live: who may import whom, which
package alone may use which outside library, no import circle, no module importing another's
private names, and which settings the core holds and which packages never read them."""

from __future__ import annotations

import ast
from collections.abc import Iterable
from pathlib import Path

from conftest import ROOT

PACKAGES = ("lookalike", "indexing", "webapp", "evaluation")


def product_files() -> dict[str, Path]:
    """Each product module's dotted name and file."""
    files = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            name = ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
            files[name] = path
    return files


def project_modules() -> dict[str, set[str]]:
    """Each product module and the product modules it imports (anywhere in it, functions included)."""
    files = product_files()
    graph = {}
    for name, path in files.items():
        imported = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                imported |= {node.module} | {f"{node.module}.{alias.name}" for alias in node.names}
            elif isinstance(node, ast.Import):
                imported |= {alias.name for alias in node.names}
        graph[name] = {m for m in imported if m in files and m != name}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    found, state, path = [], {}, []

    def visit(node: str) -> None:
        state[node] = "open"
        path.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == "open":
                found.append(path[path.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt)
        path.pop()
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            visit(node)
    return found


def test_no_import_circle_among_the_products_modules():
    assert cycles(project_modules()) == []


def test_the_circle_check_finds_a_circle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == [["a", "b", "c", "a"]]


MAY_IMPORT = {
    "lookalike": {"lookalike"},
    "indexing": {"lookalike", "indexing"},
    "webapp": {"lookalike", "indexing", "webapp"},
    "evaluation": {"lookalike", "indexing", "evaluation"},
}
"""Each package and the product packages it may import (ARCHITECTURE.md, "Who imports whom")."""

ONLY_IN = {
    "gradio": "webapp", "spaces": "webapp",
    "qdrant_client": "lookalike.index.storage", "qdrant_edge": "lookalike.index.storage",
    "datasets": "indexing", "huggingface_hub": "indexing",
    "openvino": "lookalike.faces", "onnxruntime": "lookalike.faces", "cv2": "lookalike.faces",
}
"""Outside libraries that one package alone may import: the page alone knows Gradio, the storage
adapters alone know Qdrant, the sources alone know the Hub, the face models alone know their runtimes and
OpenCV."""


def layer_breaches(graph: dict[str, set[str]]) -> set[tuple[str, str]]:
    """(module, imported module) for each import that :data:`MAY_IMPORT` does not allow."""
    return {(module, dep) for module, deps in graph.items() for dep in deps
            if dep.split(".")[0] not in MAY_IMPORT[module.split(".")[0]]}


def outside_imports() -> dict[str, set[str]]:
    """Each product module and the top-level names of the outside libraries it imports."""
    found = {}
    for name, path in product_files().items():
        tops = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                tops.add(node.module.split(".")[0])
            elif isinstance(node, ast.Import):
                tops |= {alias.name.split(".")[0] for alias in node.names}
        found[name] = tops - set(PACKAGES)
    return found


def test_each_package_imports_only_what_the_architecture_allows():
    assert layer_breaches(project_modules()) == set()


def test_the_layer_check_finds_an_upward_import():
    graph = {"lookalike.search": {"webapp.page"}, "webapp.page": {"lookalike.search"}, "indexing.x": {"webapp.fill"}}
    assert layer_breaches(graph) == {("lookalike.search", "webapp.page"), ("indexing.x", "webapp.fill")}


def test_gradio_qdrant_and_the_hub_are_each_known_to_one_package():
    misplaced = {(module, library) for module, libraries in outside_imports().items() for library in libraries
                 if library in ONLY_IN and not (module + ".").startswith(ONLY_IN[library] + ".")}
    assert misplaced == set()


def private_imports(sources: dict[str, str]) -> set[tuple[str, str]]:
    """(importer, dotted name) for each private ``_name`` a module imports from a product module."""
    found = set()
    for name, text in sources.items():
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").split(".")[0] in PACKAGES:
                found |= {(name, f"{node.module}.{alias.name}") for alias in node.names
                          if alias.name.startswith("_") and not alias.name.startswith("__")}
    return found


def test_no_module_imports_a_private_name_of_another():
    assert private_imports({name: path.read_text() for name, path in product_files().items()}) == set()


def test_the_private_import_check_finds_one():
    source = "def f():\n    from indexing.cli import _one_line, main\n    from os import _exit\n"
    assert private_imports({"webapp.fill": source}) == {("webapp.fill", "indexing.cli._one_line")}


SETTINGS_FREE = ("lookalike.faces", "lookalike.index")
"""Packages built from small configs and plain arguments (ARCHITECTURE.md, "Composition roots"): none of
their modules imports the settings."""

SETTINGS_MODULES = {"lookalike.settings", "webapp.settings"}


def settings_readers(graph: dict[str, set[str]]) -> set[str]:
    """The modules of :data:`SETTINGS_FREE` that import a settings module."""
    return {module for module, deps in graph.items()
            if (module + ".").startswith(tuple(p + "." for p in SETTINGS_FREE)) and deps & SETTINGS_MODULES}


def test_the_faces_and_the_index_are_built_from_configs_not_from_the_settings():
    assert settings_readers(project_modules()) == set()


def test_the_settings_check_finds_a_face_module_that_reads_the_settings():
    graph = {"lookalike.faces.pipeline": {"lookalike.settings"}, "lookalike.faces.detection": {"lookalike.errors"},
             "lookalike.search": {"lookalike.settings"}}
    assert settings_readers(graph) == {"lookalike.faces.pipeline"}


def fields_only_the_app_reads(fields: Iterable[str], sources: dict[str, str]) -> set[str]:
    """The ``fields`` that no module outside ``webapp`` reads as an attribute (``settings.field``)."""
    read = {node.attr for name, text in sources.items() if name.split(".")[0] != "webapp"
            for node in ast.walk(ast.parse(text)) if isinstance(node, ast.Attribute)}
    return set(fields) - read


def test_the_core_settings_hold_no_field_that_only_the_app_reads():
    from lookalike.settings import Settings

    sources = {name: path.read_text() for name, path in product_files().items()}
    assert fields_only_the_app_reads(Settings.model_fields, sources) == set()


def test_the_app_field_check_finds_a_field_only_the_app_reads():
    sources = {"lookalike.search": "k = settings.top_k\n", "webapp.wiring": "k, m = settings.top_k, settings.mcp\n"}
    assert fields_only_the_app_reads({"top_k", "mcp"}, sources) == {"mcp"}
