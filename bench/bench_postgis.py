"""Benchmark twin on PostGIS (issue 13): the same requests, in the same run, against twin on the GeoPackage store,
twin on its PostGIS copy with one and with two workers, tipg reading that very PostGIS schema, and twin as it was
before the store contract (an older commit in a git worktree, on a copy of the GeoPackage).

    python bench/bench_postgis.py --gpkg ~/.cache/twin/bench/demo-full.gpkg \\
        --postgis 'postgresql://postgres@127.0.0.1:55432/twin?schema=full15' [--before 18e756a | --before none] \\
        [--layers hydrant,street_light] [--requests 200] [--duration 5] [--json FILE]

``--postgis`` must hold a copy of ``--gpkg`` (``twin store copy``; checked: the same layers, counts and last
changeset). Per layer, seeded on random existing components: a 500 m box (limit 1000), a 2 km box (limit 10 000),
a 2 km box with ``status = 'faulty'`` (CQL2 on both twin and tipg), one component by key, and tiles at z12, z14 and
z16 holding those components (twin's OGC tile path and tipg's, same tile). Every server runs as deployed: uvicorn
with httptools and uvloop, access log off; twin without its nearest-k index (no workload uses it) and, unless
``--tile-cache-mb``, with a tile cache of 0 MB, so that every tile is drawn from the store as tipg draws it.
Every twin request carries a planner's bearer token (``tokens.py``); tipg gets the same header (it ignores it).

Each workload is measured on every server before the next workload (the servers' order rotates), so the ratios
compare figures taken minutes apart at most: ``loadgen.measure`` (probe pass, wrk p50/p95 with one client,
requests/s with 8 and 32). Answers are checked: every server must return the same number of features as twin on
the GeoPackage for every item request; for tiles, twin servers must agree tile by tile, and each server's tile must
hold the components the store has in that tile (tipg: the tile itself; twin: the tile grown by its buffer, or, below
a layer's ``min_zoom`` where twin sends aggregate cells, the sum of their counts). Any difference is printed, and
the exit status is 1.

"Before" needs a store of schema version 1: the script makes its own copy of ``--gpkg`` (SQLite's backup, then
``schema_version`` set back to 1; version 2 only moved the tile aggregate tables, laid out alike, into the store's
schema) and gives it its own access database, made by that commit's own ``bench/tokens.py``.

Writes: a ``bench-planner`` user in each store's access tables, and the tile aggregates of each store when it lacks
them (each twin server builds them on its first start, as in production; the warm-up waits for it).
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import sqlite3
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import httpx
import loadgen
import machine
import morecantile
import psutil
from mapbox_vector_tile.Mapbox import vector_tile_pb2
from peers import servers
from peers.compare import report
from peers.urls import PeerUrls, TipgUrls, TwinUrls
from peers.workloads import Seeds, Workload, draw_seeds
from tokens import token_for

from tiles.grid import TileID, buffered_mercator, lonlat_box, mercator_bounds
from twin.catalogue import Catalogue, load_catalogue
from twin.geodesy import degree_box
from twin.model.query import BBox, FeatureQuery
from twin.settings import DEFAULT_LAYERS_DIR, TileSettings
from twin.store import Store, open_store
from twin.store.postgis.connect import parse_url

ROOT = Path(__file__).resolve().parents[1]
BENCH = Path.home() / ".cache" / "twin" / "bench"
WEB_MERCATOR = morecantile.tms.get("WebMercatorQuad")
ZOOMS = (12, 14, 16)
#: Server names, in the order the report lists them; the first is the reference for feature counts.
GPKG, GPKG2, PG, PG2, BEFORE, TIPG = "twin-gpkg", "twin-gpkg-2w", "twin-pg", "twin-pg-2w", "twin-before", "tipg"
ORDER = (GPKG, GPKG2, PG, PG2, BEFORE, TIPG)
#: Degrees (about 2 m): the float32 boxes of SQLite's R-tree and of PostGIS's ``&&`` are this sharp, and no sharper.
EDGE = 2e-5


@dataclass
class Running:
    """A server under test: its URL builder, the headers of its requests, the process and how long it took."""

    name: str
    urls: PeerUrls
    headers: dict[str, str]
    server: servers.Server
    store: str
    workers: int = 1
    ready_s: float = 0.0
    warm_s: float = 0.0
    rss_mb: float = 0.0


@dataclass
class TileWork:
    """A tile workload's tiles (one per request), so answers can be checked against the store."""

    layer: str
    tiles: list[TileID]


