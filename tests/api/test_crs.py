"""OGC API - Features Part 2: crs, bbox-crs, Content-Crs and axis order, plus twin's GCJ-02 and BD-09."""

from __future__ import annotations

import numpy as np
import pytest
from pyproj import Transformer

from tests.api.conftest import Server
from twin.crs import wgs84_to_bd09, wgs84_to_gcj02

CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
EPSG = "http://www.opengis.net/def/crs/EPSG/0/"


def _first(server: Server, **params: object) -> tuple[dict, dict[str, str]]:
    r = server.get("/collections/hydrant/items", params={"limit": 1, **params})
    assert r.status_code == 200, r.text
    return r.json()["features"][0], dict(r.headers)


def _stored(server: Server, key: str) -> tuple[float, float]:
    geom = server.store.get(key).geometry.iloc[0]
    return geom.x, geom.y


def test_default_is_crs84_lon_lat(server: Server) -> None:
    feat, headers = _first(server)
    assert headers["content-crs"] == f"<{CRS84}>"
    assert feat["geometry"]["coordinates"] == pytest.approx(_stored(server, feat["id"]))


@pytest.mark.parametrize("crs", [EPSG + "4326", "EPSG:4326", EPSG + "4490"])
def test_geographic_epsg_is_lat_lon(server: Server, crs: str) -> None:
    feat, headers = _first(server, crs=crs)
    lon, lat = _stored(server, feat["id"])
    assert feat["geometry"]["coordinates"] == pytest.approx([lat, lon], abs=1e-6)
    assert headers["content-crs"].startswith(f"<{EPSG}")


@pytest.mark.parametrize("code", [4549, 4550, 4528, 4529])
def test_gauss_kruger_zones_are_northing_easting(server: Server, code: int) -> None:
    feat, headers = _first(server, crs=f"{EPSG}{code}")
    lon, lat = _stored(server, feat["id"])
    east, north = Transformer.from_crs(4326, code, always_xy=True).transform(lon, lat)
    assert feat["geometry"]["coordinates"] == pytest.approx([north, east], abs=1e-3)
    assert headers["content-crs"] == f"<{EPSG}{code}>"


@pytest.mark.parametrize(("crs", "fn"), [("urn:twin:crs:gcj02", wgs84_to_gcj02), ("gcj02", wgs84_to_gcj02),
                                         ("urn:twin:crs:bd09", wgs84_to_bd09)])
def test_chinese_offsets(server: Server, crs: str, fn) -> None:  # type: ignore[no-untyped-def]
    feat, _ = _first(server, crs=crs)
    lon, lat = _stored(server, feat["id"])
    x, y = fn(np.array([lon]), np.array([lat]))
    assert feat["geometry"]["coordinates"] == pytest.approx([x[0], y[0]], abs=1e-9)


def test_bbox_crs_in_each_axis_order(server: Server) -> None:
    lonlat = (121.42, 31.21, 121.46, 31.26)
    base = server.get("/collections/hydrant/items", params={"limit": 1000, "bbox": ",".join(map(str, lonlat))}).json()
    expected = {f["id"] for f in base["features"]}
    latlon = f"{lonlat[1]},{lonlat[0]},{lonlat[3]},{lonlat[2]}"
    got = server.get("/collections/hydrant/items", params={"limit": 1000, "bbox": latlon,
                                                           "bbox-crs": EPSG + "4326"}).json()
    assert {f["id"] for f in got["features"]} == expected
    # a Gauss-Krüger box (northing, easting order) a little larger than the lon/lat one holds all of it
    to_gk = Transformer.from_crs(4326, 4549, always_xy=True)
    e0, n0 = to_gk.transform(lonlat[0], lonlat[1])
    e1, n1 = to_gk.transform(lonlat[2], lonlat[3])
    gk = f"{n0 - 50},{e0 - 50},{n1 + 50},{e1 + 50}"
    got = server.get("/collections/hydrant/items", params={"limit": 1000, "bbox": gk, "bbox-crs": "EPSG:4549"}).json()
    assert expected <= {f["id"] for f in got["features"]}


def test_gcj02_near_finds_what_wgs84_near_finds(server: Server) -> None:
    lon, lat = 121.45, 31.25
    glon, glat = wgs84_to_gcj02(np.array([lon]), np.array([lat]))
    plain = server.get("/collections/hydrant/items", params={"near": f"{lon},{lat}", "radius": 800}).json()
    shifted = server.get("/collections/hydrant/items", params={"near": f"{glon[0]},{glat[0]}", "radius": 800,
                                                               "point-crs": "gcj02"}).json()
    assert [f["id"] for f in plain["features"]] == [f["id"] for f in shifted["features"]]


@pytest.mark.parametrize("param", ["crs", "bbox-crs", "filter-crs", "point-crs"])
@pytest.mark.parametrize("value", ["EPSG:3857", "EPSG:99999", "nonsense", "+proj=merc", "EPSG:4326;DROP", "x" * 500])
def test_unknown_or_unoffered_crs_is_400(server: Server, param: str, value: str) -> None:
    params = {param: value, "bbox": "121.4,31.2,121.5,31.3"}
    if param == "filter-crs":
        params["filter"] = "S_INTERSECTS(geometry, POINT(121.45 31.25))"
    if param == "point-crs":
        params.update(near="121.45,31.25", radius="100")
    r = server.get("/collections/hydrant/items", params=params)
    assert r.status_code == 400, r.text
    assert param in r.json()["description"]
