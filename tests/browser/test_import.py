"""The import page in Chromium: upload a messy shapefile, read the dry run on the map, confirm, find the result."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.browser.conftest import Tab, open_tab
from tests.maps.server import running
from tests.maps.test_pages import messy_shapefile
from tests.users import add_user


@pytest.fixture
def own_tab(browser: object, own_city: str) -> Iterator[Tab]:
    token = add_user(own_city, "editor", "gis_editor")
    with running(own_city) as url:
        tab = open_tab(browser, url, token)
        yield tab
        tab.page.context.close()
    assert tab.outside() == [] and tab.errors == []


def test_upload_dry_run_confirm_and_find_on_the_map(own_tab: Tab, tmp_path: Path) -> None:
    page = own_tab.page
    files = messy_shapefile(tmp_path / "shp")
    page.goto(own_tab.base + "/import")
    page.set_input_files("#twin-file", [str(f) for f in files])
    page.select_option("#twin-layer", "hydrant")
    page.click("#twin-dry-run")
    report = page.locator("#twin-report")
    report.locator("h3, .twin-error").first.wait_for()
    assert page.locator("#twin-confirm").count() == 1, report.inner_text()
    assert report.locator('[data-count="insert"]').inner_text() == "11"
    assert report.locator('[data-count="rejected"]').inner_text() == "1"
    assert "EPSG:4549" in report.inner_text() and "GB18030" in report.inner_text().upper() + "GBK"
    assert "sideways" in report.locator(".twin-problems").inner_text()
    assert page.locator(".twin-preview-insert").count() == 11 and page.locator(".twin-preview-reject").count() == 1
    page.wait_for_timeout(400)
    own_tab.shot("import-dry-run")
    page.click("#twin-cancel")
    assert page.locator(".twin-preview").count() == 0 and "未写入" in report.inner_text()
    page.click("#twin-dry-run")
    page.locator("#twin-confirm").wait_for()
    page.click("#twin-confirm")
    page.locator("#twin-changeset").wait_for()
    keys = page.evaluate("TwinImport.preview.getLayers().map(l => l.feature.properties.key).filter(Boolean)")
    assert len(keys) == 11
    own_tab.shot("import-done")
    page.click("#twin-open-map")
    page.wait_for_function("window.TwinMap && TwinMap.ready === true")
    page.fill("#twin-search", keys[0])
    page.press("#twin-search", "Enter")
    popup = page.locator(f'.twin-popup[data-key="{keys[0]}"]')
    popup.wait_for()
    assert "人民大道" in popup.inner_text() and "上海市自来水公司" in popup.inner_text()
    page.wait_for_timeout(400)
    own_tab.shot("import-found-on-map")