@dataclass
class Checks:
    """Every difference found between answers that should agree (empty: the benchmark compares like with like)."""

    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # differences at the float precision of a spatial index
    tiles: dict[str, dict[str, str]] = field(default_factory=dict)  # workload -> server -> verdict


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def uvicorn_flags(workers: int) -> list[str]:
    """``servers.UVICORN`` (httptools, uvloop, no access log) with ``workers`` processes."""
    flags = list(servers.UVICORN)
    flags[flags.index("--workers") + 1] = str(workers)
    return flags


def start_twin(name: str, store: str, workers: int, root: Path, tile_cache_mb: int, timeout_s: float,
               headers: dict[str, str]) -> servers.Server:
    """twin's app from the source tree ``root`` (this one, or an older commit's worktree), with this venv."""
    port = free_port()
    argv = [sys.executable, "-m", "uvicorn", "twin.api.app:create_app", "--factory", "--port", str(port),
            *uvicorn_flags(workers)]
    env = {"TWIN_STORE": store, "TWIN_LAYERS": str(root / "layers"), "PYTHONPATH": str(root),
           "TWIN_TILES_MEMORY_MB": str(tile_cache_mb)}
    return servers.start(name, argv, env, f"http://127.0.0.1:{port}", timeout_s, headers)


def warm(run: Running, catalogue: Catalogue, seeds: list[Seeds]) -> None:
    """Wait until the server answers a z12 tile of every layer (twin: its aggregates are built and current) and
    one item request per measured layer on several connections (every worker)."""
    t0 = time.perf_counter()
    x, y = seeds[0].points[0]
    tile = WEB_MERCATOR.tile(x, y, 12)
    layers = catalogue if run.name != TIPG else [s.layer for s in seeds]
    for layer in layers:
        path = str(run.urls.tile(layer, tile.z, tile.x, tile.y))
        statuses = loadgen.probe(run.urls.base, [path], timeout_s=3600, headers=run.headers).statuses
        if not set(statuses) <= {200, 204}:
            raise RuntimeError(f"{run.name}: {path} answered {statuses}; see {run.server.log}")
    paths = [run.urls.items(s.layer, degree_box(*s.points[i], 250), 1000) for s in seeds for i in range(8)]
    loadgen.wrk(run.urls.base, paths, 8, 1, headers=run.headers)
    run.warm_s = time.perf_counter() - t0


def tree_rss_mb(process: subprocess.Popen[bytes]) -> float:
    """Resident memory of a server and its worker processes."""
    try:
        root = psutil.Process(process.pid)
        return sum(p.memory_info().rss for p in (root, *root.children(recursive=True))) / 2**20
    except psutil.Error:
        return 0.0


# -- workloads ------------------------------------------------------------------------------------------------
def workloads(urls: PeerUrls, seeds: Seeds, zooms: tuple[int, ...]) -> list[Workload]:
    """The workloads of one layer as ``urls`` spells them; the i-th request asks every server the same thing."""
    layer, pts = seeds.layer, seeds.points
    small = [degree_box(x, y, 250) for x, y in pts]  # 500 m (and a 1 % margin) around each seed
    wide = [degree_box(x, y, 1000) for x, y in pts]
    out = [Workload(f"{layer} bbox 500 m", urls.base, [urls.items(layer, b, 1000) for b in small]),
           Workload(f"{layer} bbox 2 km", urls.base, [urls.items(layer, b, 10_000) for b in wide]),
           Workload(f"{layer} 2 km + status", urls.base,
                    [urls.filtered(layer, b, "status", "faulty", 10_000) for b in wide]),
           Workload(f"{layer} by key", urls.base, [urls.item(layer, k) for k in seeds.keys])]
    for z, work in tile_work(seeds, zooms).items():
        out.append(Workload(z, urls.base, [str(urls.tile(layer, t.z, t.x, t.y)) for t in work.tiles]))
    return out


def tile_work(seeds: Seeds, zooms: tuple[int, ...]) -> dict[str, TileWork]:
    """Per tile workload name, the tile holding each seed at that zoom."""
    out = {}
    for z in zooms:
        tiles = [WEB_MERCATOR.tile(x, y, z) for x, y in seeds.points]
        out[f"{seeds.layer} tile z{z}"] = TileWork(seeds.layer, [TileID(t.z, t.x, t.y) for t in tiles])
    return out


