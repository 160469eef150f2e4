"""The error table: every twin error has its status; a 500 hides its details behind a request id."""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

import twin.errors as errs
from twin.api.app import create_app
from twin.api.errors import status_of
from twin.settings import TwinSettings


def test_every_domain_error_has_a_4xx_or_503() -> None:
    classes = [c for c in vars(errs).values() if isinstance(c, type) and issubclass(c, errs.TwinError)
               and c is not errs.TwinError and c not in (errs.CatalogueError, errs.StoreVersionError,
                                                           errs.ExportError, errs.OfflineAssetError)]
    for cls in classes:
        status, code = status_of(cls.__new__(cls))
        assert 400 <= status < 500 or status == 503, (cls, status)
        assert code


def test_a_500_hides_its_details(twin_target: str, caplog: pytest.LogCaptureFixture) -> None:
    app = create_app(TwinSettings(store=twin_target))

    def boom() -> None:
        raise RuntimeError("secret connection string user=admin")

    app.add_api_route("/boom", boom)

    async def call() -> httpx.Response:
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://twin") as client:
            return await client.get("/boom")

    # a thread of its own: Playwright's sync API, when a browser test ran first in this worker, leaves an event
    # loop running on the main thread
    with caplog.at_level(logging.ERROR, logger="twin.api"), ThreadPoolExecutor(1) as pool:
        r = pool.submit(asyncio.run, call()).result()
    assert r.status_code == 500
    body = r.json()
    assert body["code"] == "ServerError" and "secret" not in r.text
    assert body["request_id"] in body["description"]
    assert any(body["request_id"] in rec.getMessage() for rec in caplog.records)
    assert "secret connection string" in caplog.text
