"""psycopg 3 through pgpulse in transaction mode with fewer servers than
clients (the harness gives the proxy a pool of 2; these tests use 5-6
concurrent connections): plain queries, named server-side prepared
statements, transactions, COPY both ways, protocol cancel, an error in the
middle of a pipeline, LISTEN/NOTIFY and session variables.

Run through `cargo test -p pgpulse-proxy --test client_libraries`, which
starts PostgreSQL and the proxy and sets PGPULSE_URL / PGPULSE_DIRECT_URL.
"""

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import psycopg
import pytest
from psycopg import errors, sql

CLIENTS = 6


def run_clients(fn, n=CLIENTS):
    """Runs fn(i) for i in range(n) on n threads at once; returns the results
    and re-raises the first failure."""
    with ThreadPoolExecutor(max_workers=n) as pool:
        futures = [pool.submit(fn, i) for i in range(n)]
        return [f.result(timeout=60) for f in futures]


def test_plain_queries(proxy_url):
    def client(i):
        with psycopg.connect(proxy_url, autocommit=True, prepare_threshold=None) as conn:
            for j in range(10):
                row = conn.execute("SELECT %s::int * 100 + %s::int", (i, j)).fetchone()
                assert row == (i * 100 + j,)
            # Client-side binding: the simple query protocol, two statements.
            cur = psycopg.ClientCursor(conn)
            cur.execute("SELECT %s::text; SELECT %s::int", (f"client {i}", i))
            assert cur.fetchone() == (f"client {i}",)
            assert cur.nextset()
            assert cur.fetchone() == (i,)
            rows = conn.execute("SELECT g FROM generate_series(1, 1000) g").fetchall()
            assert len(rows) == 1000 and rows[-1] == (1000,)

    run_clients(client)


def test_named_prepared_statements_move_between_servers(proxy_url):
    def client(i):
        pids = set()
        with psycopg.connect(proxy_url, autocommit=True) as conn:
            for j in range(40):
                if j % 2 == 0:
                    row = conn.execute(
                        "SELECT %s::int + %s::int, pg_backend_pid()", (i, j), prepare=True
                    ).fetchone()
                else:
                    with conn.transaction():
                        row = conn.execute(
                            "SELECT %s::int + %s::int, pg_backend_pid()", (i, j), prepare=True
                        ).fetchone()
                        text = f"client {i} round {j}"
                        echo = conn.execute("SELECT %s::text", (text,), prepare=True).fetchone()
                        assert echo == (text,)
                assert row[0] == i + j
                pids.add(row[1])
                time.sleep(0.002)  # let the other clients take the server
        return pids

    results = run_clients(client)
    every = set().union(*results)
    assert len(every) <= 2, f"pool of 2 but saw backends {every}"
    assert any(len(p) > 1 for p in results), "no client changed server: proves nothing"


def test_prepare_threshold_and_deallocate(proxy_url):
    """prepare_threshold=0 prepares every statement; prepared_max=2 makes
    psycopg DEALLOCATE the oldest ones while others are still in use."""

    def client(i):
        with psycopg.connect(proxy_url, autocommit=True, prepare_threshold=0) as conn:
            conn.prepared_max = 2
            for j in range(30):
                k = j % 5
                query = sql.SQL("SELECT %s::int + {}").format(sql.Literal(k))
                assert conn.execute(query, (i,)).fetchone() == (i + k,)

    run_clients(client)


def test_commit_and_rollback(proxy_url, direct, name):
    table = sql.Identifier(name)
    direct.execute(sql.SQL("CREATE TABLE {} (client int, n int, PRIMARY KEY (client, n))").format(table))
    insert = sql.SQL("INSERT INTO {} VALUES (%s, %s)").format(table)

    def client(i):
        with psycopg.connect(proxy_url, autocommit=True) as conn:
            for n in range(0, 20):
                if n % 3 == 0:
                    with conn.transaction():
                        conn.execute(insert, (i, n))
                elif n % 3 == 1:
                    with conn.transaction():
                        conn.execute(insert, (i, n))
                        raise psycopg.Rollback()
                else:
                    # A savepoint rolled back inside a committed transaction.
                    with conn.transaction():
                        conn.execute(insert, (i, 1000 + n))
                        with pytest.raises(errors.DivisionByZero):
                            with conn.transaction():
                                conn.execute(insert, (i, n))
                                conn.execute("SELECT 1/0")
        # Without autocommit psycopg opens the transaction itself.
        with psycopg.connect(proxy_url) as conn:
            conn.execute(insert, (i, 500))
            conn.rollback()
            conn.execute(insert, (i, 501))
            conn.commit()
            conn.execute(insert, (i, 502))
            with pytest.raises(errors.UniqueViolation):
                conn.execute(insert, (i, 501))
            with pytest.raises(errors.InFailedSqlTransaction):
                conn.execute("SELECT 1")
            conn.rollback()
            assert conn.execute("SELECT 7").fetchone() == (7,)

    run_clients(client, 5)
    got = direct.execute(sql.SQL("SELECT client, n FROM {} ORDER BY client, n").format(table)).fetchall()
    want = sorted(
        [(i, n) for i in range(5) for n in range(20) if n % 3 == 0]
        + [(i, 1000 + n) for i in range(5) for n in range(20) if n % 3 == 2]
        + [(i, 501) for i in range(5)]
    )
    assert got == want