# -- checking answers -----------------------------------------------------------------------------------------
def components(mvt: bytes) -> tuple[int, int]:
    """Features in an MVT, and the components they stand for (an aggregate cell counts its ``count``)."""
    tile = vector_tile_pb2.tile()
    tile.ParseFromString(mvt)
    features = represented = 0
    for layer in tile.layers:
        features += len(layer.features)
        key = list(layer.keys).index("count") if "count" in layer.keys else -1
        for f in layer.features:
            tags = dict(zip(f.tags[::2], f.tags[1::2], strict=True))
            if key in tags:
                value = layer.values[tags[key]]
                represented += int(value.int_value or value.uint_value or value.sint_value or value.double_value)
            else:
                represented += 1
    return features, represented


def grow(box: tuple[float, float, float, float], d: float) -> BBox:
    return BBox(box[0] - d, box[1] - d, box[2] + d, box[3] + d)


def store_counts(store: Store, layer: str, tiles: list[TileID], buffer: int) -> dict[TileID, tuple[int, int, int]]:
    """Per tile, the components of ``layer`` meeting it, and those meeting it grown by ``buffer`` tile units less
    and more :data:`EDGE` (the store's own box search)."""
    out = {}
    with store.read(budget_s=600) as snap:
        for t in set(tiles):
            exact, grown = (lonlat_box(box) for box in (mercator_bounds(t), buffered_mercator(t, buffer)))
            out[t] = tuple(snap.count(FeatureQuery(layer=layer, bbox=box), cap=10**9)[0]
                           for box in (grow(exact, 0), grow(grown, -EDGE), grow(grown, EDGE)))
    return out  # type: ignore[return-value]


def check_tiles(name: str, work: TileWork, runs: list[Running], store: Store, checks: Checks) -> None:
    """Each server's tiles against the store's counts, and twin's servers against each other.

    tipg's tile holds the components meeting the tile; twin's, below the layer's ``min_zoom``, aggregate cells
    whose counts sum to the same; from ``min_zoom``, the components meeting the tile grown by twin's buffer. The
    edge of that buffer is only as sharp as the engine's spatial index boxes (float32: SQLite's R-tree, PostGIS's
    ``&&``), so a raw twin tile may hold a point within :data:`EDGE` outside it, and two engines may differ there:
    such differences are noted, not counted as errors.
    """
    spec = store.catalogue[work.layer]
    expected = store_counts(store, work.layer, work.tiles, TileSettings().buffer)
    seen: dict[str, dict[TileID, tuple[int, int]]] = {}
    verdicts = checks.tiles.setdefault(name, {})
    for run in runs:
        got = {}
        with httpx.Client(base_url=run.urls.base, timeout=600, headers=run.headers) as http:
            for t in sorted(set(work.tiles)):
                r = http.get(str(run.urls.tile(work.layer, t.z, t.x, t.y)))
                r.raise_for_status()
                got[t] = components(r.content)
        seen[run.name] = got
        if run.name == TIPG or work.tiles[0].z < spec.min_zoom:  # raw features in the tile, or cells summing them
            bad = [t for t in got if got[t][1] != expected[t][0]]
            rule = "components in the tile" if run.name == TIPG else "cell counts sum to the components in the tile"
        else:
            bad = [t for t in got if not expected[t][1] <= got[t][0] <= expected[t][2]]
            rule = "features are the components in the buffered tile"
        reference = seen[GPKG] if run.name not in (GPKG, TIPG) else got
        differ = [t for t in got if got[t] != reference[t]]
        verdicts[run.name] = f"{rule}: {len(got) - len(bad)}/{len(got)} tiles" + (
            f"; {len(differ)} tiles differ from {GPKG} at the buffer's edge by "
            f"{max(abs(got[t][0] - reference[t][0]) for t in differ)} features at most" if differ else "")
        for t in bad[:3]:
            checks.problems.append(f"{name}, {run.name}, tile {t}: (features, components) {got[t]}; the store has "
                                   f"{expected[t][0]} in the tile, {expected[t][1]}-{expected[t][2]} in the "
                                   f"buffered tile")
        if len(bad) > 3:
            checks.problems.append(f"{name}, {run.name}: {len(bad) - 3} more tiles like that")
        if differ and not bad:
            checks.notes.append(f"{name}, {run.name}: " + ", ".join(f"{t} {got[t][0]} vs {reference[t][0]}"
                                                                    for t in differ[:3]))


