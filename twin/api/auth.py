"""Authentication at the HTTP edge: a bearer token (or the browser's session cookie) becomes the
request's :class:`~twin.access.Principal`; plus the login page and the admin's audit and user lists.

The token is read from ``Authorization: Bearer`` (FastAPI's :class:`HTTPBearer`, so OpenAPI shows the
scheme). Browsers sign in at ``/login`` (a pasted token, or a one-time code from a printed link) and get a
``twin_session`` cookie (HttpOnly, SameSite=Strict) holding a session id, never the token itself.
"""

from __future__ import annotations

from typing import Annotated, cast
from urllib.parse import urlsplit

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import RedirectResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from twin.access import Gate, Principal
from twin.access.principal import SIGN_IN
from twin.access.sessions import Session
from twin.access.users import now, parse_stamp
from twin.api.render import html_response, json_response
from twin.errors import AuthenticationError

COOKIE = "twin_session"
bearer = HTTPBearer(auto_error=False, description="An API token from `twin user add`, or an OIDC access token.")
router = APIRouter(tags=["Access"])
#: Told to an anonymous caller by answers that would show more with a token (the landing page, collections).
ANONYMOUS_NOTE = f"Without a token only public layers are served: {SIGN_IN}."


def gate(request: Request) -> Gate:
    return cast(Gate, request.app.state.gate)


def authenticate(request: Request,
                 credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]) -> Principal:
    """The request's principal (anonymous without credentials); a bad bearer token is a 401, audited.

    A session cookie that stopped working (expired, signed out, its user or token revoked) makes the
    browser anonymous instead, so the pages can send it back to the sign-in page rather than lock it out.
    """
    g = gate(request)
    request.state.principal = g.anonymous
    cookie = request.cookies.get(COOKIE)
    if credentials is not None:
        who = g.authenticate(credentials.credentials)
    elif cookie:
        try:
            who = g.session(cookie)
        except AuthenticationError as exc:
            g.audit.record("login", "denied", status=401, method=request.method, path=str(request.url.path)[:500],
                           detail=f"session cookie refused: {exc}")
            return g.anonymous
    else:
        return g.anonymous
    request.state.principal = who
    return who


Who = Annotated[Principal, Depends(authenticate)]


def principal(request: Request) -> Principal:
    """The principal :func:`authenticate` resolved for this request (anonymous if it did not run)."""
    return getattr(request.state, "principal", None) or gate(request).anonymous


def challenge(who: Principal) -> dict[str, str]:
    """Headers of an answer that shows an anonymous caller less than a token would: the bearer challenge."""
    return {"WWW-Authenticate": 'Bearer realm="twin"'} if who.anonymous else {}


def _safe_next(target: str | None) -> str:
    """Only local paths, so a login link cannot send the user elsewhere."""
    if not target or not target.startswith("/") or target.startswith("//") or urlsplit(target).netloc:
        return "/map"
    return target


def _login(request: Request, target: str | None, *, token: str | None = None, code: str | None = None
           ) -> Response:
    """Open a session with a token or a one-time code and set its cookie; a refusal shows the page again."""
    g = gate(request)
    try:
        who, sid, session = g.sign_in(token) if token is not None else g.sign_in_with_code(str(code))
    except AuthenticationError as exc:
        g.audit.record("login", "denied", status=401, method=request.method, path="/login", detail=str(exc))
        page = html_response("login.html", error=str(exc), next=_safe_next(target))
        page.status_code = 401
        return page
    g.audit.record("login", user=who.name, role=who.role.name, method=request.method, path="/login",
                   detail=f"browser session ({who.via}{', one-time code' if code is not None else ''}) until "
                          f"{session.expires}")
    if request.cookies.get(COOKIE):
        g.sign_out(request.cookies[COOKIE])  # the browser's previous session, if any, ends here
    response = RedirectResponse(_safe_next(target), status_code=303)
    response.set_cookie(COOKIE, sid, httponly=True, samesite="strict", secure=request.url.scheme == "https",
                        max_age=_seconds_left(session))
    return response


def _seconds_left(session: Session) -> int:
    return max(0, int((parse_stamp(session.expires) - now()).total_seconds()))


@router.get("/login", include_in_schema=False)
def login_page(request: Request, next: str | None = None,
               code: Annotated[str | None, Query(description="One-time sign-in code of a printed link.")] = None,
               token: Annotated[str | None, Query(description="A token (prefer the form: an address is kept in "
                                                  "the browser's history).")] = None) -> Response:
    """The sign-in page (paste a token); ``?code=`` (a one-click link) or ``?token=`` signs in directly and
    drops it from the address bar."""
    if code:
        return _login(request, next, code=code)
    if token:
        return _login(request, next, token=token)
    return html_response("login.html", error=None, next=_safe_next(next))


@router.post("/login", include_in_schema=False)
def login(request: Request, token: Annotated[str, Form()], next: Annotated[str | None, Form()] = None) -> Response:
    return _login(request, next, token=token.strip())


@router.post("/logout", include_in_schema=False)
def logout(request: Request) -> Response:
    """End the browser's session (server-side: the cookie stops working even if a copy of it is kept)."""
    sid = request.cookies.get(COOKIE)
    if sid:
        who = principal(request)
        gate(request).sign_out(sid)
        gate(request).audit.record("login", user=who.name, role=who.role.name, method="POST", path="/logout",
                                   detail="signed out")
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(COOKIE)
    return response


@router.get("/whoami", summary="Who the service takes you for: name, role, area and what you may read")
def whoami(request: Request, who: Who) -> Response:
    doc = {"name": who.name, "role": who.role.name, "via": who.via,
           "area": None if who.area is None else {"key": who.area.key, "layer": who.area.layer,
                                                   "name": who.area.name, "bbox": list(who.area.bounds)},
           "layers": who.readable(list(gate(request).store.catalogue))}
    return json_response(doc, headers={"Cache-Control": "private, no-store"})


@router.get("/audit", summary="The audit log (administrators): imports, edits, exports, logins, denials")
def audit(request: Request, who: Who, user: str | None = None, action: str | None = None,
          outcome: str | None = None, layer: str | None = None,
          since: Annotated[str | None, Query(description="RFC 3339 time, e.g. 2026-11-25T00:00:00Z")] = None,
          until: str | None = None, limit: Annotated[int, Query(ge=1, le=10_000)] = 100) -> Response:
    who.check_manage()
    events = gate(request).audit.query(user=user, action=action, outcome=outcome, layer=layer, since=since,
                                       until=until, limit=limit)
    return json_response({"events": [e.__dict__ for e in events], "numberReturned": len(events)},
                         headers={"Cache-Control": "private, no-store"})


@router.get("/users", summary="Users and their roles and areas (administrators)")
def users(request: Request, who: Who, revoked: bool = False) -> Response:
    who.check_manage()
    rows = gate(request).list_users(include_revoked=revoked)
    return json_response({"users": [u.__dict__ for u in rows]}, headers={"Cache-Control": "private, no-store"})


