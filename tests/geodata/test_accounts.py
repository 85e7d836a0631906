"""Accounts (users, failed sign-ins, audit lines, the session key) on both backends: whatever the data
directory's files do, the PostgreSQL tables do, and several instances on one location agree at once."""

from __future__ import annotations

import json
import threading

import pytest

from geodata.errors import Conflict, DamagedStore, NotFound, ServiceUnavailable
from geodata.store.accounts import FileAccounts, PostgresAccounts, open_accounts
from geodata.store.postgis import PostGISStore
from tests.postgres import opened_at

WINDOW, LIMIT = 900, 5


@pytest.fixture
def instances(location):
    """Opens another instance's accounts on the same location, closed after the test."""
    yield from opened_at(location, open_accounts)


@pytest.fixture
def accounts(instances):
    return instances()


def user(name: str, **fields) -> dict:
    return {"name": name, "role": "editor", "token_sha256": f"digest-of-{name}", "password_hash": None,
            "created": "2026-12-02T01:00:00+00:00", "session_nonce": f"nonce-of-{name}", "scopes": "[]", **fields}


def reserve(accounts, name="li", address="10.0.0.1", now=1_000_000.0, scope="password"):
    return accounts.reserve_try(scope, name, address, now=now, window_s=WINDOW, limit=LIMIT)


def test_open_accounts_picks_the_backend(location, accounts):
    assert isinstance(accounts, PostgresAccounts if location.startswith("postgresql://") else FileAccounts)


# --- users ----------------------------------------------------------------------

def test_users_are_added_found_changed_and_removed(accounts):
    assert accounts.users() == {} and accounts.user("li") is None
    accounts.add_user(user("li", password_hash="scrypt:x"))
    accounts.add_user(user("wang", role="viewer"))
    assert accounts.user("li") == user("li", password_hash="scrypt:x")
    assert sorted(accounts.users()) == ["li", "wang"]
    assert accounts.user_by_token("digest-of-wang")["name"] == "wang"
    assert accounts.user_by_token("digest-of-nobody") is None
    with pytest.raises(Conflict):
        accounts.add_user(user("li", role="admin"))
    assert accounts.user("li")["role"] == "editor"  # the first record stands

    changed = accounts.change_user("li", {"token_sha256": "new", "session_nonce": "n2"})
    assert changed == accounts.user("li") == user("li", password_hash="scrypt:x", token_sha256="new",
                                                   session_nonce="n2")
    assert accounts.user_by_token("digest-of-li") is None
    # only_empty: a nonce already set is kept, an empty one is made
    assert accounts.change_user("li", {"session_nonce": "n3"}, only_empty=True)["session_nonce"] == "n2"
    accounts.change_user("wang", {"session_nonce": ""})
    assert accounts.change_user("wang", {"session_nonce": "n4"}, only_empty=True)["session_nonce"] == "n4"

    accounts.remove_user("li")
    assert accounts.user("li") is None and list(accounts.users()) == ["wang"]
    for call in (lambda: accounts.remove_user("li"), lambda: accounts.change_user("li", {"role": "viewer"})):
        with pytest.raises(NotFound):
            call()


def test_another_instance_sees_each_change_at_once(instances):
    one, two = instances(), instances()
    one.add_user(user("li"))
    assert two.user("li") == user("li")
    two.change_user("li", {"session_nonce": "after-logout"})  # a logout through the other instance
    assert one.user("li")["session_nonce"] == "after-logout"
    two.remove_user("li")
    assert one.user("li") is None and one.users() == {}


def test_a_name_with_a_nul_is_nobody(accounts):
    accounts.add_user(user("li"))
    assert accounts.user("li\x00") is None
    with pytest.raises(NotFound):
        accounts.remove_user("li\x00")
    assert reserve(accounts, name="li\x00", address="\x00") is None  # counted, not an error


# --- failed sign-ins --------------------------------------------------------------

def test_failures_through_two_instances_count_together(instances):
    one, two = instances(), instances()
    for i in range(LIMIT):
        assert reserve((one, two)[i % 2], now=1_000_000.0 + i) is None
    assert reserve(one, now=1_000_010.0) == WINDOW - 10  # until the oldest leaves the window
    assert reserve(two, address="10.9.9.9", now=1_000_010.0) == WINDOW - 10  # the account, from anywhere
    assert reserve(two, name="other", now=1_000_010.0) == WINDOW - 10  # the address, for any account
    assert reserve(one, name="other", address="10.9.9.9", now=1_000_010.0) is None
    assert reserve(one, scope="token", name="", now=1_000_010.0) is None  # each scope counts apart
    assert reserve(two, now=1_000_000.0 + WINDOW) is None  # the oldest has left: one more try


def test_clearing_forgets_one_address_for_one_name(instances):
    one, two = instances(), instances()
    for name in ("x1", "x2", "li", "li"):
        reserve(one, name=name)
    two.clear_tries("password", "li", "10.0.0.1")  # li signed in through the other instance
    assert [reserve(one, name=f"x{i}") for i in (3, 4, 5)] == [None] * 3  # li's 2 gone: x1, x2 and 3 more
    assert reserve(one, name="x6") is not None


