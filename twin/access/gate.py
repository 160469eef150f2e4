"""The gate every request passes: credentials in, a :class:`Principal` out, and the audit trail kept.

Built once per app (and by the command line), it holds the policy, the users, the browser sessions, the
areas and the log.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from twin.access.areas import AreaResolver
from twin.access.audit import AuditLog
from twin.access.oidc import JwtVerifier, OidcSettings
from twin.access.policy import Policy, ScopeRule, load_policy
from twin.access.principal import Principal, anonymous
from twin.access.sessions import Session, SessionStore
from twin.access.users import User, UserRegistry, check_days, parse_stamp, split_token
from twin.errors import AccessConfigError, AuthenticationError, PermissionDeniedError
from twin.settings import TwinSettings
from twin.store import Store


@dataclass(frozen=True)
class AccessSettings:
    """Where the access database and the policy are, and the optional OIDC provider."""

    db: Path | None = None  # a GeoPackage store's access database (default: beside it, <store>.access.db)
    policy: Path | None = None  # default: the packaged policy.yaml
    oidc: OidcSettings | None = None

    @classmethod
    def of(cls, cfg: TwinSettings) -> AccessSettings:
        """The gate's settings from twin's; OIDC only when JWKS, issuer and audience are all given."""
        o = cfg.oidc
        oidc = None
        if any((o.jwks, o.issuer, o.audience)):
            if not all((o.jwks, o.issuer, o.audience)):
                raise AccessConfigError("OIDC mode needs TWIN_OIDC_JWKS, TWIN_OIDC_ISSUER and TWIN_OIDC_AUDIENCE "
                                        "together")
            oidc = OidcSettings(jwks=str(o.jwks), issuer=str(o.issuer), audience=str(o.audience),
                                role_claim=o.role_claim, area_claim=o.area_claim, role_map=dict(o.role_map))
        return cls(db=cfg.access_db, policy=cfg.access_policy, oidc=oidc)


class Gate:
    """Authenticates credentials into principals, checks users against the policy, records the audit trail."""

    def __init__(self, store: Store, settings: AccessSettings | None = None) -> None:
        settings = settings or AccessSettings()
        self.store = store
        self.policy: Policy = load_policy(settings.policy, store.catalogue)
        self.db = store.access(settings.db)
        self.users = UserRegistry(self.db)
        self.sessions = SessionStore(self.db)
        self.audit = AuditLog(self.db)
        self.areas = AreaResolver(store, self.policy.area_layers)
        self.jwt = JwtVerifier(settings.oidc) if settings.oidc else None
        self.anonymous = anonymous(self.policy)

    def close(self) -> None:
        self.areas.close()
        self.audit.close()
        self.db.close()

    def authenticate(self, token: str | None) -> Principal:
        """The principal holding ``token`` (anonymous when ``None``); :class:`AuthenticationError` otherwise."""
        if token is None:
            return self.anonymous
        return self._identify(token)[0]

    def _identify(self, token: str) -> tuple[Principal, str | None, datetime]:
        """The principal holding a bearer token, the twin token's id (none for a JWT), and when it expires."""
        if self.jwt is not None and JwtVerifier.looks_like_jwt(token):
            claims = self.jwt.verify(token)
            known = [r for r in claims.roles if r in self.policy.roles]
            if not known:
                raise AuthenticationError(f"none of the token's roles ({', '.join(claims.roles)}) is a twin role")
            return self.principal(claims.name, known[0], claims.area, via="oidc"), None, claims.expires
        user = self.users.authenticate(token)
        token_id = split_token(token)[0]
        return self.principal(user.name, user.role, user.area, via="token"), token_id, parse_stamp(str(user.expires))

    # -- browser sessions ------------------------------------------------------------------------
    def sign_in(self, token: str) -> tuple[Principal, str, Session]:
        """Open a browser session for the holder of a bearer token: the principal, the session id, the session."""
        who, token_id, until = self._identify(token)
        return self._open(who, token_id, until)

    def sign_in_with_code(self, code: str) -> tuple[Principal, str, Session]:
        """Open a browser session with a one-time sign-in code (spent by this call, whatever the outcome)."""
        token_id = self.sessions.redeem(code)
        user = self.users.holder(token_id)
        who = self.principal(user.name, user.role, user.area, via="token")
        return self._open(who, token_id, parse_stamp(str(user.expires)))

    def _open(self, who: Principal, token_id: str | None, until: datetime) -> tuple[Principal, str, Session]:
        sid, session = self.sessions.open(str(who.name), who.role.name, who.area.key if who.area else None,
                                          who.via, token_id, until)
        return who, sid, session

    def session(self, sid: str) -> Principal:
        """The principal of a live browser session; :class:`AuthenticationError` once it or its token ended."""
        session = self.sessions.find(sid)
        if session.token is not None:
            self.users.holder(session.token)  # revoked or expired since: the session ends with it
        return self.principal(session.user, session.role, session.area, via=session.via)

    def sign_out(self, sid: str) -> None:
        self.sessions.end(sid)

    def sign_in_code(self, token: str) -> str:
        """A one-time code for a one-click sign-in link (``/login?code=…``) that opens a session for ``token``."""
        user = self.users.authenticate(token)
        return self.sessions.new_code(split_token(token)[0], parse_stamp(str(user.expires)))

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
        token = self.users.add(name, role, area, self._days(days))
        self.audit.record("user", user=by, role="admin", detail=f"added {name} ({role}"
                          + (f", area {area})" if area else ")"))
        return token

    def issue_token(self, name: str, days: int | None = None, *, by: str = "local") -> str:
        """A new token for an existing, live user (audited)."""
        days = self._days(days)
        token = self.users.issue(name, days)
        self.audit.record("user", user=by, role="admin", detail=f"new token for {name} ({days} days)")
        return token

    def _days(self, days: int | None) -> int:
        """A new token's lifetime: ``days`` when given (checked: 0 is not "the default"), else the policy's."""
        return self.policy.token_days if days is None else check_days(days)

    def revoke_user(self, name: str, *, by: str = "local") -> int:
        """Revoke ``name``: every token and browser session ends at once; returns how many tokens were live."""
        n = self.users.revoke(name)
        ended = self.sessions.end_user(name)
        self.audit.record("user", user=by, role="admin", detail=f"revoked {name} ({n} live tokens, {ended} "
                                                                 "sessions)")
        return n

    def list_users(self, include_revoked: bool = False) -> list[User]:
        return self.users.list(include_revoked=include_revoked)
