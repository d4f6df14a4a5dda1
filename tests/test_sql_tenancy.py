"""A tenant key on the SQL port reads only its own tenant's rows, whatever SQL it writes: its
statements run over its tenant's views, and anything that would reach another table, database,
system table or table function is refused with Code 497 before it runs (or fails as unknown)."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import clickhouse_connect
import grpc
import pytest
from clickhouse_connect.driver.exceptions import DatabaseError
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from analytics.sql.gate import Refused
from analytics.sql.tenant_scope import TenantScope
from analytics.sql.tenant_space import EXPOSED, INTERNAL, PARAMETERIZED, TenantSpaces, tenant_database
from tests.conftest import module_server, settle
from tests.otlp import EXPORT_METHOD
from tests.sql_http import Answer, bearer, post
from tests.workflows import hexid, request, span
from warehouse import Warehouse, migrate
from wrm.server import WrmServer

ADMIN = "x" * 40
A, B = "acme", "Globex.eu"  # B's id has capitals and a dot: its database name is made from it
SECRET = "globex-secret"  # in every span name of B's, so a leak of B's rows shows in a body
VERSIONS = {A: ["1", "2", "2"], B: ["1", "1", "1", "2"]}  # runs per workflow version


def ingest(server: WrmServer, key: str, tenant: str, spans: list[Span]) -> None:
    """Send spans as OTLP/gRPC with `key` in the metadata, as an instrumented app does."""
    data = request(spans, wrm__tenant__id=tenant).SerializeToString()
    with grpc.insecure_channel(server.otlp_address) as channel:
        call: grpc.UnaryUnaryMultiCallable[bytes, ExportTraceServiceResponse] = channel.unary_unary(
            EXPORT_METHOD, response_deserializer=ExportTraceServiceResponse.FromString
        )
        call(data, timeout=30, metadata=(("authorization", f"Bearer {key}"),))


@pytest.fixture(scope="module")
def server(engine_dir: Path) -> Iterator[WrmServer]:
    """Auth required; tenants A and B each sent their runs with their own ingest key."""
    with module_server(engine_dir, auth="required", admin_key=ADMIN) as srv:
        for tenant, versions in VERSIONS.items():
            label = "acme" if tenant == A else SECRET
            key = srv.create_key(tenant, "ingest", f"{label}-ingest")
            runs: list[Span] = []  # one request per tenant: fewer flushes, fewer assembly cycles
            for i, version in enumerate(versions):
                trace = f"{label}-run-{i}"
                runs += [
                    span(trace, f"{label}-root", wrm__workflow__name="checkout",
                         wrm__workflow__version=version),
                    span(trace, f"{label}-step", parent=f"{label}-root", wrm__step__type="llm"),
                ]  # fmt: skip
            ingest(srv, key, tenant, runs)
        settle(srv)
        got = post(
            srv,
            "SELECT tenant_id, count() FROM runs GROUP BY tenant_id ORDER BY tenant_id",
            headers=bearer(ADMIN),
        )
        assert got.body == f"{B}\t4\n{A}\t3\n", got  # the set-up itself: both tenants' runs are there
        yield srv  # module_server drops the tenant databases with the test's own


@pytest.fixture(scope="module")
def key_a(server: WrmServer) -> str:
    return server.create_key(A, "viewer", "a-viewer")


def db(server: WrmServer) -> str:
    assert server.warehouse is not None
    return server.warehouse.database


def as_a(server: WrmServer, key: str, sql: str, database: str = "", readonly: str = "") -> Answer:
    """`sql` sent with `key`; {db}, {a_db}, {b_db}: the warehouse's, A's and B's databases."""
    names = {"db": db(server), "a_db": tenant_database(db(server), A), "b_db": tenant_database(db(server), B)}
    params = {k: v for k, v in (("database", database), ("readonly", readonly)) if v}
    return post(server, sql.format(**names), 60, bearer(key), **params)


