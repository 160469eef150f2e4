"""Folium maps load nothing from outside: every asset folium or branca asks for is twin's own copy."""

from __future__ import annotations

import re
from pathlib import Path

import folium
import pytest
from branca.colormap import LinearColormap
from folium.plugins import MeasureControl

from tests.maps.htmlrefs import loaded_refs
from twin.errors import OfflineAssetError
from twin.maps.assets import FOLIUM_ASSETS, STATIC_DIR, LocalFigure, inline_css


def _figure(assets: str) -> folium.Map:
    fmap = folium.Map(location=[31.23, 121.47], zoom_start=12, tiles=None)
    LocalFigure(assets=assets).add_child(fmap)
    folium.Marker([31.23, 121.47], icon=folium.Icon(icon="info-sign")).add_to(fmap)  # awesome-markers, glyphicons
    LinearColormap(["#ffffcc", "#800026"], vmin=0, vmax=1, caption="密度").add_to(fmap)  # branca: d3
    return fmap


def test_every_folium_default_asset_is_vendored() -> None:
    names = {name for name, _ in folium.Map.default_js + folium.Map.default_css}
    assert names <= set(FOLIUM_ASSETS), f"folium asks for assets twin has no copy of: {names - set(FOLIUM_ASSETS)}"
    for relative in FOLIUM_ASSETS.values():
        assert (STATIC_DIR / relative).is_file(), relative


def test_vendored_packages_keep_their_licences() -> None:
    vendor = STATIC_DIR / "vendor"
    for folder in (p for p in vendor.iterdir() if p.is_dir()):
        names = {p.name.upper() for p in folder.iterdir()}
        assert names & {"LICENSE", "LICENSE.TXT", "README.MD"}, f"{folder.name} has no licence file"
    listed = (vendor / "VERSIONS").read_text(encoding="utf-8")
    for pkg in ("leaflet", "leaflet.vectorgrid", "jquery", "bootstrap", "fontawesome-free", "awesome-markers", "d3"):
        assert pkg in listed


def test_served_mode_points_every_link_at_static() -> None:
    html = _figure("/static").get_root().render()
    links = loaded_refs(html)
    assert len(links) == 11 and all(link.startswith("/static/") for link in links), links
    for link in links:
        assert (STATIC_DIR / link.removeprefix("/static/")).is_file()


def test_inline_mode_is_self_contained(tmp_path: Path) -> None:
    out = tmp_path / "map.html"
    _figure("inline").save(str(out))
    html = out.read_text(encoding="utf-8")
    assert loaded_refs(html) == []
    assert "<script src=" not in html and 'rel="stylesheet"' not in html
    assert "L.AwesomeMarkers" in html and "d3" in html  # the libraries themselves are in the page


def test_css_images_and_fonts_are_inlined_once() -> None:
    css = inline_css("vendor/fontawesome/css/all.min.css")
    urls = re.findall(r"url\(([^)]*)\)", css)
    assert urls and all(u.strip("'\"").startswith("data:") for u in urls)
    assert "font/woff2" in css and "font/ttf" not in css  # one format per font face
    leaflet = inline_css("vendor/leaflet/leaflet.css")
    assert "data:image/png;base64," in leaflet


def test_an_asset_twin_does_not_serve_is_refused() -> None:
    fmap = folium.Map(tiles=None)
    LocalFigure(assets="inline").add_child(fmap)
    MeasureControl().add_to(fmap)  # leaflet-measure from a CDN: not vendored
    with pytest.raises(OfflineAssetError, match="leaflet_measure"):
        fmap.get_root().render()


def test_static_paths_cannot_leave_the_static_folder() -> None:
    fmap = folium.Map(tiles=None)
    fmap.default_js = [("evil", "static:../../catalogue.py")]
    LocalFigure(assets="/static").add_child(fmap)
    with pytest.raises(OfflineAssetError, match="no such asset"):
        fmap.get_root().render()
