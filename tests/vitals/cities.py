"""A tiny city for the vital-signs tests: two districts, each of two sub-districts, each of two committees (a 4 x 2
grid over 121.40–121.50 E, 31.20–31.30 N), and indicator files written as a user would."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import shapely

from twin.store import Store

WEST, EAST = 121.40, 121.50
SOUTH, NORTH = 31.20, 31.30


def _frame(rows: list[dict[str, object]], geoms: list[shapely.Geometry]) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(rows, geometry=geoms, crs="EPSG:4326")


def build_areas(store: Store) -> None:
    """District halves west and east; in each, sub-districts south and north; in each, committees west and east."""
    mid_x, mid_y = (WEST + EAST) / 2, (SOUTH + NORTH) / 2
    districts = [shapely.box(WEST, SOUTH, mid_x, NORTH), shapely.box(mid_x, SOUTH, EAST, NORTH)]
    store.upsert("district", _frame([{"name": "西区"}, {"name": "东区"}], districts), author="t", source="t")
    dkeys = store.features("district").sort_values("name").key.tolist()  # 东区, 西区
    by_name = dict(zip(sorted(["东区", "西区"]), dkeys, strict=True))
    subs, sub_rows = [], []
    for dname, (x0, x1) in (("西区", (WEST, mid_x)), ("东区", (mid_x, EAST))):
        for part, (y0, y1) in (("南", (SOUTH, mid_y)), ("北", (mid_y, NORTH))):
            subs.append(shapely.box(x0, y0, x1, y1))
            sub_rows.append({"name": f"{dname}{part}街道", "district": by_name[dname]})
    store.upsert("subdistrict", _frame(sub_rows, subs), author="t", source="t")
    frame = store.features("subdistrict")
    coms, com_rows = [], []
    for key, geom, name in zip(frame.key, frame.geometry, frame["name"], strict=True):
        x0, y0, x1, y1 = geom.bounds
        xm = (x0 + x1) / 2
        for part, (a, b) in (("西", (x0, xm)), ("东", (xm, x1))):
            coms.append(shapely.box(a, y0, b, y1))
            com_rows.append({"name": f"{name}{part}居委", "subdistrict": key})
    store.upsert("committee", _frame(com_rows, coms), author="t", source="t")


INDICATORS = {
    "old_road": """\
id: old_road
title_zh: 旧路消火栓
title_en: Hydrants on the old road
category: 消防安全
layer: hydrant
filter: "road = '旧路'"
measure: count
unit: 个
thresholds: {attention: 2, warning: 4}
""",
    "big_outlets": """\
id: big_outlets
title_zh: 大口径占比
title_en: Share of large outlets
category: 消防安全
layer: hydrant
filter: "outlet_diameter >= 100"
measure: share
of: "road <> '新路'"
unit: "%"
thresholds: {attention: 50, warning: 30, higher_is_worse: false}
""",
    "mean_outlet": """\
id: mean_outlet
title_zh: 平均口径
title_en: Mean outlet diameter
category: 消防安全
layer: hydrant
measure: mean
field: outlet_diameter
unit: mm
levels: [subdistrict, committee]
thresholds: {attention: 90, warning: 70, higher_is_worse: false}
""",
    "hydrant_density": """\
id: hydrant_density
title_zh: 消火栓密度
title_en: Hydrant density
category: 消防安全
layer: hydrant
measure: density
unit: 个/km²
thresholds: {attention: 5, warning: 1, higher_is_worse: false}
""",
    "gas_km": """\
id: gas_km
title_zh: 燃气管线长度
title_en: Gas pipelines
category: 燃气安全
layer: pipeline
filter: "kind = 'gas'"
measure: length
unit: km
thresholds: {attention: 5, warning: 10}
""",
}


def write_indicators(folder: Path, names: tuple[str, ...] = tuple(INDICATORS)) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        (folder / f"{name}.yaml").write_text(INDICATORS[name], encoding="utf-8")
    return folder