def only_a(answer: Answer, what: str) -> None:
    assert answer.status == 200, f"{what}: {answer}"
    assert "globex" not in answer.body.lower(), f"{what} returned a row of tenant B: {answer.body[:300]}"


def refused(answer: Answer, what: str, code: str = "497") -> None:
    assert (answer.code, answer.status) == (code, 403), f"{what}: {answer}"
    assert SECRET not in answer.body, f"{what} leaked a value of B's: {answer.body}"
    if code == "497":
        assert "(ACCESS_DENIED)" in answer.body and "runs, " in answer.body, (
            answer.body
        )  # says what it may read


OWN = {  # statements a tenant key runs, answered from its own rows only: (sql, expected body)
    "spans": ("SELECT tenant_id, count() FROM spans GROUP BY tenant_id", f"{A}\t6\n"),
    "runs": ("SELECT DISTINCT tenant_id, workflow_name FROM runs", f"{A}\tcheckout\n"),
    "steps": ("SELECT count(), any(tenant_id) FROM steps", f"3\t{A}\n"),
    "join": (
        "SELECT count() FROM runs AS r INNER JOIN steps AS s ON s.run_id = r.run_id",
        "3\n",
    ),
    "IN subquery": ("SELECT count() FROM spans WHERE trace_id IN (SELECT trace_id FROM runs)", "6\n"),
    "scalar subquery": (
        "SELECT (SELECT count() FROM runs_store FINAL), (SELECT count() FROM spans)",
        "3\t6\n",
    ),
    "CTE": ("WITH r AS (SELECT run_id FROM runs) SELECT count() FROM r", "3\n"),
    "UNION ALL": (
        "SELECT count() FROM (SELECT run_id FROM runs UNION ALL SELECT run_id FROM runs_listing)",
        "6\n",
    ),
    "ARRAY JOIN": ("SELECT count() FROM runs ARRAY JOIN trace_ids AS t", "3\n"),
    "unqualified base-table names are the views": (
        "SELECT (SELECT count() FROM runs_by_time), (SELECT uniqExact(tenant_id) FROM runs_daily_store), "
        "(SELECT count() FROM span_facts FINAL)",
        "3\t1\t6\n",
    ),
    "qualified with its own database": ("SELECT count() FROM {a_db}.runs", "3\n"),
    "system.one and numbers": ("SELECT count() FROM system.one AS o, numbers(3) AS n", "3\n"),
    "SHOW TABLES": (
        "SHOW TABLES LIKE 'runs%'",
        "runs\nruns_by_time\nruns_daily_store\nruns_listing\nruns_store\n",
    ),
    "DESCRIBE": ("DESCRIBE TABLE runs", None),
    "EXISTS": ("EXISTS TABLE runs", "1\n"),
    "effectiveness_window": (
        "SELECT tenant_id, sum(runs) FROM effectiveness_window(since = today() - 7, until = today() + 1, "
        "by_day = 0) GROUP BY tenant_id",
        f"{A}\t3\n",
    ),
    "version_comparison, tenant_id given as B's": (
        "SELECT baseline, candidate FROM version_comparison(tenant_id = 'Globex.eu', workflow = 'checkout', "
        "environment = '', baseline_version = '1', candidate_version = '2', baseline_until = '2149-06-06', "
        "candidate_since = '1970-01-01') WHERE indicator = 'runs_per_day'",
        "1\t2\n",
    ),
    "effectiveness": ("SELECT DISTINCT tenant_id FROM effectiveness", f"{A}\n"),
}


@pytest.mark.parametrize("name", list(OWN))
def test_a_tenant_key_reads_its_own_rows(server: WrmServer, key_a: str, name: str) -> None:
    sql, expected = OWN[name]
    answer = as_a(server, key_a, sql)
    only_a(answer, name)
    if expected is not None:
        assert answer.body == expected, f"{name}: {answer.body}"


