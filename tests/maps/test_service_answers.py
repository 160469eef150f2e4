"""A map drawn from a URL that answers, but not as a twin service does: a clear error, never a traceback."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from tests.serving import serving
from twin.cli import app
from twin.errors import StoreError
from twin.maps import build_map

Message = MutableMapping[str, Any]


def _answering(body: bytes, media_type: str) -> Callable[..., Awaitable[None]]:
    """An ASGI app answering every request with 200 and ``body``."""

    async def asgi(scope: Message, receive: Callable[[], Awaitable[Message]],
                   send: Callable[[Message], Awaitable[None]]) -> None:
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", media_type.encode())]})
        await send({"type": "http.response.body", "body": body})

    return asgi


@pytest.mark.parametrize(("body", "media_type"), [
    (b"[1, 2, 3]", "application/json"),
    (b'"features"', "application/json"),
    (b"<html><body>a router's login page</body></html>", "text/html"),
])
def test_a_url_answering_no_json_object_is_not_a_twin_service(body: bytes, media_type: str,
                                                                 tmp_path: Path) -> None:
    with serving(_answering(body, media_type)) as url:
        with pytest.raises(StoreError, match=r"/collections/hydrant/items\?.*not a twin service"):
            build_map(url, layers=["hydrant"])
        out = tmp_path / "map.html"
        result = CliRunner().invoke(app, ["map", "--store", url, "--out", str(out), "--layer", "hydrant"])
    assert result.exit_code == 1
    assert "not a twin service" in result.output and "Traceback" not in result.output
    assert not out.exists()
