"""``twin user`` and ``twin audit`` on the command line, and the audit trail of the command line's own writes,
against a real store of this run's engine and its real access tables."""

from __future__ import annotations

import getpass
import re
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import geopandas as gpd
import orjson
import pytest
import shapely
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from typer.testing import CliRunner, Result

from tests.engines import access_snapshot, clone, drop, fresh, is_pg
from tests.query.twin_fixture import build_twin
from twin.access import AccessSettings, Gate
from twin.access.users import now, stamp
from twin.catalogue import Catalogue
from twin.cli import app
from twin.cli import common as cli_common
from twin.cli.access import UP_USER, up_login
from twin.errors import AuthenticationError
from twin.settings import DEFAULT_LAYERS_DIR, TwinSettings
from twin.store import exists, open_store

TOKEN = re.compile(r"twin_[0-9a-f]{12}_[A-Za-z0-9_-]{43}")
OPERATOR = f"local:{getpass.getuser()}"
WEST = "DI-wtw3fbgs-0"  # the west district of tests.query.twin_fixture
runner = CliRunner()


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory, catalogue: Catalogue) -> Iterator[str]:
    """A small twin with two districts (areas) and hydrants (not areas), built once; tests work on copies."""
    with fresh(tmp_path_factory.mktemp("access-cli"), "template") as target:
        build_twin(target, catalogue).close()
        yield target


@pytest.fixture
def store(tmp_path: Path, template: str, catalogue: Catalogue) -> Iterator[str]:
    """A copy of the template (where the store is: a path or a URL)."""
    target = clone(template, tmp_path, catalogue, "city")
    yield target
    drop(target)


