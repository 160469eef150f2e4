"""Start the peers on the loaded store and keep them up until Ctrl-C (for poking at them by hand).

    python bench/peers/serve.py [--only tipg|pygeoapi] [--provider ogr|sqlite] [--layer street_light]

Prints each peer's base URL and one example request per shared workload.
"""

from __future__ import annotations

import argparse
import contextlib
import signal
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # bench/: the peers package

from peers.servers import loaded_store, running_peers
from peers.workloads import build, draw_seeds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=["tipg", "pygeoapi"])
    parser.add_argument("--provider", choices=["ogr", "sqlite"], default="ogr", help="pygeoapi's provider")
    parser.add_argument("--layer", default="street_light")
    args = parser.parse_args()
    names = (args.only,) if args.only else ("tipg", "pygeoapi")
    seeds = draw_seeds(loaded_store(), args.layer, 1)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    with running_peers(names, pygeoapi_provider=args.provider) as peers:
        for name, urls in peers.items():
            print(f"{name}: {urls.base}")
            for work in build(urls, seeds):
                print(f"  {work.name:<10} {work.base}{work.paths[0]}")
        print("Ctrl-C to stop.", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            signal.pause()


if __name__ == "__main__":
    main()
