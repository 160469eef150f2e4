"""Keep credentials out of logs and the audit trail: tokens, JWTs and sign-in codes are replaced by a marker.

A token can reach a log in a URL (``/login?token=…``, or a client that puts one where it does not belong),
in an exception's text or in an ``Authorization`` value quoted in a message. :func:`redact` removes every
credential-looking string from a text; :func:`install_log_redaction` applies it to every log record the
process creates, whichever logger writes it (uvicorn's access and error logs, twin's, a library's) and
whichever handler prints it (uvicorn's, the operator's logging configuration, pytest's).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping

MARK = "[redacted]"
#: Query parameters whose value is a credential: twin's sign-in link and the names OAuth clients use.
SECRET_PARAMETERS = ("token", "access_token", "id_token", "code")


def _encoded(name: str) -> str:
    """A pattern for ``name`` with any of its characters percent-encoded (``tok%65n``), as servers decode it."""
    return "".join(f"(?:{re.escape(c)}|%{ord(c):02x})" for c in name)


_PARAMETER = re.compile(
    r"(?:(?<=[?&;])|(?<=%3f)|(?<=%26))"  # after ?, & or ; (also percent-encoded, inside another parameter)
    rf"((?:{'|'.join(_encoded(n) for n in SECRET_PARAMETERS)})(?:=|%3d))"
    r"(?:(?!%26)[^&;\s\"'#<>])+", re.IGNORECASE)
_US = "(?:_|%5f)"
_TWIN_TOKEN = re.compile(rf"twin{_US}(?:[0-9a-f]{{12}}{_US}[\w%-]*|[\w%-]{{24,}})", re.IGNORECASE)
_JWT = re.compile(r"eyJ[\w-]{2,}\.[\w-]{2,}\.[\w-]*")
_SCHEME = re.compile(r"\b(bearer\s+)(?!realm=|error=)[\w.~+/-]+=*", re.IGNORECASE)  # RFC 6750 b64token
_COOKIE = re.compile(r"(twin_session=)[^;\s\"']+")


def redact(text: str) -> str:
    """``text`` with every credential in it replaced by ``[redacted]``."""
    text = _PARAMETER.sub(rf"\1{MARK}", text)
    text = _TWIN_TOKEN.sub(f"twin_{MARK}", text)
    text = _JWT.sub(MARK, text)
    text = _SCHEME.sub(rf"\1{MARK}", text)
    return _COOKIE.sub(rf"\1{MARK}", text)


def _argument(value: object) -> object:
    """A log argument without credentials: text is redacted; other objects only when their text held one."""
    if isinstance(value, str):
        return redact(value)
    if value is None or isinstance(value, (int, float)):
        return value
    try:
        text = str(value)
    except Exception:  # an object that cannot print itself holds nothing a log could show
        return value
    clean = redact(text)
    return value if clean == text else clean


def redact_record(record: logging.LogRecord) -> None:
    """Redact a log record in place: its message, its arguments (one by one, so formatters that read them,
    like uvicorn's access formatter, keep working), its exception text and its stack."""
    if isinstance(record.msg, str):
        record.msg = redact(record.msg)
    if isinstance(record.args, tuple):
        record.args = tuple(_argument(a) for a in record.args)
    elif isinstance(record.args, Mapping):
        record.args = {k: _argument(v) for k, v in record.args.items()}
    if record.exc_info and record.exc_info[0] is not None:
        record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
    if record.stack_info:
        record.stack_info = redact(record.stack_info)


def install_log_redaction() -> None:
    """Redact every log record this process creates from now on (idempotent).

    A record factory rather than a filter: a filter on a logger does not see its children's records
    (``twin.api``), and a filter on a handler misses handlers configured later (uvicorn configures its
    own when it starts, an operator may pass ``--log-config``).
    """
    current = logging.getLogRecordFactory()
    if getattr(current, "twin_redacts", False):
        return

    def factory(*args: object, **kwargs: object) -> logging.LogRecord:
        record = current(*args, **kwargs)
        redact_record(record)
        return record

    factory.twin_redacts = True  # type: ignore[attr-defined]
    logging.setLogRecordFactory(factory)