@pytest.fixture(autouse=True)
def wide_console(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tables as wide as they need, so that each row reads as one line."""
    monkeypatch.setattr(cli_common.console, "width", 250)


def twin(store: str, *args: str) -> Result:
    return runner.invoke(app, [*args, "--store", store])


def ok(store: str, *args: str) -> Result:
    result = twin(store, *args)
    assert result.exit_code == 0, result.output
    return result


def token_of(result: Result) -> str:
    found = set(TOKEN.findall(result.stdout))
    assert len(found) == 1, result.stdout
    return found.pop()


@pytest.fixture
def gate(store: str, catalogue: Catalogue) -> Iterator[Gate]:
    """The store's gate, as the service would build it: an independent reader of what the commands wrote."""
    st_ = open_store(store, catalogue, create=False)
    g = Gate(st_, AccessSettings())
    yield g
    g.close()
    st_.close()


def committee_file(folder: Path, rows: int = 1) -> Path:
    """A GeoJSON file of committee areas inside the west district."""
    frame = gpd.GeoDataFrame({"name": [f"测试居委{i}" for i in range(rows)],
                              "subdistrict": ["SD-wtw3fbgs-0"] * rows, "secretary": ["王建国"] * rows},
                             geometry=[shapely.box(121.40 + i * 0.01, 31.20, 121.405 + i * 0.01, 31.21)
                                       for i in range(rows)], crs="EPSG:4326")
    path = folder / "committee.geojson"
    frame.to_file(path, driver="GeoJSON")
    return path


def committee_key(store: str, catalogue: Catalogue) -> str:
    st_ = open_store(store, catalogue, create=False)
    try:
        return str(st_.features("committee").key.iloc[0])
    finally:
        st_.close()


# -- twin user add ------------------------------------------------------------------------------------------------

def test_user_add_prints_a_working_token_once_with_how_to_use_it(store: str, gate: Gate) -> None:
    result = ok(store, "user", "add", "alice", "--role", "planner")
    token = token_of(result)
    assert "shown only once" in result.stdout
    assert f"Authorization: Bearer {token}" in result.stdout
    link = re.search(r"http://127\.0\.0\.1:8000/login\?code=([\w-]+)&next=/map", result.stdout)
    assert link and token not in link.group(0)  # a one-time code, not the token, goes in the address
    assert gate.sign_in_with_code(link.group(1))[0].name == "alice"
    who = gate.authenticate(token)
    assert (who.name, who.role.name, who.area) == ("alice", "planner", None)
    assert access_snapshot(store)["tokens"][0][2] != token.split("_")[2]  # only the hash is kept


def test_user_add_scopes_an_area_officer_to_a_committee_imported_from_the_command_line(
        store: str, tmp_path: Path, gate: Gate, catalogue: Catalogue) -> None:
    ok(store, "import", str(committee_file(tmp_path)), "--layer", "committee")
    key = committee_key(store, catalogue)
    result = ok(store, "user", "add", "li", "--role", "area_officer", "--area", key, "--days", "30")
    assert f"area {key} 测试居委0" in result.stdout
    who = gate.authenticate(token_of(result))
    assert who.area is not None and (who.area.key, who.area.layer) == (key, "committee")


def test_user_add_gives_an_app_an_optional_area(store: str, gate: Gate) -> None:
    scoped = gate.authenticate(token_of(ok(store, "user", "add", "app1", "--role", "app", "--area", WEST)))
    whole = gate.authenticate(token_of(ok(store, "user", "add", "app2", "--role", "app")))
    assert scoped.area is not None and scoped.area.name == "西区" and whole.area is None


REFUSED = {
    "unknown role": (["bob", "--role", "mayor"], "unknown role 'mayor'"),
    "area required": (["bob", "--role", "area_officer"], "needs --area KEY"),
    "area forbidden": (["bob", "--role", "planner", "--area", WEST], "cannot have an area"),
    "area missing": (["bob", "--role", "area_officer", "--area", "DI-wtw3sjq6-0"], "does not exist"),
    "area malformed": (["bob", "--role", "area_officer", "--area", "nowhere"], "is not the key of"),
    "area not an area layer": (["bob", "--role", "area_officer", "--area", "HY-wtw37pyh-0"],
                               "areas come from district, subdistrict, committee"),
    "existing user": (["alice", "--role", "admin"], "user 'alice' exists"),
    "bad name": (["bob smith", "--role", "planner"], "user name 'bob smith'"),
    "days out of range": (["bob", "--role", "planner", "--days", "5000"], "1 to 3650 days"),
}


@pytest.mark.parametrize("case", list(REFUSED))
def test_refused_user_add_exits_1_with_one_line_and_writes_nothing(store: str, case: str) -> None:
    ok(store, "user", "add", "alice", "--role", "planner")
    before = access_snapshot(store)
    args, message = REFUSED[case]
    result = twin(store, "user", "add", *args)
    assert result.exit_code == 1
    assert result.stderr.startswith("error: ") and message in result.stderr
    assert result.stderr.strip().count("\n") == 0 and "Traceback" not in result.output
    assert TOKEN.search(result.output) is None
    assert access_snapshot(store) == before


def test_refused_first_user_add_writes_no_access_data(store: str) -> None:
    result = twin(store, "user", "add", "bob", "--role", "mayor")
    assert result.exit_code == 1 and "unknown role" in result.stderr
    assert not any((access_snapshot(store) or {}).values())
    if not is_pg(store):  # not even an empty access database beside the GeoPackage
        assert not any(Path(store).parent.glob("city.access.db*"))


def test_user_add_on_a_missing_store_says_so(tmp_path: Path, target: str) -> None:
    result = twin(target, "user", "add", "bob", "--role", "planner")
    assert result.exit_code == 1 and "no store here" in result.stderr
    assert not exists(target) and list(tmp_path.iterdir()) == []


@hsettings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(name=st.one_of(st.from_regex(r"[A-Za-z0-9_.@-]{1,70}", fullmatch=True),
                      st.text(st.characters(codec="utf-8"), max_size=70)))
def test_user_names_are_created_exactly_when_valid(store: str, name: str) -> None:
    valid = re.fullmatch(r"[A-Za-z0-9_.@-]{1,64}", name) is not None
    before = access_snapshot(store)
    result = runner.invoke(app, ["user", "add", "--role", "planner", "--store", store, "--", name])
    existing = before is not None and any(row[0] == name for row in before["users"])
    if valid and not existing:
        assert result.exit_code == 0, result.output
        assert name in [r[0] for r in access_snapshot(store)["users"]]
    else:
        assert result.exit_code != 0
        assert access_snapshot(store) == before


# -- twin user list / revoke / token --------------------------------------------------------------------------------

def test_user_list_shows_role_area_created_expiry_and_revoked(store: str) -> None:
    ok(store, "user", "add", "alice", "--role", "planner")
    ok(store, "user", "add", "bob", "--role", "area_officer", "--area", WEST, "--days", "30")
    ok(store, "user", "revoke", "alice")
    live = ok(store, "user", "list").stdout
    rows = [line for line in live.splitlines() if "│" in line]
    assert len(rows) == 1 and "bob" in rows[0] and f"{WEST} 西区" in rows[0] and "area_officer" in rows[0]
    stamps = re.findall(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", rows[0])
    assert len(stamps) == 2 and stamps[1] > stamps[0]  # created, token expires
    every = ok(store, "user", "list", "--revoked").stdout
    alice = next(line for line in every.splitlines() if "alice" in line)
    assert len(re.findall(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", alice)) == 2  # created, revoked; no live token
    assert "planner" in alice


def test_user_list_without_users_says_how_to_add_the_first_admin(store: str) -> None:
    assert "twin user add NAME --role admin" in ok(store, "user", "list").stdout


def test_user_revoke_revokes_the_user_and_every_token(store: str, gate: Gate) -> None:
    first = token_of(ok(store, "user", "add", "alice", "--role", "planner"))
    second = token_of(ok(store, "user", "token", "alice"))
    assert "revoked alice and 2 live tokens" in ok(store, "user", "revoke", "alice").stdout
    for token in (first, second):
        with pytest.raises(AuthenticationError, match="revoked"):
            gate.authenticate(token)
    again = twin(store, "user", "revoke", "alice")
    assert again.exit_code == 1 and "no live user 'alice'" in again.stderr


def test_user_token_issues_a_new_token_that_works_alongside_the_old_one(store: str, gate: Gate) -> None:
    first = token_of(ok(store, "user", "add", "alice", "--role", "planner"))
    result = ok(store, "user", "token", "alice", "--days", "2")
    second = token_of(result)
    assert second != first and "shown only once" in result.stdout
    assert gate.authenticate(first).name == gate.authenticate(second).name == "alice"
    expiry = gate.users.authenticate(second).expires
    assert expiry is not None and expiry in result.stdout


@pytest.mark.parametrize("days", ["0", "-1", "3651", "1000000000000"])
@pytest.mark.parametrize("command", ["add", "token"])
def test_a_token_lifetime_outside_1_to_3650_days_is_refused_and_writes_nothing(store: str, command: str,
                                                                                days: str) -> None:
    ok(store, "user", "add", "alice", "--role", "planner")
    before = access_snapshot(store)
    args = ["add", "bob", "--role", "planner"] if command == "add" else ["token", "alice"]
    result = twin(store, "user", *args, f"--days={days}")
    assert result.exit_code == 1, result.output
    assert f"a token lives 1 to 3650 days, not {days}" in result.stderr and TOKEN.search(result.output) is None
    assert access_snapshot(store) == before


def test_user_token_for_an_unknown_user_writes_nothing(store: str) -> None:
    ok(store, "user", "add", "alice", "--role", "planner")
    before = access_snapshot(store)
    result = twin(store, "user", "token", "nobody")
    assert result.exit_code == 1 and "no live user 'nobody'" in result.stderr
    assert access_snapshot(store) == before


def test_admin_actions_are_in_the_audit_trail_newest_first(store: str) -> None:
    ok(store, "user", "add", "alice", "--role", "planner")
    ok(store, "user", "token", "alice", "--days", "3")
    ok(store, "user", "revoke", "alice")
    lines = ok(store, "audit", "--action", "user", "--json").stdout.splitlines()
    details = [orjson.loads(line)["detail"] for line in lines]
    assert details == ["revoked alice (2 live tokens, 0 sessions)", "new token for alice (3 days)",
                       "added alice (planner)"]


# -- twin audit, and the trail of the command line's writes ---------------------------------------------------------

def _events(store: str, *args: str) -> list[dict[str, object]]:
    return [orjson.loads(line) for line in ok(store, "audit", "--json", *args).stdout.splitlines()]


def test_cli_import_is_audited_as_the_local_operator(store: str, tmp_path: Path) -> None:
    src = committee_file(tmp_path, rows=3)
    ok(store, "import", str(src), "--layer", "committee", "--dry-run")
    ok(store, "import", str(src), "--layer", "committee")
    real, dry = _events(store, "--action", "import")
    for event in (real, dry):
        assert (event["user"], event["role"], event["layer"], event["outcome"], event["count"]) == (
            OPERATOR, "admin", "committee", "ok", 3)
    assert str(real["detail"]).startswith("changeset ") and str(dry["detail"]).startswith("dry run of ")


def test_refused_and_failed_cli_imports_are_audited_with_the_error(store: str, tmp_path: Path) -> None:
    empty = tmp_path / "empty.geojson"
    empty.write_text('{"type": "FeatureCollection", "features": []}', encoding="utf-8")
    assert twin(store, "import", str(empty), "--layer", "hydrant").exit_code == 1
    assert twin(store, "import", str(committee_file(tmp_path)), "--layer", "no_such_layer").exit_code == 1
    failed, rejected = _events(store, "--action", "import")
    assert (rejected["outcome"], rejected["layer"], rejected["user"]) == ("rejected", "hydrant", OPERATOR)
    assert "contains no features" in str(rejected["detail"]) and rejected["count"] is None
    assert (failed["outcome"], failed["layer"]) == ("failed", "no_such_layer")
    assert "unknown layer 'no_such_layer'" in str(failed["detail"])


def test_cli_export_is_audited_with_its_count(store: str, tmp_path: Path) -> None:
    ok(store, "export", "hydrant", "--format", "csv", "--out", str(tmp_path / "h.csv"))
    (event,) = _events(store, "--action", "export")
    assert (event["user"], event["layer"], event["count"], event["outcome"]) == (OPERATOR, "hydrant", 200, "ok")


def test_audit_filters_by_outcome_layer_and_time(store: str, tmp_path: Path) -> None:
    empty = tmp_path / "empty.geojson"
    empty.write_text('{"type": "FeatureCollection", "features": []}', encoding="utf-8")
    twin(store, "import", str(empty), "--layer", "hydrant")
    ok(store, "import", str(committee_file(tmp_path)), "--layer", "committee")
    ok(store, "user", "add", "alice", "--role", "planner")
    assert [e["outcome"] for e in _events(store, "--outcome", "rejected")] == ["rejected"]
    assert [e["layer"] for e in _events(store, "--layer", "committee")] == ["committee"]
    assert len(_events(store, "--since", "1h")) == 3 and _events(store, "--until", "2000-01-01") == []
    assert len(_events(store, "--since", "2000-01-01T08:00:00+08:00", "--limit", "2")) == 2
    assert [e["user"] for e in _events(store, "--user", OPERATOR)] == [OPERATOR] * 3  # user add too


def test_audit_table_shows_the_events(store: str, tmp_path: Path) -> None:
    ok(store, "import", str(committee_file(tmp_path)), "--layer", "committee")
    out = ok(store, "audit").stdout
    row = next(line for line in out.splitlines() if "committee" in line)
    assert OPERATOR in row and "import" in row and " ok " in row and "changeset" in row
    assert "1 event, newest first" in out


@pytest.mark.parametrize(("args", "message"), [
    (["--since", "yesterday"], "give an ISO 8601 time"),
    (["--outcome", "maybe"], "unknown outcome 'maybe'"),
    (["--action", "dance"], "unknown audit action 'dance'"),
    (["--limit", "0"], "limit must be 1 to 10000"),
])
def test_audit_refuses_bad_filters_in_one_line(store: str, args: list[str], message: str) -> None:
    result = twin(store, "audit", *args)
    assert result.exit_code == 1 and message in result.stderr and result.stderr.strip().count("\n") == 0


# -- twin up's sign-in link -----------------------------------------------------------------------------------------

def _settings(store: str) -> TwinSettings:
    return TwinSettings(store=store, layers=DEFAULT_LAYERS_DIR)


def test_up_login_creates_twin_up_once_then_issues_a_new_token_each_start(
        store: str, gate: Gate, capsys: pytest.CaptureFixture[str]) -> None:
    tokens, codes = [], []
    for _ in range(2):
        up_login(_settings(store), "0.0.0.0", 8123)
        out = capsys.readouterr().out
        tokens += TOKEN.findall(out)
        codes += re.findall(r"http://127\.0\.0\.1:8123/login\?code=([\w-]+)&next=/map", out)
        assert "twin user add NAME --role ROLE" in out
        assert "login?token=" not in out  # the link carries a one-time code, never the token
    assert len(set(tokens)) == 2 and len(set(codes)) == 2
    for token in tokens:
        who = gate.authenticate(token)
        assert (who.name, who.role.name) == (UP_USER, "admin")
        assert gate.users.authenticate(token).expires < stamp(now() + timedelta(days=1, minutes=1))
    for code in codes:
        assert gate.sign_in_with_code(code)[0].name == UP_USER
        with pytest.raises(AuthenticationError, match="already used"):
            gate.sign_in_with_code(code)
    assert [u.name for u in gate.list_users(include_revoked=True)] == [UP_USER]


def test_up_login_respects_a_revoked_twin_up(store: str, capsys: pytest.CaptureFixture[str]) -> None:
    up_login(_settings(store), "127.0.0.1", 8000)
    ok(store, "user", "revoke", UP_USER)
    capsys.readouterr()
    up_login(_settings(store), "127.0.0.1", 8000)
    out = capsys.readouterr().out
    assert "was revoked" in out and TOKEN.search(out) is None


@pytest.mark.parametrize("name", ["bob\n", "z\n"])
def test_a_user_name_with_a_trailing_newline_is_refused(store: str, name: str) -> None:
    before = access_snapshot(store)
    result = runner.invoke(app, ["user", "add", "--role", "planner", "--store", store, "--", name])
    assert result.exit_code != 0 and "user name" in result.output
    assert access_snapshot(store) == before
