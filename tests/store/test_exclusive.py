"""Work every server would otherwise repeat (building tile aggregates) is done by one thread of one process of the
deployment at a time: ``store.exclusive`` on either engine, across processes, stores and threads."""

from __future__ import annotations

import subprocess
import sys
import threading

from twin.catalogue import Catalogue
from twin.store import Store, open_store

HOLD = """
import sys
from twin.catalogue import load_catalogue
from twin.settings import DEFAULT_LAYERS_DIR
from twin.store import open_store
store = open_store(sys.argv[1], load_catalogue(DEFAULT_LAYERS_DIR), create=False)
with store.exclusive("tiles:hydrant") as held:
    print("held" if held else "refused", flush=True)
    sys.stdin.readline()
store.close()
"""


def test_work_held_by_another_process_is_refused_without_waiting_and_free_after(store: Store) -> None:
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(store.location)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        with store.exclusive("tiles:hydrant", wait=False) as held:
            assert held is False
        with store.exclusive("tiles:pipeline", wait=False) as other:
            assert other is True  # another name is another lock
    finally:
        assert holder.stdin is not None
        holder.stdin.close()
        holder.wait(timeout=60)
    with store.exclusive("tiles:hydrant", wait=False) as held:
        assert held is True


def test_two_stores_of_one_process_and_its_threads_exclude_each_other(store: Store, catalogue: Catalogue) -> None:
    other = open_store(store.location, catalogue, create=False)
    inside = threading.Event()
    leave = threading.Event()

    def hold() -> None:
        with other.exclusive("tiles:hydrant") as held:
            assert held
            inside.set()
            leave.wait(30)

    thread = threading.Thread(target=hold)
    thread.start()
    try:
        assert inside.wait(30)
        with store.exclusive("tiles:hydrant", wait=False) as held:
            assert held is False
    finally:
        leave.set()
        thread.join()
        other.close()
    with store.exclusive("tiles:hydrant") as held:  # waits for nobody now
        assert held is True
