"""The tile cache never serves a stale tile: edits, moves and deletes, by this process or another, raw and aggregate
tiles, in memory and on disk; and only the tiles a change meets are dropped."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import shapely

from tests.conftest import hydrants
from tests.engines import drop, execute, new_target
from tests.tiles.conftest import BOX, decode
from tiles import TileEngine, TileSettings
from tiles.cache import CacheKey, DiskCache, Entry, MemoryCache
from tiles.grid import TileID, tiles_in
from twin.catalogue import Catalogue
from twin.store import Store, open_store


def _features(engine: TileEngine, layer: str, tile: TileID) -> dict[str, dict]:
    """Features of a raw tile by key."""
    data = decode(engine.tile((layer,), tile).gz)
    return {f["properties"]["key"]: f["properties"] for f in data.get(layer, {}).get("features", [])}


def _tile_of(store: Store, key: str, z: int) -> TileID:
    p = store.get(key).geometry.iloc[0].representative_point()
    return tiles_in((p.x, p.y, p.x, p.y), z)[0]


def _faulty(engine: TileEngine, layer: str, tile: TileID) -> int:
    data = decode(engine.tile((layer,), tile).gz)
    return sum(f["properties"].get("count_faulty", 0) for f in data.get(layer, {}).get("features", []))


def test_an_edit_shows_at_once_in_raw_and_aggregate_tiles(engine: TileEngine, city: Store) -> None:
    key = city.features("hydrant").key.iloc[7]
    raw, low = _tile_of(city, key, 15), _tile_of(city, key, 9)
    assert _features(engine, "hydrant", raw)[key]["status"] == "in_service"
    before = _faulty(engine, "hydrant", low)
    assert engine.tile(("hydrant",), raw).source == "memory"
    city.edit(key, author="test", properties={"status": "faulty"})
    assert _features(engine, "hydrant", raw)[key]["status"] == "faulty"
    assert _faulty(engine, "hydrant", low) == before + 1
    city.delete("hydrant", [key], author="test")
    assert key not in _features(engine, "hydrant", raw)
    assert _faulty(engine, "hydrant", low) == before


def test_a_move_updates_the_old_and_the_new_tile(engine: TileEngine, city: Store) -> None:
    key = city.features("pipeline").key.iloc[3]
    old = _tile_of(city, key, 16)
    assert key in _features(engine, "pipeline", old)
    target = (121.4905, 31.2105)
    new = tiles_in((*target, *target), 16)[0]
    assert key not in _features(engine, "pipeline", new)
    city.edit(key, author="test", geometry=shapely.LineString([target, (target[0] + 0.0003, target[1])]))
    assert key not in _features(engine, "pipeline", old)
    assert key in _features(engine, "pipeline", new)


def test_only_the_tiles_a_change_meets_are_dropped(engine: TileEngine, city: Store) -> None:
    frame = city.features("hydrant")
    west, east = frame.loc[frame.geometry.x.idxmin(), "key"], frame.loc[frame.geometry.x.idxmax(), "key"]
    t_west, t_east = _tile_of(city, west, 15), _tile_of(city, east, 15)
    assert t_west != t_east
    _features(engine, "hydrant", t_west), _features(engine, "hydrant", t_east)
    city.edit(east, author="test", properties={"status": "under_repair"})
    engine.refresh("hydrant")  # what every tile request does first: catch up with the write (the follower may not yet)
    assert engine.memory.get(CacheKey(("hydrant",), t_east)) is None
    assert engine.tile(("hydrant",), t_west).source == "memory"
    assert engine.tile(("hydrant",), t_east).source == "drawn"


def test_writes_by_another_process_are_seen_before_serving(engine: TileEngine, city: Store) -> None:
    key = city.features("residential_compound").key.iloc[5]
    tile = _tile_of(city, key, 14)
    low = _tile_of(city, key, 8)
    assert _features(engine, "residential_compound", tile)[key]["status"] == "in_service"
    counts = decode(engine.tile(("residential_compound",), low).gz)
    retired = sum(f["properties"].get("count_retired", 0) for f in counts["residential_compound"]["features"])
    script = (
        "import sys; from twin.catalogue import load_catalogue; from twin.settings import DEFAULT_LAYERS_DIR; "
        "from twin.store import open_store; "
        "st = open_store(sys.argv[1], load_catalogue(DEFAULT_LAYERS_DIR), create=False); "
        "st.edit(sys.argv[2], author='other', properties={'status': 'retired'}); st.close()"
    )
    subprocess.run([sys.executable, "-c", script, city.location, key], check=True, timeout=120)
    assert _features(engine, "residential_compound", tile)[key]["status"] == "retired"
    counts = decode(engine.tile(("residential_compound",), low).gz)
    assert sum(f["properties"].get("count_retired", 0) for f in counts["residential_compound"]["features"]) == \
        retired + 1


def test_disk_cache_survives_a_restart_but_never_serves_what_changed_meanwhile(city: Store,
                                                                             tmp_path: Path) -> None:
    frame = city.features("hydrant")
    west, east = frame.loc[frame.geometry.x.idxmin(), "key"], frame.loc[frame.geometry.x.idxmax(), "key"]
    t_west, t_east = _tile_of(city, west, 15), _tile_of(city, east, 15)
    settings = TileSettings(cache_dir=tmp_path / "disk", warm=False)
    first = TileEngine(city, settings)
    _features(first, "hydrant", t_west), _features(first, "hydrant", t_east)
    first.close()
    city.edit(east, author="test", properties={"status": "faulty"})  # no engine is following the store now
    second = TileEngine(city, settings)
    try:
        assert second.tile(("hydrant",), t_west).source == "disk"
        assert second.tile(("hydrant",), t_east).source == "drawn"
        assert _features(second, "hydrant", t_east)[east]["status"] == "faulty"
    finally:
        second.close()


def test_memory_cache_is_bounded_and_least_recently_used_goes_first() -> None:
    cache = MemoryCache(max_bytes=3 * (1000 + 256))
    keys = [CacheKey(("hydrant",), TileID(14, i, 0)) for i in range(4)]
    for k in keys[:3]:
        cache.put(k, Entry(b"x" * 1000, "e", {"hydrant": 1}))
    cache.get(keys[0])
    cache.put(keys[3], Entry(b"x" * 1000, "e", {"hydrant": 1}))
    assert cache.get(keys[1]) is None and cache.get(keys[0]) is not None and len(cache) == 3


def test_disk_cache_is_bounded_in_bytes(tmp_path: Path) -> None:
    cache = DiskCache(tmp_path, max_bytes=5000)
    for i in range(10):
        cache.put(CacheKey(("hydrant", "pipeline"), TileID(14, i, 3), "abc"), Entry(b"y" * 1000, f"e{i}",
                                                                                    {"hydrant": 2, "pipeline": 5}))
    files = list(tmp_path.rglob("*.mvt.gz"))
    assert sum(f.stat().st_size for f in files) <= 5000 and len(files) == 5
    reopened = DiskCache(tmp_path, max_bytes=5000)
    entry = reopened.get(CacheKey(("hydrant", "pipeline"), TileID(14, 9, 3), "abc"))
    assert entry is not None and entry.gz == b"y" * 1000 and entry.versions == {"hydrant": 2, "pipeline": 5}


def test_disk_tiles_drawn_at_different_versions_are_all_reused_after_a_restart(city: Store,
                                                                               tmp_path: Path) -> None:
    frame = city.features("hydrant")
    west, east = frame.loc[frame.geometry.x.idxmin(), "key"], frame.loc[frame.geometry.x.idxmax(), "key"]
    t_west, t_east = _tile_of(city, west, 15), _tile_of(city, east, 15)
    settings = TileSettings(cache_dir=tmp_path / "disk", warm=False)
    first = TileEngine(city, settings)
    _features(first, "hydrant", t_west)
    city.edit(east, author="test", properties={"status": "faulty"})
    _features(first, "hydrant", t_east)  # drawn one changeset later than the western tile
    first.close()
    second = TileEngine(city, settings)
    try:
        assert second.tile(("hydrant",), t_west).source == "disk"
        assert second.tile(("hydrant",), t_east).source == "disk"
    finally:
        second.close()


def test_warm_up_builds_every_layers_aggregates_in_the_background(city: Store) -> None:
    engine = TileEngine(city, TileSettings(warm=True))
    wanted = {"hydrant", "pipeline", "residential_compound"}
    try:
        deadline = time.monotonic() + 60
        built: set[str] = set()
        while not wanted <= built and time.monotonic() < deadline:
            time.sleep(0.05)
            built = {r[0] for r in execute(city.location, "SELECT layer FROM twin_tiles_state")}
        assert wanted <= built
    finally:
        engine.close()


def test_a_disk_cache_is_never_reused_for_another_store(city: Store, catalogue: Catalogue,
                                                        tmp_path: Path) -> None:
    settings = TileSettings(cache_dir=tmp_path / "disk", warm=False)
    tile = _tile_of(city, city.features("hydrant").key.iloc[0], 14)
    first = TileEngine(city, settings)
    first.tile(("hydrant",), tile)
    first.close()
    target = new_target(tmp_path, "other")
    other = open_store(target, catalogue)  # changeset 1 too, other components
    other.upsert("hydrant", hydrants(400, seed=99, box=BOX), author="test", source="test")
    second = TileEngine(other, settings)
    try:
        result = second.tile(("hydrant",), tile)
        assert result.source == "drawn"
        assert set(_features(second, "hydrant", tile)) <= set(other.features("hydrant").key)
    finally:
        second.close()
        other.close()
        drop(target)