COPY_ROWS = 5000


def test_copy_in_and_out(proxy_url, direct, name):
    table = sql.Identifier(name)
    direct.execute(sql.SQL("CREATE TABLE {} (client int, n int, label text)").format(table))

    def client(i):
        with psycopg.connect(proxy_url, autocommit=True) as conn:
            with conn.cursor() as cur:
                with cur.copy(sql.SQL("COPY {} FROM STDIN").format(table)) as copy:
                    for n in range(COPY_ROWS):
                        copy.write_row((i, n, f"row {n} of client {i}"))
                assert cur.rowcount == COPY_ROWS
                assert conn.execute(
                    sql.SQL("SELECT count(*) FROM {} WHERE client = %s").format(table), (i,)
                ).fetchone() == (COPY_ROWS,)

                query = sql.SQL(
                    "COPY (SELECT n, label FROM {} WHERE client = {} ORDER BY n) TO STDOUT"
                ).format(table, sql.Literal(i))
                with cur.copy(query) as copy:
                    copy.set_types(["int4", "text"])
                    rows = list(copy.rows())
                assert len(rows) == COPY_ROWS
                assert rows[0] == (0, f"row 0 of client {i}")
                assert rows[-1] == (COPY_ROWS - 1, f"row {COPY_ROWS - 1} of client {i}")

                binary = sql.SQL(
                    "COPY (SELECT n FROM {} WHERE client = {} ORDER BY n) TO STDOUT (FORMAT BINARY)"
                ).format(table, sql.Literal(i))
                with cur.copy(binary) as copy:
                    copy.set_types(["int4"])
                    ns = [r[0] for r in copy.rows()]
                assert ns == list(range(COPY_ROWS))
                assert conn.execute("SELECT 'after copy'").fetchone() == ("after copy",)

    run_clients(client, 5)
    total = direct.execute(sql.SQL("SELECT count(*) FROM {}").format(table)).fetchone()
    assert total == (5 * COPY_ROWS,)


@pytest.mark.parametrize("how", ["cancel", "cancel_safe"])
def test_cancel_pg_sleep(proxy_url, how):
    stop = threading.Event()

    def busy(_):
        # Other clients keep the second server busy meanwhile. One of them
        # may get the cancelled server right after the cancel and see its
        # own query cancelled: a known proxy bug proven by
        # cancel_never_reaches_another_client in tokio_postgres.rs, so it is
        # not asserted here.
        with psycopg.connect(proxy_url, autocommit=True) as conn:
            while not stop.is_set():
                try:
                    conn.execute("SELECT pg_sleep(0.05)")
                except errors.QueryCanceled:
                    pass

    with ThreadPoolExecutor(max_workers=5) as pool:
        others = [pool.submit(busy, i) for i in range(4)]
        with psycopg.connect(proxy_url, autocommit=True) as conn:
            sent = {}

            def cancel():
                time.sleep(0.5)
                sent["at"] = time.monotonic()
                getattr(conn, how)()

            canceller = threading.Thread(target=cancel)
            canceller.start()
            with pytest.raises(errors.QueryCanceled):
                conn.execute("SELECT pg_sleep(10)")
            took = time.monotonic() - sent["at"]
            canceller.join()
            assert took < 1.0, f"cancel took {took:.2f}s"
            assert conn.execute("SELECT 'alive'").fetchone() == ("alive",)
        stop.set()
        for f in others:
            f.result(timeout=30)


