"""Real clients against a real server: GDAL/OGR's OAPIF driver (through pyogrio) and OWSLib.

Both send a planner's token the way their users would: GDAL through its HTTP configuration options
(``GDAL_HTTP_AUTH=BEARER`` and ``GDAL_HTTP_BEARER``, GDAL >= 3.9), OWSLib through its ``headers``.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pyogrio
import pytest
from owslib.ogcapi.features import Features

from tests.api.conftest import Server
from tests.query.twin_fixture import COUNTS


@pytest.fixture
def gdal_token(server: Server) -> Iterator[str]:
    """The planner's token in GDAL's HTTP options for the test's duration (they are process-wide)."""
    pyogrio.set_gdal_config_options({"GDAL_HTTP_AUTH": "BEARER", "GDAL_HTTP_BEARER": server.tokens["planner"]})
    yield server.tokens["planner"]
    pyogrio.set_gdal_config_options({"GDAL_HTTP_AUTH": None, "GDAL_HTTP_BEARER": None})


def test_gdal_without_a_token_finds_no_layer(server: Server) -> None:
    with pytest.raises(pyogrio.errors.DataSourceError):
        pyogrio.list_layers(f"OAPIF:{server.url}/")


def test_gdal_lists_every_layer(server: Server, gdal_token: str) -> None:
    layers = dict(pyogrio.list_layers(f"OAPIF:{server.url}/"))
    assert set(layers) == set(server.store.catalogue)
    assert layers["hydrant"] == "Point"
    assert layers["pipeline"] == "MultiLineString"


@pytest.mark.parametrize("layer", ["hydrant", "pipeline", "residential_compound", "heritage_building"])
def test_gdal_reads_whole_layers(server: Server, gdal_token: str, layer: str) -> None:
    frame = pyogrio.read_dataframe(f"OAPIF:{server.url}/", layer=layer)
    assert len(frame) == COUNTS[layer]
    stored = server.store.features(layer).set_index("key")
    assert set(frame["id"]) == set(stored.index)
    for _, row in frame.head(5).iterrows():
        assert row.geometry.equals_exact(stored.loc[row["id"]].geometry, 1e-9)
    info = pyogrio.read_info(f"OAPIF:{server.url}/", layer=layer)
    assert info["features"] == COUNTS[layer]
    assert info["layer_metadata"]["TITLE"] == f"{server.store.catalogue[layer].title_zh} " \
                                              f"{server.store.catalogue[layer].title_en}"


def test_gdal_reads_with_a_bbox(server: Server, gdal_token: str) -> None:
    box = (121.41, 31.22, 121.455, 31.27)
    frame = pyogrio.read_dataframe(f"OAPIF:{server.url}/", layer="hydrant", bbox=box)
    assert set(frame["id"]) == set(server.store.features("hydrant", bbox=box)["key"])
    lines = pyogrio.read_dataframe(f"OAPIF:{server.url}/", layer="pipeline", bbox=box)
    stored = server.store.features("pipeline", bbox=box)
    assert set(lines["id"]) <= set(stored["key"]) and len(lines) > 0


def test_gdal_attribute_filter_gives_the_same_rows(server: Server, gdal_token: str) -> None:
    frame = pyogrio.read_dataframe(f"OAPIF:{server.url}/", layer="hydrant", where="kind = 'underground'")
    stored = server.store.features("hydrant")
    assert set(frame["id"]) == set(stored[stored["kind"] == "underground"]["key"])


def test_owslib_collections_items_and_queryables(server: Server) -> None:
    api = Features(server.url, headers=server.headers("planner"))
    assert "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core" in api.conformance()["conformsTo"]
    ids = [c["id"] for c in api.collections()["collections"]]
    assert sorted(ids) == sorted(server.store.catalogue)
    assert api.collection("street_light")["title"] == "路灯 Street light"
    box = [121.41, 31.22, 121.455, 31.27]
    page = api.collection_items("hydrant", bbox=box, limit=7)
    expected = server.store.features("hydrant", bbox=tuple(box))
    assert page["numberMatched"] == len(expected)
    assert [f["id"] for f in page["features"]] == expected["key"].tolist()[:7]
    queryables = api.collection_queryables("hydrant")["properties"]
    assert {"kind", "pressure", "geometry"} <= set(queryables)
    one = api.collection_item("hydrant", page["features"][0]["id"])
    assert np.allclose(one["geometry"]["coordinates"], page["features"][0]["geometry"]["coordinates"])
    filtered = api.collection_items("hydrant", filter="kind = 'underground'", limit=1000)
    assert filtered["numberMatched"] == int((server.store.features("hydrant")["kind"] == "underground").sum())