REFUSED = {  # statements that would reach beyond the tenant's views
    "base table qualified": "SELECT count() FROM {db}.runs_store",
    "base view qualified": "SELECT count() FROM {db}.span_facts",
    "runs_by_time qualified": "SELECT count() FROM {db}.runs_by_time",
    "runs_daily_store qualified": "SELECT count() FROM {db}.runs_daily_store",
    "another tenant's database": "SELECT count() FROM {b_db}.runs",
    "join with a base table": "SELECT count() FROM runs AS r INNER JOIN {db}.steps_store AS s USING (run_id)",
    "IN subquery, base table": "SELECT count() FROM runs WHERE run_id IN (SELECT run_id FROM {db}.runs)",
    "IN a table by name": "SELECT count() FROM runs WHERE (tenant_id, run_id) IN {db}.trace_runs",
    "GLOBAL IN": "SELECT count() FROM runs WHERE run_id GLOBAL IN (SELECT run_id FROM {db}.runs_store)",
    "scalar subquery": "SELECT (SELECT count() FROM {db}.spans)",
    "scalar subquery whose error would carry a value": (
        "SELECT CAST((SELECT any(name) FROM {db}.spans WHERE tenant_id = 'Globex.eu') AS UInt8)"
    ),
    "EXISTS subquery": "SELECT 1 WHERE EXISTS (SELECT 1 FROM {db}.spans WHERE tenant_id = 'Globex.eu')",
    "CTE": "WITH r AS (SELECT * FROM {db}.runs) SELECT count() FROM r",
    "UNION ALL with another database": "SELECT run_id FROM runs UNION ALL SELECT run_id FROM {db}.runs_store",
    "INTERSECT": "SELECT run_id FROM runs INTERSECT SELECT run_id FROM {db}.runs_store",
    "merge()": "SELECT count() FROM merge('{db}', '^spans$')",
    "view()": "SELECT count() FROM view(SELECT * FROM {db}.spans)",
    "loop()": "SELECT * FROM loop({db}.spans) LIMIT 1",
    "mergeTreeIndex()": "SELECT * FROM mergeTreeIndex('{db}', 'spans')",
    "a table function of the warehouse": (
        "SELECT * FROM {db}.effectiveness_window(since = '2000-01-01', until = '2100-01-01', by_day = 0)"
    ),
    "system.query_log": "SELECT count() FROM system.query_log",
    "system.processes": "SELECT query FROM system.processes",
    "system.tables": "SELECT name FROM system.tables",
    "system.columns": "SELECT count() FROM system.columns",
    "system.databases": "SELECT name FROM system.databases",
    "information_schema": "SELECT table_name FROM information_schema.tables",
    "SHOW DATABASES": "SHOW DATABASES",
    "SHOW PROCESSLIST": "SHOW PROCESSLIST",
    "SHOW TABLES FROM": "SHOW TABLES FROM {db}",
    "SHOW CREATE TABLE": "SHOW CREATE TABLE runs",
    "EXPLAIN": "EXPLAIN SELECT count() FROM runs",
    "DESCRIBE a base table": "DESCRIBE TABLE {db}.api_keys",
    "EXISTS a base table": "EXISTS TABLE {db}.audit_log",
    "EXISTS DATABASE": "EXISTS DATABASE {db}",
    "dictGet": "SELECT dictGet('{db}.d', 'x', toUInt64(1))",
    "joinGet": "SELECT joinGet('{db}.j', 'x', 1)",
    "hasColumnInTable": "SELECT hasColumnInTable('{db}', 'spans', 'name')",
    "an alias with a line break (could forge a parse line)": "SELECT 1 AS `x\n    Literal y` FROM runs",
}


@pytest.mark.parametrize("name", list(REFUSED))
def test_a_tenant_key_cannot_reach_beyond_its_views(server: WrmServer, key_a: str, name: str) -> None:
    refused(as_a(server, key_a, REFUSED[name]), name)


