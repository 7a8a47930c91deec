"""The search's filters, declared once (lookalike.filters): what a declaration reads, offers and says, and a
filter added to the declarations alone showing up in the payload index, the search, the page's controls,
the API's arguments and checks and the MCP tool's description."""

from __future__ import annotations

import asyncio

import httpx
import numpy as np
import pytest

from conftest import CORE_FIXTURES
from fixtures_app import app_finder, launch
from lookalike import filters
from lookalike.filters import BadFilterError, Filter
from support import make_point, random_unit, rest_call

BY_NAME = {item.name: item for item in filters.FILTERS}
GENDER, DEPARTMENT = BY_NAME["gender"], BY_NAME["department"]

DECADE = Filter("decade", "metadata.birth_decade", int, label="Born in", anyone="Any decade",
                keeps="celebrities born in this decade", labels={1960: "The 1960s", 1970: "The 1970s"},
                words={1960: ("sixties", "60s"), 1970: ("seventies", "70s")})
"""A filter the app does not have, declared as the app's are."""


def test_a_coded_filter_reads_its_words_and_codes_and_refuses_other_words():
    assert [GENDER.read(v) for v in ("Female", " men ", "NON-BINARY", "2", 1)] == [1, 2, 3, 2, 1]
    assert GENDER.read("") is None and GENDER.read(None) is None and GENDER.read("  ") is None
    with pytest.raises(BadFilterError, match='use "female", "male" or "non-binary"'):
        GENDER.read("robots")


def test_a_keyword_filter_keeps_the_text_sent():
    assert DEPARTMENT.read(" Acting ") == "Acting" and DEPARTMENT.read("") is None


def test_choices_offer_only_labelled_codes_and_hide_a_filter_that_has_none():
    assert GENDER.choices([0, 1, 2, True, "1"]) == [("Anyone", ""), ("Women", 1), ("Men", 2)]
    assert GENDER.choices([0]) == []
    assert DEPARTMENT.choices(["Acting", 3]) == [("Any field", ""), ("Acting", "Acting")]


def test_descriptions_name_the_words_or_an_example():
    assert GENDER.doc == ('optional: only celebrities of this gender, "female", "male" or "non-binary"; '
                          "empty for anyone.")
    assert 'e.g. "Acting"' in DEPARTMENT.doc
    assert filters.describe({"gender": 1, "department": "Acting"}) == "women, Acting"


def test_a_declaration_that_the_api_could_not_take_is_refused(monkeypatch):
    from webapp.options import option_names

    with pytest.raises(ValueError, match="identifier"):
        Filter("birth decade", "metadata.birth_decade", int, label="Born in", anyone="Any", keeps="anyone")
    with pytest.raises(ValueError, match="lowercase"):
        Filter("decade", "metadata.birth_decade", int, label="Born in", anyone="Any", keeps="anyone",
               words={1960: ("Sixties",)})
    for clash in ("top_k", "gender"):
        monkeypatch.setattr(filters, "FILTERS", (*filters.FILTERS, Filter(
            clash, "metadata.x", str, label="X", anyone="Any", keeps="anyone")))
        with pytest.raises(ValueError, match=clash):
            option_names()


@pytest.mark.usefixtures(*CORE_FIXTURES)
def test_a_filter_declared_once_is_seen_everywhere(monkeypatch, pipeline, settings):
    """DECADE added to FILTERS, and nowhere else: a new collection indexes its field, the finder reads its
    values and searches by it, the page shows its dropdown in every search's inputs, and both endpoints take
    it as an argument (gradio_client, REST, MCP), with its words checked and described."""
    from gradio_client import Client
    from mcp import ClientSession
    from mcp.client.streamable_http import streamablehttp_client

    from indexing.versions import ensure_collection
    from lookalike.index.store import FaceStore

    monkeypatch.setattr(filters, "FILTERS", (*filters.FILTERS, DECADE))
    store = FaceStore.open(settings.store_config())
    ensure_collection(store, pipeline.fingerprint)
    rng = np.random.default_rng(0)
    decades = [1960, 1970, 1960, 1970, 1960, 1980]  # 1980 has no label: searchable, not offered
    points = [make_point(random_unit(rng), f"person-{i}", "0", birth_decade=d) for i, d in enumerate(decades)]
    store.upsert(points)
    # The payload index: the embedded engine facets only an indexed field.
    assert sorted((f.value, f.count) for f in store.engine.facet(store.alias, DECADE.path, 10)) == [
        (1960, 3), (1970, 2), (1980, 1)]

    finder = app_finder(pipeline, store)
    assert finder.filter_values()["decade"] == [1960, 1970, 1980]
    face = {"box": [10, 10, 90, 90], "vector": points[0].vector.tolist(), "probability": 0.99}
    running = launch(finder, mcp=True)
    try:
        config = running.demo.config
        control = next(c for c in config["components"] if c["props"].get("elem_id") == "decade")
        assert control["props"]["label"] == "Born in" and control["props"]["visible"] is True
        assert [tuple(c) for c in control["props"]["choices"]] == [("Any decade", ""), ("The 1960s", 1960),
                                                                   ("The 1970s", 1970)]
        ids = {c["props"].get("elem_id"): c["id"] for c in config["components"]}
        searches = [d for d in config["dependencies"] if ids["top-k"] in d["inputs"]]
        assert len(searches) == 4  # the photo, the live stream, private mode's photo and live frame
        names = [item.name for item in filters.FILTERS]  # the app's own, then DECADE
        for search in searches:
            at = search["inputs"].index(ids["top-k"])
            assert search["inputs"][at:at + len(names) + 2] == [ids["top-k"], *(ids[n] for n in names),
                                                                 ids["well-known"]]

        client = Client(running.url, verbose=False)
        api = client.view_api(return_format="dict", print_info=False)["named_endpoints"]
        for name, first in (("/lookalike", "photo"), ("/lookalike_vectors", "faces")):
            assert [p["parameter_name"] for p in api[name]["parameters"]] == [first, "top_k", *names,
                                                                               "well_known_only"]
        before = [""] * (len(names) - 1)  # the app's own filters left empty

        def decade(value):
            return client.predict([face], 5, *before, value, api_name="/lookalike_vectors")

        assert {m["person_id"] for m in decade("seventies")["faces"][0]["matches"]} == {"person-1", "person-3"}
        assert [m["person_id"] for m in decade("1980")["faces"][0]["matches"]] == ["person-5"]
        refused = decade("robots")
        assert refused["reason"] == "bad_filter" and '"sixties" or "seventies"' in refused["error"]

        with httpx.Client(timeout=60) as http:
            status, _, answer = rest_call(http, running.url, [[face], 5, *before, "sixties"], api="lookalike_vectors")
            assert status == 200 and {m["person_id"] for m in answer[0]["faces"][0]["matches"]} == {
                "person-0", "person-2", "person-4"}
            missing = http.post(running.url + "gradio_api/call/lookalike_vectors", json={"data": []}).json()
            assert "decade and well_known_only are optional" in missing["error"]

        async def tools():
            async with streamablehttp_client(running.url + "gradio_api/mcp/") as (read, write, _):
                async with ClientSession(read, write) as session:
                    await session.initialize()
                    return (await session.list_tools()).tools

        for tool in asyncio.run(tools()):
            assert "born in this decade" in tool.inputSchema["properties"]["decade"]["description"], tool.name
            assert '"sixties" or "seventies"' in tool.inputSchema["properties"]["decade"]["description"]
    finally:
        running.demo.close()
        store.close()
