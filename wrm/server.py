"""`wrm serve` as an object: one process owning the warehouse, the OTLP receiver and the HTTP app."""

from __future__ import annotations

import logging
import threading
from pathlib import Path

from prometheus_client import CollectorRegistry

from access import Authenticator, Role, resolve_auth
from access.store import KeyStore
from analytics.api import create_app
from analytics.prices import store_prices
from analytics.sql import SqlCapacity, SqlLimits
from derivation.assembler import AssemblyConfig, RunAssembler
from derivation.stats import FAILED
from receiver.config import ReceiverConfig
from receiver.core import IngestCore
from receiver.grpc_transport import GrpcTransport
from receiver.http_transport import HttpTransport
from receiver.redact import IngestRedaction
from receiver.spool_log import SpoolLog, SpoolNotEmpty, unstored_bytes
from receiver.store import SpanStore
from redaction.book import PolicyBook
from redaction.store import hashing_secret
from warehouse import Warehouse, migrate
from warehouse.retention import apply_retention, store_policy, stored_policy_rows
from wrm.event_sink import CoreSink
from wrm.listen import Listener
from wrm.notify import Notifications
from wrm.redaction_audit import record_settings_changes
from wrm.settings import Settings, split_hostport

log = logging.getLogger("wrm")


class WrmServer:
    """Start and stop everything `wrm serve` runs. Port 0 in a setting picks a free port."""

    def __init__(self, settings: Settings, warehouse: Warehouse | None = None) -> None:
        self.settings = settings
        self._given_warehouse = warehouse
        self.warehouse: Warehouse | None = None
        self.receiver: IngestCore | None = None
        self._grpc: GrpcTransport | None = None
        self._otlp_http: HttpTransport | None = None
        self._otlp_http_listener: Listener | None = None
        self._http_listener: Listener | None = None
        self.assembler: RunAssembler | None = None
        self.notifications: Notifications | None = None
        self._sessions: list[Warehouse] = []
        self.otlp_address = ""
        self.otlp_http_address = ""
        self.http_address = ""
        self.migrations_applied = 0
        self._stop = threading.Event()
        self._stats_thread: threading.Thread | None = None
        self.authenticator: Authenticator | None = None
        self.keys: KeyStore | None = None
        self.auth_reason = ""
        self.policies: PolicyBook | None = None
        self._spool: SpoolLog | None = None

    def start(self) -> None:
        s = self.settings
        wh = self._given_warehouse or Warehouse.open(s.warehouse, s.database)
        self.warehouse = wh
        spool = self._spool = self._open_spool(wh)  # before anything is written: another server may hold it
        self.migrations_applied = len(migrate(wh))
        policy = s.retention()
        if stored_policy_rows(wh) != policy.rows():
            # Existing rows take the new retention in the background (the engine keeps queued
            # mutations across restarts); `wrm retention apply` does the same and waits.
            changes = apply_retention(wh, policy, wait=False)
            store_policy(wh, policy)
            log.info("retention policy changed: %d table/tenant groups being updated", len(changes))
        otlp_host, otlp_port = split_hostport(s.otlp_grpc)
        self._start_access([otlp_host, split_hostport(s.otlp_http)[0], split_hostport(s.http)[0]])
        config = ReceiverConfig(
            host=otlp_host,
            port=otlp_port,
            max_attribute_bytes=s.max_attribute_bytes,
            max_request_bytes=s.max_request_bytes,
            queue_max_spans=s.queue_max_spans,
            spool_max_spans=s.spool_max_spans,
            flush_max_spans=s.flush_max_spans,
            flush_interval_s=s.flush_interval_ms / 1000,
            workers=s.grpc_workers,
            retention_days=s.spans_ttl_days,
            tenant_retention_days=dict(policy.spans.by_tenant),
        )
        store_prices(wh, s.prices, s.tenant_prices, s.default_prices)
        self.notifications = Notifications(wh, s)
        self.assembler = RunAssembler(
            wh.session(),
            AssemblyConfig(
                interval_s=s.assemble_interval_ms / 1000,
                spans_days=policy.spans,
                steps_days=policy.steps,
                runs_days=policy.runs,
                summaries_days=policy.summaries,
                summary_interval_s=s.summary_interval_ms / 1000,
                run_keys=tuple(s.run_id_attributes),
                stale=s.stale_policy(),
                stale_check_interval_s=s.stale_check_interval_s,
                max_parts_per_run=s.max_parts_per_run,
            ),
            self.notifications.outbox,
        )
        self.assembler.start()
        writers = [wh.session() for _ in range(s.writer_threads)]
        self._sessions += writers
        self.policies = self._policy_book(wh)
        if record_settings_changes(wh, s.redaction, s.tenant_redaction):
            log.info(
                "redaction policies in the settings changed since the last start: recorded in the audit log"
            )
        self.receiver = IngestCore(
            config,
            [SpanStore(session).insert for session in writers],
            on_commit=self.assembler.committed,
            stamps_after=self.assembler.stored_through_ms,
            authenticator=self.authenticator,
            redaction=IngestRedaction(self.policies, config.default_tenant),
            spool=spool,
        )
        self._grpc = GrpcTransport(self.receiver, otlp_host, otlp_port)
        self.otlp_address = f"{otlp_host}:{self._grpc.start()}"
        self._otlp_http = HttpTransport(self.receiver, s.otlp_http_cors_origins, s.otlp_http_cors_headers)
        self._otlp_http_listener = Listener(self._otlp_http.app, *split_hostport(s.otlp_http), "OTLP/HTTP")
        self.otlp_http_address = self._otlp_http_listener.address
        self._start_http()
        self.notifications.start()
        if s.stats_log_interval_s > 0:
            self._stats_thread = threading.Thread(target=self._log_stats, name="wrm-stats", daemon=True)
            self._stats_thread.start()

    def _open_spool(self, wh: Warehouse) -> SpoolLog | None:
        """The spool with `ingest_ack = spooled` (locked: a second server on it does not start);
        with `stored`, a spool left holding acknowledged spans is refused too, since nothing
        would store them."""
        directory = self._spool_dir(wh)
        if self.settings.ingest_ack == "spooled":
            return SpoolLog(directory)
        if unstored_bytes(directory):
            raise SpoolNotEmpty(
                f"the spool {directory} holds acknowledged spans not yet stored: start once with "
                "WRM_INGEST_ACK=spooled to store them (or set it back)"
            )
        return None

    def _spool_dir(self, wh: Warehouse) -> Path:
        """The spool: as set, else beside an embedded warehouse, else ./data/spool; one directory
        per database in it, since servers on one engine may each have their own database."""
        if self.settings.spool_dir is not None:
            return self.settings.spool_dir
        if wh.dsn.embedded and wh.dsn.path is not None:
            path = Path(wh.dsn.path)
            return path.with_name(f"{path.name}-spool") / wh.database
        return Path("data/spool") / wh.database

    def _policy_book(self, wh: Warehouse) -> PolicyBook:
        """Redaction policies: the settings' and those set through the API, on a handle of their own."""
        s = self.settings
        session = wh.session(own_reader=True)
        self._sessions.append(session)
        given = s.redaction_secret
        secret = given.get_secret_value().encode() if given is not None else hashing_secret(session)
        return PolicyBook(s.redaction, s.tenant_redaction, secret, session, s.redaction_refresh_s)

    def _start_access(self, hosts: list[str]) -> None:
        """Keys and the auth mode: required unless set off or every listener is on loopback."""
        assert self.warehouse is not None
        s = self.settings
        mode = resolve_auth(s.auth, hosts)
        self.auth_reason = mode.reason
        session = self.warehouse.session(own_reader=True)
        self._sessions.append(session)
        self.keys = KeyStore(session)
        admin_key = s.admin_key.get_secret_value() if s.admin_key else None
        self.authenticator = Authenticator(
            self.keys, required=mode.required, admin_key=admin_key, refresh_s=s.key_refresh_s
        )
        self.authenticator.start()
        if not mode.required:
            log.warning("%s", mode.reason)
        elif admin_key is None and not any(k.active for k in self.keys.all()):
            log.warning(
                "auth is required but no API key exists and admin_key is not set: no call can succeed. "
                "Stop the server and run `wrm keys create --tenant T --role admin --name NAME` (it opens "
                "the warehouse directly), or set WRM_ADMIN_KEY"
            )

    def create_key(self, tenant: str, role: str, name: str) -> str:
        """A new key, in force at once (as `POST /v1/keys` makes one); for set-up and tests."""
        assert self.keys is not None and self.authenticator is not None
        record, key = self.keys.create(tenant, Role(role), name, "wrm serve")
        self.authenticator.remember(record)
        return key

    def _start_http(self) -> None:
        assert self.warehouse is not None and self.receiver is not None
        # The API, /healthz and the SQL port each read on handles of their own: a chdb handle
        # serializes its calls, so a shared one would let a heavy user query stall the others.
        api = self.warehouse.session(own_reader=True)
        health = self.warehouse.session(own_reader=True)
        self._sessions += [api, health]  # closed with the writers' handles at stop
        assert self.authenticator is not None and self.keys is not None and self.notifications is not None
        s = self.settings
        sql_capacity = SqlCapacity(
            self.warehouse,
            SqlLimits(
                max_execution_s=s.sql_max_execution_s,
                max_memory_bytes=s.sql_max_memory_bytes,
                max_result_rows=s.sql_max_result_rows,
                max_result_bytes=s.sql_max_result_bytes,
                max_threads=s.sql_max_threads,
                max_concurrent=s.sql_max_concurrent,
                max_queued=s.sql_max_queued,
                queue_timeout_s=s.sql_queue_timeout_s,
            ),
        )
        app = create_app(
            self.warehouse,
            self._registries(),
            self._describe,
            degraded=self._degraded,
            api_warehouse=api,
            sql_capacity=sql_capacity,
            health_warehouse=health,
            max_exports=s.export_max_concurrent,
            authenticator=self.authenticator,
            key_store=self.keys,
            policies=self.policies,
            events=CoreSink(self.receiver),
            outbox=self.notifications.outbox,
            routers=self.notifications.routers(api, self.policies),
        )
        # the SQL port's handles live exactly as long as the HTTP server
        self._http_listener = Listener(app, *split_hostport(s.http), "HTTP", on_exit=sql_capacity.close)
        self.http_address = self._http_listener.address

    def _registries(self) -> list[CollectorRegistry]:
        assert self.receiver is not None and self.assembler is not None and self.notifications is not None
        return [self.receiver.stats.registry, self.assembler.stats.registry, *self.notifications.registries()]

    def _describe(self) -> dict[str, object]:
        """Fields /healthz adds: the addresses, and whether runs keep up with ingest."""
        assert self.assembler is not None
        health = self.assembler.health()
        return {
            "otlp_grpc": self.otlp_address,
            "otlp_http": self.otlp_http_address,
            "http": self.http_address,
            "assembler": {
                "state": health.state,
                "behind_s": round(health.behind_s, 3),
                "consecutive_failures": health.consecutive_failures,
                "last_error": health.last_error,
            },
        }

    def _degraded(self) -> str:
        assert self.assembler is not None
        health = self.assembler.health()
        if health.state == FAILED:
            return f"run assembly stopped by a permanent error: {health.last_error}"
        return ""

    def banner(self) -> str:
        assert self.warehouse is not None
        return (
            f"wrm serve: OTLP/gRPC on {self.otlp_address}, OTLP/HTTP on http://{self.otlp_http_address}, "
            f"HTTP (API, SQL, /metrics) on "
            f"http://{self.http_address}, warehouse {self.warehouse.dsn.describe()} "
            f"database {self.warehouse.database} ({self.migrations_applied} migrations applied); "
            f"{'auth required' if self.authenticator and self.authenticator.required else 'auth OFF'}"
        )

    def stop(self) -> None:
        """Stop taking spans, store what was accepted, then stop HTTP and close the warehouse."""
        self._stop.set()
        if self._otlp_http is not None:  # 503 + Retry-After from now on; requests in flight finish
            self._otlp_http.stopping = True
        if self._grpc is not None:
            self._grpc.stop()
        if self._otlp_http_listener is not None:
            self._otlp_http_listener.stop()
        if self.receiver is not None:
            self.receiver.close()  # and the spool
        elif self._spool is not None:  # start() failed after taking it
            self._spool.close()
        if self.assembler is not None:
            self.assembler.stop()
        if self.notifications is not None:
            self.notifications.stop()
        if self.authenticator is not None:
            self.authenticator.close()
        if self._http_listener is not None:
            self._http_listener.stop()
        for session in self._sessions:
            session.close()
        if self.warehouse is not None and self._given_warehouse is None:
            self.warehouse.close()
        if self.receiver is not None:
            log.info("wrm stopped: %s", _format_stats(self.receiver.stats.snapshot()))

    def _log_stats(self) -> None:
        assert self.receiver is not None
        while not self._stop.wait(self.settings.stats_log_interval_s):
            log.info("wrm stats: %s", _format_stats(self.receiver.stats.snapshot()))


def _format_stats(snapshot: dict[str, float]) -> str:
    return " ".join(f"{k}={int(v)}" for k, v in snapshot.items())