def check_items(results: list[loadgen.Result], checks: Checks) -> None:
    """Every item request: the same number of features from every server as from twin on the GeoPackage."""
    reference = {r.workload: r for r in results if r.server == GPKG}
    for r in results:
        ref = reference[r.workload]
        if " tile " in r.workload or r is ref:
            continue
        differ = [i for i, (a, b) in enumerate(zip(ref.probe.counts, r.probe.counts, strict=True)) if a != b]
        if differ:
            i = differ[0]
            checks.problems.append(f"{r.workload}, {r.server}: {len(differ)}/{r.urls} requests differ in features "
                                   f"from {GPKG} (request {i}: {r.probe.counts[i]} vs {ref.probe.counts[i]})")
        if set(r.probe.statuses) != {200}:
            checks.problems.append(f"{r.workload}, {r.server}: statuses {r.probe.statuses}")


# -- ratios and targets ---------------------------------------------------------------------------------------
def ratio(a: float, b: float) -> float | None:
    """``a / b``; ``None`` when ``b`` is 0 (a run too short for a single answer: lengthen ``--duration``)."""
    return a / b if b else None


def ratios(results: list[loadgen.Result], concurrency: tuple[int, ...]) -> list[dict[str, object]]:
    """Per workload, the ratios the targets ask for (see ``TARGETS``); ``None`` where a server was not run."""
    by = {(r.server, r.workload): r for r in results}
    levels = (1, *concurrency)
    out = []
    for workload in dict.fromkeys(r.workload for r in results):
        row: dict[str, object] = {"workload": workload}
        for label, first, second in (("pg_vs_tipg", PG, TIPG), ("pg_vs_gpkg", PG, GPKG),
                                     ("gpkg_vs_before", GPKG, BEFORE)):
            a, b = by.get((first, workload)), by.get((second, workload))
            # how many times as fast ``first`` is as ``second``: p50 of second / p50 of first, and throughputs
            row[label] = None if a is None or b is None else {
                "p50": ratio(b.p50_ms, a.p50_ms), **{f"c{c}": ratio(a.rps[c], b.rps[c]) for c in levels}}
        one, two = by.get((PG, workload)), by.get((PG2, workload))
        row["pg_2w_vs_1w"] = None if one is None or two is None else {f"c{c}": ratio(two.rps[c], one.rps[c])
                                                                     for c in levels}
        out.append(row)
    return out


def targets(rows: list[dict[str, object]], concurrency: tuple[int, ...], noise: float) -> list[str]:
    """The issue's targets, each met or not, with the workloads that miss."""
    def worst(label: str, keys: tuple[str, ...]) -> dict[str, float]:
        """Per workload, the smallest of the ratios that were measured."""
        out = {}
        for r in rows:
            got = [r[label][k] for k in keys] if r[label] is not None else []  # type: ignore[index]
            if any(v is not None for v in got):
                out[str(r["workload"])] = min(v for v in got if v is not None)
        return out

    keys = ("p50", "c1", *(f"c{c}" for c in concurrency))
    lines = []
    for label, what, floor in (
            ("pg_vs_tipg", "twin on PostGIS ahead of tipg (p50 and every throughput)", 1.0),
            ("pg_vs_gpkg", "twin on PostGIS within 1.5x of twin on GeoPackage", 1 / 1.5),
            ("gpkg_vs_before", f"GeoPackage engine no slower than before (within {noise:.0%} noise)", 1 - noise)):
        w = worst(label, keys)
        if not w:
            lines.append(f"{what}: not measured")
            continue
        miss = {k: v for k, v in w.items() if v < floor}
        lines.append(f"{what}: {'met' if not miss else 'NOT met'} (worst ratio {min(w.values()):.2f}, needs "
                     f">= {floor:.2f})" + "".join(f"\n    {k}: {v:.2f}" for k, v in miss.items()))
    box = [r for r in rows if " bbox 500 m" in str(r["workload"]) and r["pg_2w_vs_1w"] is not None]
    for r in box:
        got = {k: v for k, v in r["pg_2w_vs_1w"].items() if k != "c1" and v is not None}  # type: ignore[union-attr]
        verdict = "met" if got and max(got.values()) >= 1.6 else "NOT met"
        lines.append(f"two PostGIS workers >= 1.6x one, {r['workload']}: {verdict} ("
                     + ", ".join(f"{k} {v:.2f}x" for k, v in got.items()) + ")")
    return lines


