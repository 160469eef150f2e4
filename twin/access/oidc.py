"""Optional OIDC/JWT mode: accept tokens signed by the city's identity provider.

The signing keys come from a JWKS document (a file, or a URL on the intranet); issuer, audience and
expiry are checked by PyJWT, then two claims are mapped: one to a twin role (through ``role_map``), one
to an area key.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import jwt

from twin.errors import AccessConfigError, AuthenticationError

ALGORITHMS = ("RS256", "RS384", "RS512", "ES256", "ES384", "PS256", "EdDSA")


@dataclass(frozen=True)
class OidcSettings:
    """Where the keys are and how claims become a twin role and area."""

    jwks: str  # a path to a JWKS file, or an http(s) URL
    issuer: str
    audience: str
    role_claim: str = "twin_role"
    area_claim: str = "twin_area"
    name_claim: str = "preferred_username"
    role_map: dict[str, str] = field(default_factory=dict)  # the provider's role -> twin role; when given, only
    # the roles it maps count (so a provider role that merely happens to be called "admin" is not twin's admin)


@dataclass(frozen=True)
class Claims:
    """What a verified token says about its holder, in twin's terms."""

    name: str
    roles: tuple[str, ...]  # mapped to twin role names, most preferred first
    area: str | None
    expires: datetime  # the token's ``exp``: a browser session opened with it ends then at the latest


class JwtVerifier:
    """Verifies provider-issued JWTs and maps their claims."""

    def __init__(self, settings: OidcSettings) -> None:
        self.settings = settings
        if settings.jwks.startswith(("http://", "https://")):
            self._client: jwt.PyJWKClient | None = jwt.PyJWKClient(settings.jwks, cache_keys=True, lifespan=3600)
            self._keys: dict[str, jwt.PyJWK] = {}
        else:
            self._client = None
            try:
                keys = jwt.PyJWKSet.from_json(Path(settings.jwks).read_text(encoding="utf-8")).keys
            except (OSError, jwt.PyJWTError, json.JSONDecodeError) as exc:
                raise AccessConfigError(f"OIDC JWKS {settings.jwks}: {exc}") from None
            self._keys = {k.key_id or "": k for k in keys}

    @staticmethod
    def looks_like_jwt(token: str) -> bool:
        return token.count(".") == 2 and token.startswith("ey")

    def _key(self, token: str) -> jwt.PyJWK:
        if self._client is not None:
            return self._client.get_signing_key_from_jwt(token)
        kid = jwt.get_unverified_header(token).get("kid") or ""
        if kid in self._keys:
            return self._keys[kid]
        if len(self._keys) == 1 and not kid:
            return next(iter(self._keys.values()))
        raise AuthenticationError(f"token signed with unknown key id {kid[:40]!r}")

    def verify(self, token: str) -> Claims:
        s = self.settings
        try:
            key = self._key(token)
            claims = jwt.decode(token, key=key, algorithms=list(ALGORITHMS), audience=s.audience, issuer=s.issuer,
                                options={"require": ["exp", "iss", "aud"]})
        except jwt.ExpiredSignatureError:
            raise AuthenticationError("token expired") from None
        except jwt.PyJWTError as exc:
            raise AuthenticationError(f"token rejected: {exc}") from None
        raw = claims.get(s.role_claim)
        candidates = raw if isinstance(raw, list) else [raw]
        named = [str(r) for r in candidates if r is not None]
        roles = [s.role_map[r] for r in named if r in s.role_map] if s.role_map else named
        if named and not roles:
            raise AuthenticationError(f"none of the token's roles ({', '.join(named)}) is a twin role or mapped to "
                                      "one (TWIN_OIDC_ROLE_MAP)")
        if not roles:
            raise AuthenticationError(f"token has no {s.role_claim!r} claim to map to a twin role")
        area = claims.get(s.area_claim)
        name = str(claims.get(s.name_claim) or claims.get("sub") or "?")
        return Claims(name=f"oidc:{name}", roles=tuple(roles), area=None if area in (None, "") else str(area),
                      expires=datetime.fromtimestamp(int(claims["exp"]), UTC))
