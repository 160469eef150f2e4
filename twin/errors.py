"""The twin's error tree. Domain errors carry no HTTP; the API maps them to status codes."""

from __future__ import annotations


class TwinError(Exception):
    """Base class of every error twin raises on purpose."""


class CatalogueError(TwinError):
    """A layer catalogue file is malformed; the message names the file and the field."""


class LayerNotFoundError(TwinError):
    """A layer id that the catalogue does not define."""

    def __init__(self, layer: str, known: list[str] | None = None) -> None:
        hint = f" (known layers: {', '.join(sorted(known))})" if known else ""
        super().__init__(f"unknown layer {layer!r}{hint}")
        self.layer = layer


class NotFoundError(TwinError):
    """Something named in a request that does not exist (an indicator, ...); the message says what."""


class NotReadyError(TwinError):
    """Something derived is still being built (an indicator's sums the first time): 503, retry shortly."""


class StepOutOfOrderError(TwinError):
    """An alert or a work order moved out of its order (accepted twice, closed before it was accepted): 409."""


class FeatureNotFoundError(TwinError):
    """A location key that resolves to no component."""

    def __init__(self, key: str) -> None:
        super().__init__(f"no component with key {key!r}")
        self.key = key


class VersionConflictError(TwinError):
    """A conditional write (``If-Match``) that names a version the component no longer has."""

    def __init__(self, key: str, expected: int, current: int) -> None:
        super().__init__(f"component {key!r} is at version {current}, not {expected}: it changed since it was "
                         "read; read it again and re-apply the change")
        self.key, self.expected, self.current = key, expected, current


class ComponentExistsError(TwinError):
    """A new component where one already stands: its location key is taken."""

    def __init__(self, key: str) -> None:
        super().__init__(f"a component already stands at this location (key {key!r}): change it with PUT or PATCH "
                         "on its URL instead of adding another")
        self.key = key


class InvalidKeyError(TwinError):
    """A string that is not a well-formed location key."""


class SchemaViolationError(TwinError):
    """A write whose values break the layer's attribute schema.

    ``problems`` lists ``(row, field, message)`` triples; ``row`` is the 0-based position in
    the batch written (importers translate it into their own file row numbers).
    """

    def __init__(self, layer: str, problems: list[tuple[int, str, str]]) -> None:
        self.layer = layer
        self.problems = problems
        shown = "; ".join(f"row {r}, field {f!r}: {m}" for r, f, m in problems[:5])
        more = f" (and {len(problems) - 5} more)" if len(problems) > 5 else ""
        super().__init__(f"layer {layer!r}: {len(problems)} value(s) break the schema: {shown}{more}")


class StoreVersionError(TwinError):
    """A store written by a schema version this twin cannot read or migrate."""


class StoreError(TwinError):
    """A store file that is missing, unreadable or not a twin store."""


class StoreUnavailableError(StoreError):
    """The store's database cannot be reached right now (down, restarting, refusing); retrying later may work."""


class InvalidQueryError(TwinError):
    """A query with bad parameters (bbox, radius, limit, CRS ...)."""


class QueryTooExpensiveError(InvalidQueryError):
    """A query that would scan more of the store than its time budget allows."""


class CursorGoneError(TwinError):
    """A change-feed cursor this store cannot resume from (past its end: another store, or one restored from an
    older backup); the reader must resynchronise."""


class ImportRejectedError(TwinError):
    """A file that cannot be imported at all (unreadable, unsafe, wrong kind); nothing was written."""


class ExportError(TwinError):
    """An export that cannot be written (bad format, path or CRS); no partial file is left."""


class OfflineAssetError(TwinError):
    """A map would load a script, style sheet or font that twin does not serve itself (no CDN, ever)."""


class AuthenticationError(TwinError):
    """A request without valid credentials: no token, or one that is unknown, expired, revoked or forged."""


class PermissionDeniedError(TwinError):
    """An authenticated user asking for something their role does not allow."""


class MaskedFieldError(PermissionDeniedError):
    """A filter or sort naming a personal field the user's role only sees masked (values could be inferred)."""


class OutOfScopeError(FeatureNotFoundError):
    """A component outside the user's area: answered exactly like one that does not exist, but audited."""


class AccessConfigError(TwinError):
    """An access policy, user or area that is malformed or names something that does not exist."""