def ratio_table(rows: list[dict[str, object]], concurrency: tuple[int, ...]) -> str:
    levels = ("p50", "c1", *(f"c{c}" for c in concurrency))

    def cell(value: object, keys: tuple[str, ...]) -> str:
        if value is None:
            return "—"
        return " · ".join("?" if value[k] is None else f"{value[k]:.2f}" for k in keys)  # type: ignore[index]

    head = (f"{'workload':<28} {'twin-pg ÷ tipg':>26} {'twin-pg ÷ twin-gpkg':>26} {'2 workers ÷ 1':>20} "
            f"{'gpkg now ÷ before':>26}")
    lines = ["speed ratios, > 1: the first is faster (p50 of the second ÷ p50 of the first; requests/s of the first ÷ "
             "the second): p50 · rps c1 · " + " · ".join(levels[2:]) + " (workers: rps only)", head, "-" * len(head)]
    for r in rows:
        lines.append(f"{r['workload']!s:<28} {cell(r['pg_vs_tipg'], levels):>26} "
                     f"{cell(r['pg_vs_gpkg'], levels):>26} {cell(r['pg_2w_vs_1w'], levels[1:]):>20} "
                     f"{cell(r['gpkg_vs_before'], levels):>26}")
    return "\n".join(lines)


# -- the stores -----------------------------------------------------------------------------------------------
def same_data(gpkg: Store, pg: Store) -> None:
    """Refuse to compare a GeoPackage with a PostGIS schema that is not its copy."""
    for layer in gpkg.catalogue:
        a, b = (gpkg.count(layer), gpkg.last_changeset(layer)), (pg.count(layer), pg.last_changeset(layer))
        if a != b:
            raise SystemExit(f"{pg.location} is not a copy of {gpkg.location}: layer {layer} has (components, last "
                             f"changeset) {b} there and {a} here; copy it with `twin store copy`")


def worktree(commit: str) -> Path:
    """A git worktree of ``commit`` in /tmp (made once; the venv serves it with PYTHONPATH pointing at it)."""
    sha = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", commit], capture_output=True, text=True,
                         check=True).stdout.strip()
    path = Path(f"/tmp/twin-before-{sha}")
    if not (path / "twin").is_dir():
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(path), sha], check=True,
                       capture_output=True)
    return path


def version_1_copy(gpkg: Path) -> Path:
    """A copy of ``gpkg`` that twin before the contract opens: schema version 1 (made once per changeset)."""
    copy = BENCH / f"{gpkg.stem}.schema1.gpkg"
    src = sqlite3.connect(f"{gpkg.resolve().as_uri()}?mode=ro", uri=True)
    try:
        latest = src.execute("SELECT coalesce(max(id), 0) FROM twin_changesets").fetchone()[0]
        if copy.exists():
            dst = sqlite3.connect(copy)
            try:
                if dst.execute("SELECT coalesce(max(id), 0) FROM twin_changesets").fetchone()[0] == latest:
                    return copy
            finally:
                dst.close()
        for suffix in ("", "-wal", "-shm"):
            Path(f"{copy}{suffix}").unlink(missing_ok=True)
        copy.with_name(copy.stem + ".access.db").unlink(missing_ok=True)
        t0 = time.perf_counter()
        dst = sqlite3.connect(copy)
        try:
            src.backup(dst)
            dst.execute("UPDATE twin_meta SET value = '1' WHERE key = 'schema_version'")
            dst.commit()
        finally:
            dst.close()
        print(f"made {copy} (schema version 1) in {time.perf_counter() - t0:,.0f} s", flush=True)
        return copy
    finally:
        src.close()


def before_token(root: Path, store: Path) -> str:
    """A planner's token for the old twin's store, made by that commit's own ``bench/tokens.py``."""
    code = ("import sys; sys.path.insert(0, sys.argv[1]); from tokens import token_for; "
            "print(token_for(sys.argv[2], 'bench-planner', 'planner'))")
    out = subprocess.run([sys.executable, "-c", code, str(root / "bench"), str(store)], capture_output=True,
                         text=True, check=True, cwd=root, env={**os.environ, "PYTHONPATH": str(root)})
    return out.stdout.strip().splitlines()[-1]


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def twin_properties(run: Running, seeds: list[Seeds]) -> dict[str, list[str]]:
    """The properties twin returns for each measured layer (a planner's view), which tipg is then told to serve."""
    out = {}
    for s in seeds:
        with httpx.Client(base_url=run.urls.base, timeout=60, headers=run.headers) as http:
            r = http.get(run.urls.item(s.layer, s.keys[0]))
        r.raise_for_status()
        out[s.layer] = list(r.json()["properties"])
    return out


