"""A small twin for access tests: nested administrative areas of odd shapes, and personal data to leak.

Districts tile most of :data:`BOX` (one has a hole, one is in two parts); sub-districts and committees are
random star-shaped (non-convex) polygons clipped to their parent, a few of them tiny or empty of
components. Every other layer has components inside and outside those areas, some exactly on an
area's vertex or a hair (1e-7 degrees) beside its edge.

Personal values are realistic (王建国, 13912345678, 南京东路12号3号楼501室) and unique, and none is part of
another value or of any other text in the store, so a test may search any response for the full stored
value. Coordinates sit on a 1e-7 degree grid, so no stored value can show up inside a printed coordinate.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import geopandas as gpd
import numpy as np
import shapely

from twin.catalogue import Catalogue, load_catalogue
from twin.settings import DEFAULT_LAYERS_DIR
from twin.store import Store, open_store

BOX = (121.40, 31.20, 121.50, 31.30)
GRID = 1e-7
COUNTS = {"hydrant": 360, "street_light": 240, "pipeline": 60, "residential_compound": 60, "construction_site": 24,
          "heritage_building": 30}
_SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾"
_GIVEN = "建国明华伟芳娜秀英敏静丽强磊军洋勇艳杰娟涛超霞平刚桂兰"
_ROADS = ("南京东路", "西藏中路", "淮海中路", "四川北路", "延安西路", "人民大道")

#: The catalogue changes the access tests run with: one field dropped, one masked to building level.
CATALOGUE_EDITS = {
    "construction_site.yaml": ("{name: manager_phone, title_zh: 负责人电话, type: string, sensitive: phone}",
                               "{name: manager_phone, title_zh: 负责人电话, type: string, sensitive: drop}"),
    "residential_compound.yaml": ("{name: address, title_zh: 地址, type: string}",
                                  "{name: address, title_zh: 地址, type: string, sensitive: address}"),
}


def access_catalogue(folder: Path) -> Path:
    """The repository's catalogue copied to ``folder`` with :data:`CATALOGUE_EDITS` applied."""
    shutil.copytree(DEFAULT_LAYERS_DIR, folder, dirs_exist_ok=True)
    for name, (old, new) in CATALOGUE_EDITS.items():
        text = (folder / name).read_text(encoding="utf-8")
        assert old in text, f"{name} no longer has {old}"
        (folder / name).write_text(text.replace(old, new), encoding="utf-8")
    return folder


def _grid(geom: shapely.Geometry) -> shapely.Geometry:
    return shapely.set_precision(geom, GRID)


def star(rng: np.random.Generator, cx: float, cy: float, r: float, n: int = 9) -> shapely.Polygon:
    """A random star-shaped (often non-convex) polygon around (cx, cy)."""
    angles = (np.arange(n) + 0.8 * rng.random(n)) * 2 * np.pi / n  # gaps below pi keep the ring simple
    radii = r * (0.35 + 0.65 * rng.random(n))
    return shapely.Polygon(np.column_stack([cx + radii * np.cos(angles), cy + radii * np.sin(angles)]))


class People:
    """Unique personal values: 3-character names, 11-digit phones and full addresses."""

    def __init__(self, rng: np.random.Generator) -> None:
        self.rng = rng
        self.used: set[str] = set()

    def _unique(self, make) -> str:  # type: ignore[no-untyped-def]
        while True:
            value = make()
            if value not in self.used:
                self.used.add(value)
                return value

    def name(self) -> str:
        return self._unique(lambda: "".join([self.rng.choice(list(_SURNAMES)), *self.rng.choice(list(_GIVEN), 2)]))

    def phone(self) -> str:
        return self._unique(lambda: "1" + str(self.rng.choice([39, 58, 86, 37])) + "".join(
            map(str, self.rng.integers(0, 10, 8))))

    def address(self) -> str:
        def make() -> str:
            road, number, building, floor, room = (self.rng.choice(_ROADS), *self.rng.integers([10, 1, 1, 1],
                                                                                              [99, 9, 9, 9]))
            return f"{road}{number}号{building}号楼{floor}0{room}室"

        return self._unique(make)


def _frame(rows: dict[str, list], geoms: list) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(rows, geometry=[_grid(g) for g in geoms], crs="EPSG:4326")


def _districts() -> gpd.GeoDataFrame:
    x0, y0, x1, y1 = BOX
    west = shapely.box(x0 - 0.01, y0 - 0.01, 121.44, y1 + 0.01)
    middle = shapely.box(121.44, y0 - 0.01, 121.47, y1 + 0.01).difference(shapely.box(121.45, 31.24, 121.46, 31.25))
    east = shapely.MultiPolygon([shapely.box(121.47, y0 - 0.01, x1 + 0.01, 31.245),
                                 shapely.box(121.475, 31.255, x1 + 0.01, y1 + 0.01)])
    return _frame({"name": ["西区", "中区", "东区"], "name_en": ["West", "Middle", "East"],
                   "code": ["310101", "310104", "310105"]}, [west, middle, east])


def _children(rng: np.random.Generator, parents: gpd.GeoDataFrame, per: int, r: float) -> list[tuple[str, object]]:
    """Random star polygons clipped to each parent: (parent key, geometry)."""
    out = []
    for key, parent in zip(parents["key"], parents.geometry, strict=True):
        minx, miny, maxx, maxy = parent.bounds
        made = 0
        while made < per:
            cx, cy = minx + rng.random() * (maxx - minx), miny + rng.random() * (maxy - miny)
            piece = _grid(star(rng, cx, cy, r * (0.2 + rng.random())).intersection(parent))
            if piece.is_empty or piece.geom_type not in ("Polygon", "MultiPolygon") or piece.area < 1e-8:
                continue
            out.append((key, piece))
            made += 1
    return out


