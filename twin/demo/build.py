"""Building the demo twin, layer by layer, through the import path (see :mod:`twin.demo.importing`).

Parents go first so children can name them by location key: districts, then sub-districts (whose
``district`` field is the district's key, read back from the store), then committees. Every changeset
note records the scale and seed, which is how a later ``twin demo`` recognises a demo store.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pyogrio

from twin.catalogue import Catalogue
from twin.demo import admin, heritage, importing, parcels, pipelines, sources
from twin.demo.city import City, load_city
from twin.demo.feed import PointFeed, network_for
from twin.demo.networks import POINT_LAYERS, Network
from twin.demo.scale import Scale
from twin.demo.tiles import Tile, city_tiles
from twin.errors import StoreError
from twin.io import ImportReport
from twin.store import Store, open_store, remove

Progress = Callable[[str], None]


@dataclass
class LayerResult:
    """What one import added to the twin."""

    layer: str
    source: str
    inserted: int
    updated: int
    unchanged: int
    seconds: float


@dataclass
class DemoBuild:
    """One build of the demo twin into an open store; files are written under ``workdir``."""

    store: Store
    scale: Scale
    seed: int
    workdir: Path
    progress: Progress = print
    results: list[LayerResult] = field(default_factory=list)
    _clock: float = field(default_factory=time.perf_counter)

    @property
    def note(self) -> str:
        return f"twin demo scale={self.scale.name} seed={self.seed}"

    def run(self) -> list[LayerResult]:
        self._clock = time.perf_counter()
        with PointFeed(self.scale, self.seed) as feed:  # starts on the other core while the layers below build
            city = load_city()
            net = network_for(city, self.scale, self.seed)
            tiles = city_tiles(city, self.scale.focus)
            self.progress(f"city model and {len(tiles)} tiles ready in {self._lap():.1f} s")
            self.admin(city)
            self.heritage(city)
            pipes = pipelines.pipelines(city, self.seed, self.scale.pipeline_km, self.scale.focus)
            self.file_layer("pipeline", pipes, "synthetic, along OSM roads")
            self.parcels(net, tiles)
            self.points(feed, tiles)
        return self.results

    def _lap(self) -> float:
        """Seconds since the last lap: a layer's time covers generating it as well as importing it."""
        now = time.perf_counter()
        lap, self._clock = now - self._clock, now
        return lap

    def _record(self, layer: str, source: str, report: ImportReport) -> None:
        result = LayerResult(layer, source, report.inserted, report.updated, report.unchanged, round(self._lap(), 1))
        self.results.append(result)
        self.progress(f"{layer:<22} +{result.inserted:,} ~{result.updated:,} ={result.unchanged:,}  "
                      f"({source}, {result.seconds:.1f} s)")

    def file_layer(self, layer: str, frame: gpd.GeoDataFrame, what: str, *, crs: str | None = None,
                   name: str | None = None) -> None:
        """Write ``frame`` to a file and import it."""
        path = importing.write_file(frame, self.workdir / f"{name or layer}.fgb")
        report = importing.import_path(self.store, path, layer, note=f"{self.note}; {what}", crs=crs)
        self._record(layer, path.name, report)

    def keys(self, layer: str) -> dict[str, str]:
        """``name`` -> location key of a layer's components, read back from the store."""
        frame = self.store.features(layer)
        return dict(zip(frame["name"], frame["key"], strict=True))

    def admin(self, city: City) -> None:
        raw = pyogrio.read_dataframe(sources.DISTRICTS)
        facts = admin.districts(city).set_index("name")
        raw["name_en"] = raw["name"].map(facts["name_en"])
        raw["code"] = raw["name"].map(facts["code"])
        self.file_layer("district", raw, "real outlines (Aliyun DataV), GCJ-02 converted on import", crs="gcj02")
        sub, sub_xy = admin.subdistricts(city, self.scale.subdistricts, self.seed)
        sub["district"] = sub.pop("parent").map(self.keys("district"))
        self.file_layer("subdistrict", sub, "synthetic Voronoi partition of the districts")
        focus = self.scale.focus if self.scale.admin_in_focus else None
        com = admin.committees(city, sub, sub_xy, self.scale.committees, self.seed, focus)
        com["subdistrict"] = com.pop("parent").map(self.keys("subdistrict"))
        self.file_layer("committee", com, "synthetic Voronoi partition of the sub-districts")

    def heritage(self, city: City) -> None:
        real = heritage.real_heritage()
        self.file_layer("heritage_building", real, "real: OpenStreetMap (ODbL)", name="heritage_osm")
        extra = self.scale.heritage - len(real)
        if self.scale.synthetic_heritage and extra > 0:
            fake = heritage.synthetic_heritage(city, real, extra, self.seed, self.scale.focus)
            self.file_layer("heritage_building", fake, "SYNTHETIC buildings near real heritage, names end in（模拟）",
                            name="heritage_synthetic")

    def parcels(self, net: Network, tiles: list[Tile]) -> None:
        shares = {kind: parcels.tile_shares(net, tiles, kind, total) for kind, total in
                  ((parcels.COMPOUND, self.scale.compounds), (parcels.SITE, self.scale.sites))}
        found: dict[str, list[gpd.GeoDataFrame]] = {"compound": [], "site": []}
        for tile in tiles:
            wanted = {kind: share.get(tile.cell, 0) for kind, share in shares.items()}
            placed = parcels.tile_parcels(net, tile, wanted)
            found["compound"].append(parcels.compounds(net, tile, *placed[parcels.COMPOUND]))
            found["site"].append(parcels.sites(net, tile, *placed[parcels.SITE]))
        for layer, key in (("residential_compound", "compound"), ("construction_site", "site")):
            frames = [f for f in found[key] if len(f)]
            if frames:
                self.file_layer(layer, _concat(frames), "synthetic parcels between streets")

    def points(self, feed: PointFeed, tiles: list[Tile]) -> None:
        for layer, (_, columns) in POINT_LAYERS.items():
            report = importing.import_frames(
                self.store, layer, feed.frames(layer, tiles), source=f"twin demo {layer} generator",
                columns=list(columns), note=f"{self.note}; synthetic, along roads and streets",
                expected=self.scale.points)
            self._record(layer, "generated chunks", report)