# -- main -----------------------------------------------------------------------------------------------------
def start_all(args: argparse.Namespace, catalogue: Catalogue, seeds: list[Seeds], gpkg: Path, pg_url: str,
              planner: dict[str, dict[str, str]]) -> list[Running]:
    """Start the servers one after another (each warm before the next starts: the first on each store builds
    its tile aggregates if missing)."""
    runs: list[Running] = []
    plan: list[tuple[str, str, int, Path]] = [(GPKG, str(gpkg), 1, ROOT), (GPKG2, str(gpkg), 2, ROOT),
                                              (PG, pg_url, 1, ROOT), (PG2, pg_url, 2, ROOT)]
    if args.before != "none":
        root = worktree(args.before)
        old = version_1_copy(gpkg)
        planner[str(old)] = bearer(before_token(root, old))
        plan.insert(1, (BEFORE, str(old), 1, root))
    for name, store, workers, root in plan:
        t0 = time.perf_counter()
        server = start_twin(name, store, workers, root, args.tile_cache_mb, args.start_timeout, planner[store])
        runs.append(Running(name, TwinUrls(server.base, name=name), planner[store], server, store, workers,
                            time.perf_counter() - t0))
        warm(runs[-1], catalogue, seeds)
        print(f"{name}: up in {runs[-1].ready_s:,.1f} s, warm in {runs[-1].warm_s:,.1f} s ({server.base}, "
              f"{workers} worker{'s' if workers > 1 else ''}, {store})", flush=True)
    target = parse_url(pg_url)
    env = servers.tipg_settings(target.conninfo, target.schema, twin_properties(runs[0], seeds))
    t0 = time.perf_counter()
    server = servers.start_tipg(gpkg, free_port(), env=env, timeout_s=args.start_timeout)
    runs.append(Running(TIPG, TipgUrls(server.base, schema=target.schema), planner[str(gpkg)], server, pg_url, 1,
                        time.perf_counter() - t0))
    warm(runs[-1], catalogue, seeds)
    print(f"{TIPG}: up in {runs[-1].ready_s:,.1f} s, warm in {runs[-1].warm_s:,.1f} s ({server.base}, "
          f"schema {target.schema})", flush=True)
    return runs