def _points(rng: np.random.Generator, n: int, areas: list[shapely.Geometry]) -> list[shapely.Geometry]:
    """Random points in and around :data:`BOX`, a few on area vertices or a hair beside an edge."""
    x0, y0, x1, y1 = BOX
    pts = list(shapely.points(x0 - 0.02 + rng.random(n) * (x1 - x0 + 0.04),
                              y0 - 0.02 + rng.random(n) * (y1 - y0 + 0.04)))
    for i in range(0, n, 12):
        ring = shapely.get_coordinates(areas[rng.integers(len(areas))].boundary)
        x, y = ring[rng.integers(len(ring))]
        pts[i] = shapely.Point(x + GRID * rng.integers(-1, 2), y + GRID * rng.integers(-1, 2))
    return pts


def build_area_twin(target: str | Path, layers: Path, seed: int = 11) -> Store:
    """Create the store at ``target`` (a path or a PostGIS URL) with the catalogue in ``layers`` (see
    :func:`access_catalogue`)."""
    rng = np.random.default_rng(seed)
    people = People(rng)
    catalogue: Catalogue = load_catalogue(layers)
    store = open_store(target, catalogue)

    def put(layer: str, frame: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
        store.upsert(layer, frame, author="test", source="fixture")
        return store.features(layer)

    districts = put("district", _districts())
    subs = _children(rng, districts, 4, 0.02)
    subdistricts = put("subdistrict", _frame({"name": [f"第{i}街道" for i in range(len(subs))],
                                              "district": [k for k, _ in subs]}, [g for _, g in subs]))
    cells = _children(rng, subdistricts, 2, 0.008)
    far = ("", shapely.box(121.55, 31.35, 121.56, 31.36))  # an area with nothing in it
    cells.append((subdistricts["key"].iloc[0], far[1]))
    committees = put("committee", _frame({
        "name": [f"第{i}居委" for i in range(len(cells))], "subdistrict": [k for k, _ in cells],
        "secretary": [people.name() for _ in cells], "office_phone": [people.phone() for _ in cells],
        "status": rng.choice(["in_service", "retired"], len(cells), p=[0.8, 0.2]).tolist()},
        [g for _, g in cells]))
    areas = [*subdistricts.geometry, *committees.geometry]
    statuses = ["in_service", "faulty", "under_repair", "retired"]
    n = COUNTS["hydrant"]
    put("hydrant", _frame({
        "kind": rng.choice(["above_ground", "underground"], n).tolist(),
        "outlet_diameter": rng.choice([65, 100, 150], n).tolist(), "pressure": np.round(rng.random(n) * 0.6, 3),
        "road": [f"{_ROADS[i % 6]}" for i in range(n)], "status": rng.choice(statuses, n).tolist()},
        _points(rng, n, areas)))
    n = COUNTS["street_light"]
    put("street_light", _frame({
        "lamp_type": rng.choice(["led", "sodium", "metal_halide"], n).tolist(),
        "power": rng.choice([60, 100, 150, 250], n).tolist(), "pole_height": np.round(6 + rng.random(n) * 6, 1),
        "status": rng.choice(statuses, n).tolist()}, _points(rng, n, areas)))
    n = COUNTS["pipeline"]
    starts = shapely.get_coordinates(_points(rng, n, areas))
    lines = [shapely.LineString([(x, y), (x + 0.01 * rng.random(), y + 0.01 * (rng.random() - 0.5)),
                                 (x + 0.02 * rng.random(), y + 0.02 * (rng.random() - 0.5))]) for x, y in starts]
    put("pipeline", _frame({"kind": rng.choice(["water_supply", "drainage", "gas", "power"], n).tolist(),
                            "diameter": rng.choice([100, 300, 600], n).tolist(),
                            "depth": np.round(1 + rng.random(n) * 3, 2)}, lines))
    n = COUNTS["residential_compound"]
    centres = shapely.get_coordinates(_points(rng, n, areas))
    put("residential_compound", _frame({
        "name": [f"阳光小区{i}期" for i in range(n)], "address": [people.address() for _ in range(n)],
        "households": rng.integers(100, 2000, n).tolist(), "built_year": rng.integers(1980, 2020, n).tolist(),
        "property_manager": [people.name() for _ in range(n)], "contact_phone": [people.phone() for _ in range(n)]},
        [star(rng, x, y, 0.003, 7) for x, y in centres]))
    n = COUNTS["construction_site"]
    centres = shapely.get_coordinates(_points(rng, n, areas))
    put("construction_site", _frame({
        "permit_no": [f"SG-{i:04d}" for i in range(n)], "project_name": [f"工程{i}" for i in range(n)],
        "site_manager": [people.name() for _ in range(n)], "manager_phone": [people.phone() for _ in range(n)],
        "status": rng.choice(["planned", "active", "suspended", "completed"], n).tolist()},
        [shapely.box(x, y, x + 0.004, y + 0.003) for x, y in centres]))
    n = COUNTS["heritage_building"]
    pts = _points(rng, n, areas)
    put("heritage_building", _frame({"name": [f"老建筑{i}" for i in range(n)],
                                     "protection_batch": [1 + i % 5 for i in range(n)]},
                                    [p if i % 2 else p.buffer(0.0008, 3) for i, p in enumerate(pts)]))
    return store
