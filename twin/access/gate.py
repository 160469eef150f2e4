"""The gate every request passes: credentials in, a :class:`Principal` out, and the audit trail kept.

Built once per app (and by the command line), it holds the policy, the users, the areas and the log.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from twin.access.areas import AreaResolver
from twin.access.audit import AuditLog
from twin.access.db import AccessDB, access_db_path
from twin.access.oidc import JwtVerifier, OidcSettings
from twin.access.policy import Policy, ScopeRule, load_policy
from twin.access.principal import Principal, anonymous
from twin.access.users import User, UserRegistry
from twin.errors import AccessConfigError, AuthenticationError, PermissionDeniedError
from twin.store.geopackage import GeoPackageStore


@dataclass(frozen=True)
class AccessSettings:
    """Where the access database and the policy are, and the optional OIDC provider."""

    db: Path | None = None  # default: beside the store, <store>.access.db
    policy: Path | None = None  # default: the packaged policy.yaml
    oidc: OidcSettings | None = None


class Gate:
    """Authenticates credentials into principals, checks users against the policy, records the audit trail."""

    def __init__(self, store: GeoPackageStore, settings: AccessSettings | None = None) -> None:
        settings = settings or AccessSettings()
        self.store = store
        self.policy: Policy = load_policy(settings.policy, store.catalogue)
        self.db = AccessDB(settings.db or access_db_path(store.path))
        self.users = UserRegistry(self.db)
        self.audit = AuditLog(self.db)
        self.areas = AreaResolver(store, self.policy.area_layers)
        self.jwt = JwtVerifier(settings.oidc) if settings.oidc else None
        self.anonymous = anonymous(self.policy)

    def close(self) -> None:
        self.audit.close()
        self.db.close()

    def authenticate(self, token: str | None) -> Principal:
        """The principal holding ``token`` (anonymous when ``None``); :class:`AuthenticationError` otherwise."""
        if token is None:
            return self.anonymous
        if self.jwt is not None and JwtVerifier.looks_like_jwt(token):
            claims = self.jwt.verify(token)
            known = [r for r in claims.roles if r in self.policy.roles]
            if not known:
                raise AuthenticationError(f"none of the token's roles ({', '.join(claims.roles)}) is a twin role")
            return self.principal(claims.name, known[0], claims.area, via="oidc")
        user = self.users.authenticate(token)
        return self.principal(user.name, user.role, user.area, via="token")

    def principal(self, name: str, role_name: str, area_key: str | None, *, via: str) -> Principal:
        """A principal for ``name``, with the role's scope rule enforced and the area resolved."""
        try:
            role = self.policy.role(role_name)
        except AccessConfigError:
            raise PermissionDeniedError(f"{name}'s role {role_name!r} is not in the access policy") from None
        if area_key is None and role.scope is ScopeRule.required:
            raise PermissionDeniedError(f"role {role.name!r} needs an area, and {name} has none")
        if area_key is not None and role.scope is ScopeRule.none:
            raise PermissionDeniedError(f"role {role.name!r} cannot be scoped to an area")
        try:
            area = self.areas.get(area_key) if area_key is not None else None
        except AccessConfigError as exc:
            raise PermissionDeniedError(f"{name}'s area is not usable: {exc}") from None
        return Principal(name, role, area, via, self.policy)

    # -- administration (command line and admin API) ------------------------------------------
    def add_user(self, name: str, role: str, area: str | None = None, days: int | None = None, *,
                 by: str = "local") -> str:
        """Check the role and area, create the user, return its token (audited as done ``by``)."""
        rule = self.policy.role(role).scope
        if area is None and rule is ScopeRule.required:
            raise AccessConfigError(f"role {role!r} needs --area KEY (a {'/'.join(self.policy.area_layers)} key)")
        if area is not None and rule is ScopeRule.none:
            raise AccessConfigError(f"role {role!r} sees the whole city; it cannot have an area")
        if area is not None:
            self.areas.get(area)
        token = self.users.add(name, role, area, days or self.policy.token_days)
        self.audit.record("user", user=by, role="admin", detail=f"added {name} ({role}"
                          + (f", area {area})" if area else ")"))
        return token

    def issue_token(self, name: str, days: int | None = None, *, by: str = "local") -> str:
        """A new token for an existing, live user (audited)."""
        days = days or self.policy.token_days
        token = self.users.issue(name, days)
        self.audit.record("user", user=by, role="admin", detail=f"new token for {name} ({days} days)")
        return token

    def revoke_user(self, name: str, *, by: str = "local") -> int:
        n = self.users.revoke(name)
        self.audit.record("user", user=by, role="admin", detail=f"revoked {name} ({n} live tokens)")
        return n

    def list_users(self, include_revoked: bool = False) -> list[User]:
        return self.users.list(include_revoked=include_revoked)