def test_a_table_named_by_a_bound_identifier_is_checked(server: WrmServer, key_a: str) -> None:
    sql = "SELECT count() FROM {t:Identifier}"
    refused(post(server, sql, headers=bearer(key_a), param_t=f"{db(server)}.spans"), "Identifier parameter")
    assert post(server, sql, headers=bearer(key_a), param_t="spans").body == "6\n"


def test_keys_and_audit_are_not_among_a_tenants_views(server: WrmServer, key_a: str) -> None:
    for table in ("api_keys", "api_key_uses", "audit_log", "run_queue", "schema_migrations"):
        answer = as_a(server, key_a, f"SELECT count() FROM {table}")
        assert (answer.status, answer.code) == (404, "60"), answer  # no such table in its database


def test_settings_stay_read_only_for_a_tenant_key(server: WrmServer, key_a: str) -> None:
    """As for every caller: read-only mode and the limits cannot be lifted, outside reads refused."""
    for sql, params in [
        ("SELECT count() FROM runs SETTINGS readonly = 0", ""),
        ("SELECT count() FROM runs", "0"),
        ("SET readonly = 0", ""),
        ("SELECT count() FROM runs SETTINGS analyzer_inline_views = 1", ""),
        ("SELECT * FROM remote('127.0.0.1', '{db}', 'spans')", ""),
    ]:
        refused(as_a(server, key_a, sql, readonly=params), f"{sql} {params}", code="164")


def test_the_database_parameter_names_only_the_tenants_own(server: WrmServer, key_a: str) -> None:
    for database in (db(server), tenant_database(db(server), A)):
        only_a(as_a(server, key_a, "SELECT count() FROM runs", database=database), database)
    for database in ("system", "default", tenant_database(db(server), B), "no such"):
        answer = as_a(server, key_a, "SELECT 1", database=database)
        assert (answer.status, answer.code) == (404, "81"), answer


def test_operator_and_admin_keys_of_a_tenant_are_scoped_too(server: WrmServer) -> None:
    for role in ("operator", "admin"):
        key = server.create_key(A, role, f"a-{role}")
        only_a(as_a(server, key, "SELECT count() FROM spans"), role)
        refused(as_a(server, key, "SELECT count() FROM {db}.spans"), role)


def test_tenant_b_sees_its_own_and_not_a(server: WrmServer) -> None:
    key = server.create_key(B, "viewer", "b-viewer")
    answer = post(server, "SELECT DISTINCT tenant_id FROM runs", headers=bearer(key))
    assert answer.body == f"{B}\n", answer
    got = post(
        server, "SELECT count() FROM runs", headers=bearer(key), database=tenant_database(db(server), B)
    )
    assert got.body == "4\n", got


def test_the_platform_key_reads_everything(server: WrmServer) -> None:
    admin = bearer(ADMIN)
    assert post(server, "SELECT count() FROM spans", headers=admin).body == "14\n"
    assert post(server, f"SELECT count() FROM {db(server)}.runs_store FINAL", headers=admin).body == "7\n"
    assert post(server, "SELECT count() > 0 FROM system.tables", headers=admin).body == "1\n"
    assert post(server, "SHOW DATABASES", headers=admin).status == 200


def _client(server: WrmServer, key: str, **kwargs: Any) -> Any:
    host, port = server.http_address.rsplit(":", 1)
    return clickhouse_connect.get_client(host=host, port=int(port), username="anyone", password=key, **kwargs)


def test_clickhouse_connect_with_the_key_as_password(server: WrmServer, key_a: str) -> None:
    client = _client(server, key_a, database=db(server))
    assert client.query("SELECT tenant_id, count() FROM runs GROUP BY tenant_id").result_rows == [(A, 3)]
    frame = client.query_df("SELECT name FROM spans ORDER BY name")
    assert sorted(set(frame["name"])) == ["acme-root", "acme-step"]
    assert client.command("SELECT count() FROM steps") == 3
    with pytest.raises(DatabaseError, match="497"):
        client.query(f"SELECT count() FROM {db(server)}.spans")
    with pytest.raises(DatabaseError, match="81"):
        _client(server, key_a, database="system")