def pipeline_outcomes(url):
    """Runs pipelines with a failing statement in the middle and returns what
    each statement gave, so the proxy can be compared with PostgreSQL."""
    out = []
    with psycopg.connect(url, autocommit=True) as conn:
        # A Sync after each statement: only the failing one fails.
        with conn.pipeline() as p:
            c1 = conn.execute("SELECT 1")
            p.sync()
            c2 = conn.execute("SELECT 100 / %s::int", (0,))
            try:
                p.sync()
                out.append("no error")
            except errors.DivisionByZero:
                out.append("division_by_zero")
            c3 = conn.execute("SELECT %s::int", (3,))
            p.sync()
            out += [c1.fetchone(), c3.fetchone()]
            with pytest.raises(psycopg.Error):
                c2.fetchone()
        # No Sync in between: PostgreSQL skips the rest of the batch. psycopg
        # raises as soon as it reads the error, which may be before the
        # third statement is queued.
        a = c = None
        with pytest.raises(errors.DivisionByZero):
            with conn.pipeline():
                a = conn.execute("SELECT 1")
                conn.execute("SELECT 1/0")
                c = conn.execute("SELECT 3")
        out.append(a.fetchone())
        if c is not None:
            with pytest.raises(psycopg.ProgrammingError, match="no result"):
                c.fetchone()
        assert conn.execute("SELECT 'after'").fetchone() == ("after",)
    return out


def test_error_in_the_middle_of_a_pipeline(proxy_url, direct_url):
    want = pipeline_outcomes(direct_url)
    assert want == ["division_by_zero", (1,), (3,), (1,)]
    results = run_clients(lambda _: [pipeline_outcomes(proxy_url) for _ in range(10)], 5)
    for per_client in results:
        for got in per_client:
            assert got == want


def test_listen_notify(proxy_url, name):
    with psycopg.connect(proxy_url, autocommit=True) as listener:
        listener.execute(sql.SQL("LISTEN {}").format(sql.Identifier(name)))

        def notifier(i):
            with psycopg.connect(proxy_url, autocommit=True) as conn:
                for j in range(5):
                    conn.execute("SELECT pg_notify(%s, %s)", (name, f"{i}:{j}"))
                with conn.transaction():
                    conn.execute("SELECT pg_notify(%s, 'rolled back')", (name,))
                    raise psycopg.Rollback()

        run_clients(notifier, 4)
        got = set()
        for n in listener.notifies(timeout=5, stop_after=20):
            assert n.channel == name
            assert n.payload != "rolled back", "a rolled-back NOTIFY was delivered"
            got.add(n.payload)
        assert got == {f"{i}:{j}" for i in range(4) for j in range(5)}
        assert listener.execute("SELECT 'still here'").fetchone() == ("still here",)


def test_session_variables_follow_the_client(proxy_url, direct, name):
    alpha, beta = name + "_alpha", name + "_beta"
    for schema in (alpha, beta):
        direct.execute(
            sql.SQL("CREATE SCHEMA {s}; CREATE TABLE {s}.whoami AS SELECT {v}::text AS v").format(
                s=sql.Identifier(schema), v=sql.Literal(schema)
            )
        )

    def client(i):
        mine = {0: alpha, 1: beta, 2: alpha, 3: beta}.get(i)
        app = f"py_app_{i}"
        pids = set()
        with psycopg.connect(proxy_url, autocommit=True) as conn:
            default_path = conn.execute("SHOW search_path").fetchone()[0]
            default_app = conn.execute("SHOW application_name").fetchone()[0]
            if mine:
                conn.execute(sql.SQL("SET search_path = {}, public").format(sql.Identifier(mine)))
                conn.execute(sql.SQL("SET application_name = {}").format(sql.Literal(app)))
            with conn.transaction():
                conn.execute("SET application_name = 'rolled_back'")
                raise psycopg.Rollback()
            for _ in range(30):
                path = conn.execute("SHOW search_path").fetchone()[0]
                got_app = conn.execute("SHOW application_name").fetchone()[0]
                pids.add(conn.execute("SELECT pg_backend_pid()").fetchone()[0])
                if mine:
                    assert path == f"{mine}, public", f"client {i}"
                    assert got_app == app, f"client {i}"
                    assert conn.execute("SELECT v FROM whoami").fetchone() == (mine,)
                else:
                    assert path == default_path, f"client {i} got a leaked search_path"
                    assert got_app == default_app, f"client {i} got a leaked application_name"
                    with pytest.raises(errors.UndefinedTable):
                        conn.execute("SELECT v FROM whoami")
                time.sleep(0.002)
        return len(pids)

    moved = run_clients(client)
    assert any(m > 1 for m in moved), "no client changed server: proves nothing"