def test_tries_sent_at_once_through_two_instances_get_exactly_the_limit(instances):
    pair = [instances(), instances()]
    start, waits = threading.Barrier(12), []

    def attempt(i: int) -> None:
        start.wait()
        waits.append(reserve(pair[i % 2]))

    threads = [threading.Thread(target=attempt, args=(i,)) for i in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(waits, key=lambda w: w is not None) == [None] * LIMIT + [WINDOW] * 7


# --- audit and the session key ------------------------------------------------------

def test_audit_lines_of_every_instance_are_read_in_one_place(instances):
    one, two = instances(), instances()
    assert one.audit() == []
    lines = [{"time": f"2026-12-02T01:00:0{i}+00:00", "user": "李", "action": "upload", "target": "grids",
              "outcome": "stored", "status": 201, "note": "a\x00b \u2028 \"quoted\""} for i in range(4)]
    for i, line in enumerate(lines):
        (one, two)[i % 2].append_audit(line)
    for accounts in (one, two, instances()):
        read = accounts.audit()
        assert read == lines
        assert [list(e) for e in read] == [list(e) for e in lines]  # each line keeps its key order


def test_the_session_key_is_made_once_and_shared(instances):
    one, two = instances(), instances()
    key = one.secret()
    assert len(key) == 64 and int(key, 16) >= 0
    assert two.secret() == key and instances().secret() == key


# --- PostgreSQL: a data directory's files come in once --------------------------------

def files_of_an_old_instance(data_dir) -> FileAccounts:
    old = FileAccounts(data_dir)
    old.add_user(user("li"))
    old.add_user(user("wang", role="admin"))
    for i in range(3):
        old.append_audit({"time": f"2026-11-30T10:00:0{i}+00:00", "action": "upload", "n": i})
    old.secret()
    return old


def test_a_data_directorys_users_audit_and_key_are_imported_once(postgis_url, tmp_path):
    old = files_of_an_old_instance(tmp_path / "a")
    users, audit, key = old.users(), old.audit(), old.secret()
    accounts = open_accounts(postgis_url)
    try:
        lines = accounts.import_files(tmp_path / "a")
        assert any("2 users imported" in line for line in lines) and any("3 audit lines" in line for line in lines)
        assert accounts.users() == users and accounts.audit() == audit and accounts.secret() == key
        assert not (tmp_path / "a" / "users.json").exists() and (tmp_path / "a" / "users.json.migrated").exists()
        assert (tmp_path / "a" / "audit.log.migrated").exists()
        assert accounts.import_files(tmp_path / "a") == []  # nothing left to import

        # a file put back (or a start killed before the rename) is not imported twice
        (tmp_path / "a" / "audit.log.migrated").rename(tmp_path / "a" / "audit.log")
        assert any("imported before" in line for line in accounts.import_files(tmp_path / "a"))
        assert accounts.audit() == audit

        # another machine's directory: its new users come in, a name the database has keeps its record
        other = FileAccounts(tmp_path / "b")
        other.add_user(user("li", role="viewer", token_sha256="b's"))
        other.add_user(user("zhao"))
        other.secret()
        lines = accounts.import_files(tmp_path / "b")
        assert any("already had li" in line for line in lines)
        assert accounts.user("li") == users["li"] and accounts.user("zhao") == user("zhao")
        assert accounts.secret() == key  # the first key stays: sessions signed with it stay valid
    finally:
        accounts.close()


def test_a_damaged_users_file_stops_the_import_and_imports_nothing(postgis_url, tmp_path):
    files_of_an_old_instance(tmp_path / "a")
    (tmp_path / "a" / "users.json").write_text('{"users": [{"name": "li"')  # cut short
    accounts = open_accounts(postgis_url)
    try:
        with pytest.raises(DamagedStore) as caught:
            accounts.import_files(tmp_path / "a")
        assert "users.json" in caught.value.message and "nothing was imported" in caught.value.message
        assert accounts.users() == {} and accounts.audit() == []  # one transaction: the audit log neither
        assert (tmp_path / "a" / "users.json").exists() and (tmp_path / "a" / "audit.log").exists()
    finally:
        accounts.close()


def test_the_embedded_backend_imports_nothing(tmp_path):
    files_of_an_old_instance(tmp_path / "a")
    assert FileAccounts(tmp_path / "a").import_files(tmp_path / "a") == []
    assert (tmp_path / "a" / "users.json").exists()


def test_a_stopped_database_is_service_unavailable_and_comes_back(postgis_url, postgres_cluster):
    accounts = PostgresAccounts(PostGISStore(postgis_url, timeout=2), owned=True)
    try:
        accounts.add_user(user("li"))
        postgres_cluster.stop()
        try:
            for call in (lambda: accounts.user("li"), lambda: reserve(accounts), lambda: accounts.audit(),
                         lambda: accounts.append_audit({"time": "t"}),
                         lambda: accounts.change_user("li", {"session_nonce": "x"})):
                with pytest.raises(ServiceUnavailable) as caught:
                    call()
                assert caught.value.status == 503 and "cannot be reached" in caught.value.message
        finally:
            postgres_cluster.start()
        assert accounts.user("li") == user("li")  # the same object answers again, nothing half-changed
        assert reserve(accounts) is None
    finally:
        accounts.close()


def test_the_tables_are_the_ones_named(postgis_url):
    import psycopg

    accounts = open_accounts(postgis_url)
    try:
        accounts.secret()
    finally:
        accounts.close()
    with psycopg.connect(postgis_url) as db:
        tables = {r[0] for r in db.execute("SELECT table_name FROM information_schema.tables "
                                           "WHERE table_name LIKE 'gridmap_%'")}
        assert tables == {"gridmap_users", "gridmap_signin_failures", "gridmap_audit", "gridmap_settings"}
        assert json.loads(json.dumps(db.execute("SELECT name FROM gridmap_settings").fetchall())) == [["secret_key"]]
