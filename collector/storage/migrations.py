"""The ClickHouse schema, as numbered migrations applied once each and recorded in a version table.

Tables are ordered for the queries that matter: events by (tenant, correlation id) for a
transaction's lookup, spans by trace id. ReplacingMergeTree keeps one row per key: a re-sent event
(same event_id) or a re-linked one (a newer ``version``) never counts twice, and every query reads
with FINAL. On a cluster each table is a ReplicatedReplacingMergeTree ``<name>_local`` on every
node behind a Distributed ``<name>`` sharded by transaction, so all events of one transaction
(and all copies of one event) meet on one shard.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@dataclass(frozen=True)
class Table:
    name: str
    columns: str
    order_by: str
    partition_by: str | None
    ttl_column: str | None
    shard_key: str
    version_column: str | None = None


EVENTS = Table(
    name="events",
    columns="""
    tenant LowCardinality(String),
    transaction_id String,
    correlation_id String,
    event_id String,
    workflow LowCardinality(String),
    step LowCardinality(String),
    system LowCardinality(String),
    status LowCardinality(String),
    timestamp DateTime64(6, 'UTC'),
    received_at DateTime64(6, 'UTC'),
    duration_ms Nullable(Float64),
    attempt Nullable(UInt32),
    error_kind LowCardinality(String),
    error_message String,
    amount Nullable(Float64),
    currency LowCardinality(String),
    aliases Map(String, String),
    attributes Map(String, String),
    trace_id String,
    span_id String,
    source LowCardinality(String),
    version UInt64,
    INDEX idx_transaction transaction_id TYPE bloom_filter GRANULARITY 2,
    INDEX idx_trace trace_id TYPE bloom_filter GRANULARITY 4
    """,
    order_by="(tenant, correlation_id, event_id)",
    partition_by="toYYYYMM(timestamp)",
    ttl_column="timestamp",
    shard_key="cityHash64(tenant, transaction_id)",
    version_column="version",
)

ALIASES = Table(
    name="aliases",
    columns="""
    tenant LowCardinality(String),
    alias String,
    kind LowCardinality(String),
    transaction_id String,
    announced_by String,
    first_seen DateTime64(6, 'UTC'),
    version UInt64,
    INDEX idx_transaction transaction_id TYPE bloom_filter GRANULARITY 2
    """,
    order_by="(tenant, alias)",
    partition_by=None,
    ttl_column=None,
    shard_key="cityHash64(tenant, transaction_id)",
    version_column="version",
)

SPANS = Table(
    name="spans",
    columns="""
    tenant LowCardinality(String),
    trace_id String,
    span_id String,
    parent_span_id String,
    name String,
    service LowCardinality(String),
    kind LowCardinality(String),
    start_time DateTime64(9, 'UTC'),
    end_time DateTime64(9, 'UTC'),
    duration_ms Float64,
    status_code LowCardinality(String),
    status_message String,
    attributes Map(String, String),
    resource Map(String, String),
    events String,
    received_at DateTime64(6, 'UTC')
    """,
    order_by="(tenant, trace_id, span_id)",
    partition_by="toYYYYMM(start_time)",
    ttl_column="start_time",
    shard_key="cityHash64(tenant, trace_id)",
)


# --- Migration 2: alerting and the operators' audit trail --------------------------------------
# Small tables, read with FINAL. Every row carries its tenant; each sorts by tenant first.

ALERTS = Table(
    name="alerts",
    columns="""
    tenant LowCardinality(String),
    alert_id String,
    rule String,
    condition LowCardinality(String),
    severity LowCardinality(String),
    workflow String,
    subject String,
    status LowCardinality(String),
    summary String,
    transactions Array(String),
    context String,
    fired_at DateTime64(6, 'UTC'),
    resolved_at Nullable(DateTime64(6, 'UTC')),
    resolution String,
    version UInt64
    """,
    order_by="(tenant, alert_id)",
    partition_by=None,
    ttl_column=None,
    shard_key="cityHash64(tenant, alert_id)",
    version_column="version",
)

ALERT_NOTIFICATIONS = Table(
    name="alert_notifications",
    columns="""
    tenant LowCardinality(String),
    notification_id String,
    alert_id String,
    rule String,
    receiver String,
    receiver_type LowCardinality(String),
    event LowCardinality(String),
    payload String,
    status LowCardinality(String),
    attempts UInt32,
    next_attempt_at DateTime64(6, 'UTC'),
    last_error String,
    created_at DateTime64(6, 'UTC'),
    delivered_at Nullable(DateTime64(6, 'UTC')),
    version UInt64
    """,
    order_by="(tenant, notification_id)",
    partition_by=None,
    ttl_column=None,
    shard_key="cityHash64(tenant, notification_id)",
    version_column="version",
)

ALERT_DELIVERIES = Table(
    name="alert_deliveries",
    columns="""
    tenant LowCardinality(String),
    notification_id String,
    attempt UInt32,
    at DateTime64(6, 'UTC'),
    ok Bool,
    status_code UInt16,
    error String,
    duration_ms Float64
    """,
    order_by="(tenant, notification_id, attempt)",
    partition_by=None,
    ttl_column=None,
    shard_key="cityHash64(tenant, notification_id)",
)

AUDIT_LOG = Table(
    name="audit_log",
    columns="""
    tenant LowCardinality(String),
    transaction_id String,
    at DateTime64(6, 'UTC'),
    action_id String,
    action LowCardinality(String),
    actor String,
    operator String,
    correlation_id String,
    kind LowCardinality(String),
    system String,
    workflow String,
    comment String
    """,
    order_by="(tenant, transaction_id, at, action_id)",
    partition_by=None,
    ttl_column=None,
    shard_key="cityHash64(tenant, transaction_id)",
)


# --- Migration 3: each transaction's derived state (state_table.py keeps it current) ------------

TRANSACTION_STATE = Table(
    name="transaction_state",
    columns="""
    tenant LowCardinality(String),
    transaction_id String,
    workflow LowCardinality(String),
    started_at DateTime64(6, 'UTC'),
    last_activity DateTime64(6, 'UTC'),
    systems Array(LowCardinality(String)),
    event_count UInt64,
    error_count UInt64,
    retry_count UInt64,
    amount Nullable(Float64),
    currency LowCardinality(String),
    terminal LowCardinality(String),
    waiting Array(String),
    waiting_systems Array(String),
    due_since Array(DateTime64(6, 'UTC')),
    waiting_within Array(Float64),
    last_progress DateTime64(6, 'UTC'),
    has_workflow Bool,
    stuck_after Float64,
    sla_limit Float64,
    missing Array(String),
    violations Array(Tuple(String, String)),
    completed_at Nullable(DateTime64(6, 'UTC')),
    failed_at Nullable(DateTime64(6, 'UTC')),
    deleted Bool,
    version UInt64
    """,
    order_by="(tenant, transaction_id)",
    partition_by=None,
    ttl_column="last_activity",
    shard_key="cityHash64(tenant, transaction_id)",
    version_column="version",
)


def _checked_identifier(value: str, what: str) -> str:
    if not _IDENTIFIER.match(value):
        raise ValueError(f"{what} {value!r} is not a plain identifier (letters, digits, underscore)")
    return value


def create_table(table: Table, cluster: str | None, ttl_days: int | None) -> list[str]:
    """DDL for one table: a plain ReplacingMergeTree, or local replicated tables plus a Distributed one."""
    if ttl_days is not None and (not isinstance(ttl_days, int) or ttl_days <= 0):
        raise ValueError(f"ttl_days must be a positive whole number, not {ttl_days!r}")
    version = table.version_column or ""
    clauses = []
    if table.partition_by:
        clauses.append(f"PARTITION BY {table.partition_by}")
    clauses.append(f"ORDER BY {table.order_by}")
    if ttl_days and table.ttl_column:
        clauses.append(f"TTL toDateTime({table.ttl_column}) + INTERVAL {int(ttl_days)} DAY")
    tail = "\n".join(clauses)
    if cluster is None:
        return [
            f"CREATE TABLE IF NOT EXISTS {table.name} ({table.columns})\n"
            f"ENGINE = ReplacingMergeTree({version})\n{tail}"
        ]
    cluster = _checked_identifier(cluster, "cluster name")
    local = f"{table.name}_local"
    zookeeper_path = "/clickhouse/tables/{shard}/threadline/" + local
    engine = f"ReplicatedReplacingMergeTree('{zookeeper_path}', '{{replica}}'"
    engine += f", {version})" if version else ")"
    return [
        f"CREATE TABLE IF NOT EXISTS {local} ON CLUSTER {cluster} ({table.columns})\n"
        f"ENGINE = {engine}\n{tail}",
        f"CREATE TABLE IF NOT EXISTS {table.name} ON CLUSTER {cluster} AS {local}\n"
        f"ENGINE = Distributed({cluster}, currentDatabase(), {local}, {table.shard_key})",
    ]


def migrations(cluster: str | None = None, ttl_days: int | None = None) -> list[tuple[int, list[str]]]:
    """(version, statements) in order; a store at version N gets every migration above N."""
    return [
        (
            1,
            [
                *create_table(EVENTS, cluster, ttl_days),
                *create_table(ALIASES, cluster, None),
                *create_table(SPANS, cluster, ttl_days),
            ],
        ),
        (
            2,
            [
                *create_table(ALERTS, cluster, None),
                *create_table(ALERT_NOTIFICATIONS, cluster, None),
                *create_table(ALERT_DELIVERIES, cluster, None),
                *create_table(AUDIT_LOG, cluster, None),
            ],
        ),
        (3, create_table(TRANSACTION_STATE, cluster, ttl_days)),
    ]


VERSION_TABLE = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version UInt32,
    applied_at DateTime64(3, 'UTC') DEFAULT now64(3)
) ENGINE = MergeTree ORDER BY version
"""
