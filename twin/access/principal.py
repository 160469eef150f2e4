"""Who is asking: a :class:`Principal` is a user's name, role and area, resolved once per request.

Every read path asks the principal the same three questions: may this layer be read, which of its
personal fields are seen unmasked, and which area (if any) bounds what is returned.
"""

from __future__ import annotations

from dataclasses import dataclass

from twin.access.policy import Policy, Role
from twin.catalogue import LayerSpec
from twin.errors import AuthenticationError, PermissionDeniedError
from twin.model.area import Area

ANONYMOUS = "anonymous"
#: How to sign in, for every answer that would show an anonymous caller more with a token.
SIGN_IN = ("send 'Authorization: Bearer <token>' with every request (an administrator creates tokens with "
           "`twin user add`; browsers sign in at /login)")


@dataclass(frozen=True, eq=False)
class Principal:
    """An authenticated user (or the anonymous caller), with what their role and area allow."""

    name: str | None  # None: anonymous
    role: Role
    area: Area | None
    via: str  # "token", "oidc", "local" (the command line) or "anonymous"
    policy: Policy

    @property
    def anonymous(self) -> bool:
        return self.name is None

    @property
    def variant(self) -> str:
        """What decides what this principal sees: cached answers are shared only within one variant."""
        return f"{self.role.name}@{self.area.key if self.area else '*'}"

    def can_read(self, layer: str) -> bool:
        if self.anonymous:
            return layer in self.policy.public_layers
        return self.role.reads(layer)

    def check_read(self, layer: str) -> None:
        """Raise unless ``layer`` may be read: 401 for the anonymous caller, 403 for a user whose role may not."""
        if self.can_read(layer):
            return
        if self.anonymous:
            raise AuthenticationError(f"layer {layer!r} needs a token: {SIGN_IN}")
        raise PermissionDeniedError(f"role {self.role.name!r} may not read layer {layer!r}")

    def check_read_any(self, layers: list[str]) -> list[str]:
        """The layers of ``layers`` that may be read; when there are none, 401 for the anonymous caller and
        403 for a user, never an empty answer that looks like "no data"."""
        names = self.readable(layers)
        if names or not layers:
            return names
        if self.anonymous:
            raise AuthenticationError(f"no layer is public, so this needs a token: {SIGN_IN}")
        raise PermissionDeniedError(f"role {self.role.name!r} may not read any of the layers {', '.join(layers)}")

    def check_write(self, layer: str) -> None:
        if self.anonymous:
            raise AuthenticationError(f"writing needs a token: {SIGN_IN}")
        if not self.role.writes(layer) or (self.area is not None and not self.role.manage):
            raise PermissionDeniedError(f"role {self.role.name!r} may not write layer {layer!r}")

    def check_edit(self, layer: str) -> None:
        """Raise unless the role writes ``layer``; a user with an area edits only inside it (the editor checks
        each component), where an import (:meth:`check_write`) needs a role without an area or a manager."""
        if self.anonymous:
            raise AuthenticationError(f"editing needs a token: {SIGN_IN}")
        if not self.role.writes(layer):
            raise PermissionDeniedError(f"role {self.role.name!r} may not write layer {layer!r}")

    def check_manage(self) -> None:
        if self.anonymous:
            raise AuthenticationError("this needs an administrator's token")
        if not self.role.manage:
            raise PermissionDeniedError(f"role {self.role.name!r} may not manage users or read the audit log")

    def unmasked(self, spec: LayerSpec) -> frozenset[str]:
        """Personal fields of ``spec`` this principal sees as stored (the anonymous caller: none)."""
        return frozenset() if self.anonymous else self.role.unmasked(spec)

    def readable(self, layers: list[str]) -> list[str]:
        return [layer for layer in layers if self.can_read(layer)]


def anonymous(policy: Policy) -> Principal:
    return Principal(None, Role(name=ANONYMOUS, read=tuple(policy.public_layers)), None, "anonymous", policy)


def local(policy: Policy) -> Principal:
    """Whoever runs the command line on the store's machine: file access is full access, so an admin."""
    return Principal("local", policy.role("admin") if "admin" in policy.roles else
                     Role(name="admin", read="*", write="*", unmask="*", manage=True), None, "local", policy)
