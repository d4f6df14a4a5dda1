"""The `wrm` command line: serve, migrate, sql, indicators, compare, report, export, retention, keys,
redact, alerts."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from collections.abc import Sequence

from clickhouse_connect.driver.exceptions import ClickHouseError

from warehouse import Warehouse, WarehouseError, migrate
from wrm import (
    alerts_command,
    export_command,
    indicator_commands,
    keys_command,
    redact_command,
    report_command,
    retention_command,
)
from wrm.reading import NoWarehouse, read_source
from wrm.server import WrmServer
from wrm.settings import Settings, SettingsError, load_settings

log = logging.getLogger("wrm")


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--config", metavar="FILE", help="TOML file with settings (keys as in WRM_* without the prefix)"
    )
    p.add_argument(
        "--warehouse", metavar="DSN", help="chdb://PATH or http(s)://HOST:PORT (env WRM_WAREHOUSE)"
    )
    p.add_argument("--database", metavar="NAME", help="database name (env WRM_DATABASE, default wrm)")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="wrm", description="Workflow Run Management")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="receive OTLP, serve the API and SQL; owns the warehouse")
    _common(serve)
    serve.add_argument("--otlp-grpc", metavar="HOST:PORT", help="OTLP/gRPC address (env WRM_OTLP_GRPC)")
    serve.add_argument("--otlp-http", metavar="HOST:PORT", help="OTLP/HTTP address (env WRM_OTLP_HTTP)")
    serve.add_argument("--http", metavar="HOST:PORT", help="HTTP address (env WRM_HTTP)")
    mig = sub.add_parser("migrate", help="apply pending migrations and exit")
    _common(mig)
    sql = sub.add_parser("sql", help="run read-only SQL via the running server, or directly when none runs")
    _common(sql)
    sql.add_argument("query", help="the SQL to run")
    sql.add_argument("--http", metavar="HOST:PORT", help="where to look for a running server")
    sql.add_argument(
        "--format", default=None, help="output format (default PrettyCompact on a terminal, else TSV)"
    )
    indicator_commands.add_parsers(sub, _common)
    report_command.add_parser(sub, _common)
    retention_command.add_parser(sub, _common)
    export_command.add_parser(sub, _common)
    keys_command.add_parser(sub, _common)
    redact_command.add_parser(sub, _common)
    alerts_command.add_parser(sub, _common)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        settings = load_settings(
            args.config,
            warehouse=args.warehouse,
            database=args.database,
            http=getattr(args, "http", None),
            otlp_grpc=getattr(args, "otlp_grpc", None),
            otlp_http=getattr(args, "otlp_http", None),
        )
    except SettingsError as exc:
        print(f"wrm: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(
        level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr
    )
    # httpx logs every request at INFO: a line per webhook delivery; the delivery log has them
    logging.getLogger("httpx").setLevel(max(logging.WARNING, logging.getLogger().level))
    try:
        if args.command == "serve":
            return _serve(settings)
        if args.command == "migrate":
            return _migrate(settings)
        if args.command == "indicators":
            return indicator_commands.run_indicators(settings, args)
        if args.command == "compare":
            return indicator_commands.run_compare(settings, args)
        if args.command == "report":
            return report_command.run_report(settings, args)
        if args.command == "export":
            return export_command.run(settings, args)
        if args.command == "keys":
            return keys_command.run(settings, args)
        if args.command == "redact":
            return redact_command.run(settings, args)
        if args.command == "retention":
            return retention_command.run(settings, args)
        if args.command == "alerts":
            return alerts_command.run(settings, args)
        return _sql(settings, args.query, args.format)
    except (WarehouseError, NoWarehouse) as exc:
        print(f"wrm: {exc}", file=sys.stderr)
        return 1
    except ClickHouseError as exc:
        print(f"wrm {args.command}: the warehouse refused the query: {exc}", file=sys.stderr)
        return 1


def _serve(settings: Settings) -> int:
    server = WrmServer(settings)
    stop = threading.Event()

    def on_signal(signum: int, _frame: object) -> None:
        if stop.is_set():
            log.warning("already stopping (%s); SIGKILL abandons the drain", signal.Signals(signum).name)
        stop.set()

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, on_signal)
    try:
        server.start()
    except OSError as exc:
        print(f"wrm: {exc}", file=sys.stderr)
        server.stop()
        return 1
    print(server.banner(), flush=True)
    while not stop.wait(0.5):  # a timed wait: the main thread wakes to run the handler promptly
        pass
    log.info("shutting down: refusing new spans, storing accepted ones")
    server.stop()
    # Python's finalization puts SIG_DFL back for signals it handles, so a second SIGTERM while
    # the interpreter winds down would end a clean stop with -15; ignored ones stay ignored.
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, signal.SIG_IGN)
    return 0


def _migrate(settings: Settings) -> int:
    wh = Warehouse.open(settings.warehouse, settings.database)
    try:
        ran = migrate(wh)
    finally:
        wh.close()
    print(f"wrm migrate: {len(ran)} applied" + "".join(f"\n  {m.version:03d}_{m.name}" for m in ran))
    return 0


def _sql(settings: Settings, query: str, fmt: str | None) -> int:
    fmt = fmt or ("PrettyCompact" if sys.stdout.isatty() else "TabSeparated")
    with read_source(settings, "sql") as src:
        sys.stdout.buffer.write(src.client.raw_query(query, fmt=fmt))
    return 0


if __name__ == "__main__":
    sys.exit(main())