def _concat(frames: list[gpd.GeoDataFrame]) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(pd.concat(frames, ignore_index=True), geometry="geometry", crs="EPSG:4326")


def cache_dir() -> Path:
    """Where the demo keeps the files it imports (``$XDG_CACHE_HOME/twin/demo``, else ``~/.cache/twin/demo``)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "twin" / "demo"


def provenance(store: Store) -> str | None:
    """The ``twin demo scale=... seed=...`` note of the demo that built ``store``, if one did."""
    for cs in store.changesets(limit=1000):
        if cs.author == importing.AUTHOR and cs.note.startswith("twin demo "):
            return cs.note.split(";")[0]
    return None


def open_for_demo(path: str | Path, catalogue: Catalogue, scale: Scale, seed: int, force: bool) -> Store:
    """Open the store the demo will fill, applying the re-run policy.

    A missing or empty store is created. A store built by ``twin demo`` with the same scale and seed is
    re-imported in place, which is idempotent (every component comes back ``unchanged``, edits made since
    are reverted to the demo's values and kept in history) and completes an interrupted build. Any other
    store is refused, unless ``force``, which deletes it and builds from scratch.
    """
    if force:
        remove(path)
    store = open_store(path, catalogue, create=True)
    wanted = f"twin demo scale={scale.name} seed={seed}"
    found = provenance(store)
    if found != wanted and store.changesets(limit=1):
        store.close()
        what = f"a demo built with {found.removeprefix('twin demo ')}" if found else "data not built by twin demo"
        raise StoreError(f"{path}: the store holds {what}; pass --force to delete it and build the demo "
                         f"(scale={scale.name} seed={seed}) from scratch, or choose another --store")
    return store


def build_demo(path: str | Path, catalogue: Catalogue, scale: Scale, seed: int = 42, *, force: bool = False,
               workdir: Path | None = None, progress: Progress = print) -> list[LayerResult]:
    """Build (or idempotently re-import) the demo twin at ``path``; see :func:`open_for_demo`."""
    store = open_for_demo(path, catalogue, scale, seed, force)
    try:
        folder = workdir or cache_dir() / f"{scale.name}-seed{seed}"
        return DemoBuild(store, scale, seed, folder, progress).run()
    finally:
        store.close()