def test_concurrent_first_queries_make_the_tenants_database_once(engine_dir: Path) -> None:
    wh = Warehouse.open(f"chdb://{engine_dir}", database=f"t_{uuid.uuid4().hex[:12]}")
    try:
        migrate(wh)
        ddl: list[str] = []

        class Counting:
            def __init__(self, client: Any) -> None:
                self.client = client

            def command(self, sql: str, **kw: Any) -> Any:
                ddl.append(sql)
                return self.client.command(sql, **kw)

            def query(self, sql: str, **kw: Any) -> Any:
                return self.client.query(sql, **kw)

        spaces = TenantSpaces(Counting(wh.client), wh.database)
        results: list[str] = []
        threads = [threading.Thread(target=lambda: results.append(spaces.ensure("t1"))) for _ in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len(set(results)) == 1 and len(results) == 6
        assert sum(s.startswith("CREATE DATABASE") for s in ddl) == 1
        made = {
            r[0]
            for r in wh.rows("SELECT name FROM system.tables WHERE database = {d:String}", {"d": results[0]})
        }
        assert made == set(EXPOSED) | set(PARAMETERIZED)
    finally:
        for name in (tenant_database(wh.database, "t1"), wh.database):
            wh.command(f"DROP DATABASE IF EXISTS `{name}` SYNC")
        wh.close()


def test_every_object_with_tenant_rows_is_exposed_or_deliberately_internal(server: WrmServer) -> None:
    """A new table or view with tenant rows must be classified: exposed (each tenant reads its own
    rows through a view) or internal (tenant_space.INTERNAL says why not)."""
    assert server.warehouse is not None
    rows = server.warehouse.rows(
        "SELECT name FROM system.tables WHERE database = {d:String} "
        "AND (name IN (SELECT table FROM system.columns WHERE database = {d:String} AND name = 'tenant_id') "
        "OR create_table_query LIKE '%tenant\\\\_id%')",
        {"d": db(server)},
    )
    with_tenant = {r[0] for r in rows}
    classified = set(EXPOSED) | set(PARAMETERIZED) | INTERNAL
    assert with_tenant - classified == set(), "classify in analytics/sql/tenant_space.py"
    assert set(EXPOSED) | set(PARAMETERIZED) <= with_tenant
    assert not (set(EXPOSED) | set(PARAMETERIZED)) & INTERNAL


SCOPE = TenantScope(A, "w_t_acme")
AST_OK = "SelectWithUnionQuery (children 1)\n ExpressionList (children 1)\n  SelectQuery (children 1)\n"
AST_OK += "   TablesInSelectQuery (children 1)\n    TablesInSelectQueryElement (children 1)\n"
AST_OK += "     TableExpression (children 1)\n      TableIdentifier runs (alias r)\n"
TREE = "QUERY id: 0\n  JOIN TREE\n    TABLE id: 3, alias: __table1, table_name: {name}\n"


def _explained(tree: str, ast: str = AST_OK) -> Any:
    return lambda text: ast if text.startswith("EXPLAIN AST ") else tree


def test_the_query_tree_decides_on_the_tables_the_engine_resolved() -> None:
    """Whatever the statement looked like, a resolved table outside the tenant's database refuses it."""
    SCOPE.check("SELECT 1 FROM runs AS r", "SELECT", _explained(TREE.format(name="w_t_acme.runs")))
    for name in ("w.runs_store", "w_t_other.runs", "system.tables", "w_t_acme"):
        with pytest.raises(Refused, match=f"may not read {name}"):
            SCOPE.check("SELECT 1 FROM runs AS r", "SELECT", _explained(TREE.format(name=name)))
    odd = TREE.format(name="w_t_acme.runs").replace("alias: __table1", "alias: r, table_name: w_t_acme.x")
    with pytest.raises(Refused, match="could not be verified"):
        SCOPE.check("SELECT 1", "SELECT", _explained(odd))
    function = "QUERY id: 0\n  TABLE_FUNCTION id: 3, alias: __table1, table_function_name: {name}\n"
    for name in ("numbers", "effectiveness_window", "w_t_acme.version_comparison"):
        SCOPE.check("SELECT 1", "SELECT", _explained(function.format(name=name)))
    for name in ("merge", "w.effectiveness_window", "url"):
        with pytest.raises(Refused, match="may not call"):
            SCOPE.check("SELECT 1", "SELECT", _explained(function.format(name=name)))


def test_a_parse_with_a_line_too_many_is_refused() -> None:
    """An alias with a line break adds a line to EXPLAIN AST: the children counts no longer add up."""
    forged = AST_OK.replace("(alias r)", "(alias r\n      Literal x)")
    with pytest.raises(Refused, match="could not be verified"):
        SCOPE.check(
            "SELECT 1 FROM runs AS r", "SELECT", _explained(TREE.format(name="w_t_acme.runs"), forged)
        )


def test_a_tenants_database_holds_only_what_it_should(engine_dir: Path) -> None:
    wh = Warehouse.open(f"chdb://{engine_dir}", database=f"t_{uuid.uuid4().hex[:12]}")
    target = tenant_database(wh.database, "t2")
    try:
        migrate(wh)
        wh.command(f"CREATE DATABASE `{target}`")
        wh.command(f"CREATE VIEW `{target}`.api_keys AS SELECT * FROM `{wh.database}`.api_keys")
        TenantSpaces(wh.client, wh.database).ensure("t2")
        made = {
            r[0] for r in wh.rows("SELECT name FROM system.tables WHERE database = {d:String}", {"d": target})
        }
        assert made == set(EXPOSED) | set(PARAMETERIZED)
    finally:
        for name in (target, wh.database):
            wh.command(f"DROP DATABASE IF EXISTS `{name}` SYNC")
        wh.close()


B_TRACES = [hexid(f"{SECRET}-run-{i}") for i in range(len(VERSIONS[B]))]
_TELLING = ("trace_id", "run_id", "name")  # columns by which a row of B's is known without tenant_id


@pytest.mark.parametrize("name", EXPOSED)
def test_a_tenant_keys_predicates_never_run_on_other_tenants_rows(
    server: WrmServer, key_a: str, name: str
) -> None:
    """The engine pushes a query's WHERE down into the views it reads, and on to PREWHERE ahead
    of a sort-key condition such as a view's tenant filter; evaluated there, an error or a
    throwIf would carry another tenant's values out (found in review: `toUInt8(name)` read B's
    span names in the error). The predicates here throw on any row of B's, known by its trace id,
    run id or name; a view whose rows say none of these (daily summaries, actions) is covered
    by the same barrier, tested here on the others."""
    described = as_a(server, key_a, f"DESCRIBE TABLE {name} FORMAT TSV")
    assert described.status == 200, described
    columns = {line.split("\t")[0] for line in described.body.splitlines()}
    telling = [c for c in _TELLING if c in columns]
    if not telling:
        pytest.skip(f"{name} has no column that tells B's rows apart without tenant_id")
    traces = ", ".join(f"'{t}'" for t in B_TRACES)
    is_b = " OR ".join(
        f"position(toString({c}), 'globex') > 0" if c == "name" else f"toString({c}) IN ({traces})"
        for c in telling
    )
    for where in (
        f"throwIf({is_b}, 'saw another tenant')",
        f"toUInt8(if({is_b}, concat({telling[0]}, ' leaked'), '1')) = 1",
    ):
        answer = as_a(server, key_a, f"SELECT count() FROM {name} WHERE {where}")
        assert answer.status == 200, f"{name}: {answer}"
        assert "leaked" not in answer.body and "another tenant" not in answer.body