def measure(args: argparse.Namespace, runs: list[Running], seeds: list[Seeds], store: Store, checks: Checks
            ) -> list[loadgen.Result]:
    """Every workload on every server (servers in a rotating order), then the tiles checked."""
    concurrency = tuple(args.concurrency)
    results: list[loadgen.Result] = []
    step = 0
    for s in seeds:
        per_server = {run.name: workloads(run.urls, s, tuple(args.zooms)) for run in runs}
        tiles = tile_work(s, tuple(args.zooms))
        for i, name in enumerate(w.name for w in per_server[GPKG]):
            if args.only and not any(part in name for part in args.only):
                continue
            order = runs[step % len(runs):] + runs[:step % len(runs)]
            step += 1
            done = {}
            for run in order:
                work = per_server[run.name][i]
                loadgen.wrk(work.base, work.paths, 8, args.warmup, headers=run.headers)
                done[run.name] = loadgen.measure(run.name, name, work.base, work.paths, duration_s=args.duration,
                                                 concurrency=concurrency, headers=run.headers)
            results += [done[n] for n in ORDER if n in done]
            for r in results[-len(done):]:
                print(f"  {name:<26} {r.server:<11} p50 {r.p50_ms:8.2f} ms  p95 {r.p95_ms:8.2f}  "
                      + "  ".join(f"c{c} {r.rps[c]:7.0f}/s" for c in sorted(r.rps))
                      + f"  features {r.features_mean:8.1f}  {r.probe.statuses}", flush=True)
            if name in tiles:
                check_tiles(name, tiles[name], runs, store, checks)
            print(f"  {machine.load()}", flush=True)
    check_items(results, checks)
    return results


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--gpkg", type=Path, required=True, help="the GeoPackage store")
    ap.add_argument("--postgis", required=True, help="postgresql://…?schema=NAME holding a copy of --gpkg")
    ap.add_argument("--before", default="18e756a", help="commit of twin before the store contract; 'none': skip")
    ap.add_argument("--layers", default="hydrant,street_light")
    ap.add_argument("--zooms", type=lambda t: [int(z) for z in t.split(",")], default=list(ZOOMS))
    ap.add_argument("--requests", type=int, default=200, help="seeded requests per workload")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--duration", type=float, default=5.0, help="seconds per timed wrk run")
    ap.add_argument("--warmup", type=float, default=1.0, help="seconds of wrk (8 clients) before each measurement")
    ap.add_argument("--concurrency", type=int, nargs="+", default=[8, 32])
    ap.add_argument("--only", nargs="+", help="only workloads whose name holds one of these, e.g. '500 m' z14")
    ap.add_argument("--tile-cache-mb", type=int, default=0, help="twin's tile cache (0: every tile drawn)")
    ap.add_argument("--noise", type=float, default=0.05, help="tolerance of the 'no slower than before' target")
    ap.add_argument("--start-timeout", type=float, default=600, help="seconds a server may take to start")
    ap.add_argument("--json", type=Path, help=f"default: {BENCH}/postgis-<date>.json")
    args = ap.parse_args()
    print(machine.describe(), flush=True)
    catalogue = load_catalogue(DEFAULT_LAYERS_DIR)
    gpkg = args.gpkg.resolve()
    store = open_store(gpkg, catalogue, create=False)
    with open_store(args.postgis, catalogue, create=False) as pg:
        same_data(store, pg)
    layers = args.layers.split(",")
    print(f"{gpkg}: " + ", ".join(f"{layer} {store.count(layer):,}" for layer in layers)
          + f"; {args.postgis}: the same", flush=True)
    seeds = [draw_seeds(gpkg, layer, args.requests, args.seed) for layer in layers]
    planner = {str(gpkg): bearer(token_for(gpkg, "bench-planner", "planner")),
               args.postgis: bearer(token_for(args.postgis, "bench-planner", "planner"))}
    checks = Checks()
    runs: list[Running] = []
    try:
        runs = start_all(args, catalogue, seeds, gpkg, args.postgis, planner)
        results = measure(args, runs, seeds, store, checks)
        for run in runs:
            run.rss_mb = tree_rss_mb(run.server.process)
    finally:
        for run in runs:
            servers.stop(run.server)
        store.close()
    rows = ratios(results, tuple(args.concurrency))
    print("\n" + report(results))
    print("tiles: tipg's count≠ is by design (raw features in the tile at every zoom); see the tile check below")
    print("\n" + ratio_table(rows, tuple(args.concurrency)))
    print("\nservers: " + "; ".join(f"{r.name} {r.rss_mb:,.0f} MB" for r in runs))
    print("\ntiles checked against the store:")
    for name, verdicts in checks.tiles.items():
        print(f"  {name}: " + "; ".join(f"{k} {v}" for k, v in verdicts.items()))
    verdicts = targets(rows, tuple(args.concurrency), args.noise)
    print("\ntargets (issue 13):\n  " + "\n  ".join(verdicts))
    if checks.notes:
        print("\ntwin's tiles differing at the edge of the buffer only (index precision), tile: features vs "
              f"{GPKG}'s:\n  " + "\n  ".join(checks.notes))
    print("\n" + ("answers: every server returned the same features" if not checks.problems else
                  "ANSWERS DIFFER (the figures above compare unlike answers):\n  " + "\n  ".join(checks.problems)))
    out = args.json or BENCH / f"postgis-{time.strftime('%Y%m%d-%H%M')}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({
        "machine": machine.describe(), "args": {k: str(v) for k, v in vars(args).items()},
        "servers": [{"name": r.name, "base": r.urls.base, "store": r.store, "workers": r.workers,
                     "ready_s": r.ready_s, "warm_s": r.warm_s, "rss_mb": r.rss_mb} for r in runs],
        "results": [asdict(r) for r in results], "ratios": rows, "targets": verdicts,
        "tiles_checked": checks.tiles, "problems": checks.problems, "notes": checks.notes},
        indent=1, ensure_ascii=False), encoding="utf-8")
    print(f"written {out}")
    sys.exit(1 if checks.problems else 0)


if __name__ == "__main__":
    main()
