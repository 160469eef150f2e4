"""The notebooks in notebooks/ run top to bottom against a small twin, so they never rot."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"


@pytest.mark.slow
@pytest.mark.parametrize(("name", "maps_shown"), [("planner_exploration.ipynb", 3),
                                                  ("gis_import_walkthrough.ipynb", 1)])
def test_notebook_runs(name: str, maps_shown: int, own_city: str, tmp_path: Path,
                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TWIN_STORE", own_city)
    book = nbformat.read(NOTEBOOKS / name, as_version=4)
    NotebookClient(book, timeout=180, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    outputs = [o for cell in book.cells if cell.cell_type == "code" for o in cell.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    maps = [o for o in outputs if "text/html" in o.get("data", {}) and "leaflet" in o["data"]["text/html"].lower()]
    assert len(maps) == maps_shown, "the notebook should show its maps"
    assert all("cdn.jsdelivr" not in o["data"]["text/html"] for o in maps)  # folium's CDN links were replaced
