"""No credential survives :func:`twin.access.redaction.redact`, nor a log record once redaction is installed."""

from __future__ import annotations

import io
import logging
import secrets
from collections.abc import Iterator

import pytest
from hypothesis import given
from hypothesis import strategies as st
from uvicorn.logging import AccessFormatter

from twin.access.redaction import MARK, install_log_redaction, redact
from twin.access.users import split_token


def twin_token() -> str:
    return f"twin_{secrets.token_hex(6)}_{secrets.token_urlsafe(32)}"


JWT = "eyJhbGciOiJSUzI1NiIsImtpZCI6ImsxIn0.eyJzdWIiOiJ3YW5nIiwiZXhwIjo5OTk5OTk5OTk5fQ.c2lnbmF0dXJlLWJ5dGVz"
_text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=30)


@given(before=_text, after=_text)
def test_a_twin_token_anywhere_in_a_text_is_redacted(before: str, after: str) -> None:
    token = twin_token()
    assert split_token(token)[1] not in redact(before + token + after)


@pytest.mark.parametrize("url, kept", [
    ("/login?token=hunter2&next=/map", "&next=/map"),
    ("/login?next=/map&token=hunter2", "?next=/map&"),
    ("/login?tok%65n=hunter2", "/login?"),  # the name percent-encoded, as the server decodes it
    ("/login?TOKEN=hunter2", "/login?"),
    ("/login?next=%2Fmap%3Ftoken%3Dhunter2%26x%3D1", "%26x%3D1"),  # inside another parameter
    ("/login?code=hunter2&next=/map", "&next=/map"),  # a one-time sign-in code
    ("/collections/hydrant/items?access_token=hunter2", "/collections/hydrant/items?"),
    ("Authorization: Bearer hunter2", "Authorization: Bearer "),
])
def test_credentials_in_urls_and_headers_are_redacted(url: str, kept: str) -> None:
    clean = redact(url)
    assert "hunter2" not in clean and MARK in clean and kept in clean


@pytest.mark.parametrize("text", [
    "twin_tiles_shapes and twin_changesets", "/collections/hydrant/items?filter=kind%3D%27x%27&barcode=1",
    "send 'Authorization: Bearer <token>'", 'WWW-Authenticate: Bearer realm="twin"', "HY-wtw3sjq6-0",
])
def test_text_without_credentials_is_left_alone(text: str) -> None:
    assert redact(text) == text


def test_jwts_and_session_cookies_are_redacted() -> None:
    assert redact(f"rejected {JWT} at noon") == f"rejected {MARK} at noon"
    assert redact("Cookie: twin_session=abcDEF123-_; lang=zh") == f"Cookie: twin_session={MARK}; lang=zh"


@pytest.fixture
def printed() -> Iterator[tuple[io.StringIO, logging.Handler]]:
    """A handler printing what it receives, as uvicorn's and an operator's handlers do."""
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    yield out, handler
    handler.close()


def test_every_logger_and_formatter_prints_records_redacted(printed: tuple[io.StringIO, logging.Handler]) -> None:
    out, handler = printed
    install_log_redaction()
    install_log_redaction()  # twice is once
    token = twin_token()
    access, child = logging.getLogger("uvicorn.access"), logging.getLogger("twin.api.somewhere")
    handler.setFormatter(AccessFormatter('%(client_addr)s - "%(request_line)s" %(status_code)s', use_colors=False))
    access.addHandler(handler)
    try:
        access.warning('%s - "%s %s HTTP/%s" %d', "127.0.0.1:5", "GET", f"/login?token={token}&next=/map", "1.1", 303)
    finally:
        access.removeHandler(handler)
    handler.setFormatter(logging.Formatter("%(message)s"))
    child.addHandler(handler)  # a child logger of twin's: a filter on the "twin" logger would never see it
    try:
        child.warning("refused %s for %r", f"Bearer {token}", {"token": token})
        child.warning(f"f-string with {token}")
        try:
            raise ValueError(f"bad credential {JWT}")
        except ValueError:
            child.exception("failed")
    finally:
        child.removeHandler(handler)
    text = out.getvalue()
    assert '127.0.0.1:5 - "GET /login?token=[redacted]&next=/map HTTP/1.1" 303' in text
    assert "refused Bearer [redacted]" in text and "ValueError: bad credential [redacted]" in text
    assert split_token(token)[1] not in text and JWT not in text
