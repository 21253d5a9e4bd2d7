"""The ClickHouse schema, as numbered migrations applied once each and recorded in a version table.

Tables are ordered for the queries that matter: events by (tenant, correlation id) for a
transaction's lookup, spans by trace id, the engine-kept aggregates by transaction (and by
workflow for the process map). ReplacingMergeTree keeps one row per key, so a re-sent event (same
event_id) is stored once; AggregatingMergeTree merges the aggregates of one transaction into one
row, read with FINAL. On a cluster each sharded table is a Replicated* table ``<name>_local`` on
every node behind a Distributed ``<name>`` sharded by transaction, so all events of one
transaction (and all copies of one event) meet on one shard; the small key tables are replicated
whole to every node instead (``everywhere``). docs/scaling.md says why each answer stays exact.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from . import aggregates

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@dataclass(frozen=True)
class Table:
    name: str
    columns: str
    order_by: str
    month_column: str | None  # partitioned by the month (UTC) of this time column, or not at all
    ttl_column: str | None
    shard_key: str
    version_column: str | None = None
    engine: str = "ReplacingMergeTree"  # or AggregatingMergeTree (Replicated* on a cluster)
    everywhere: bool = False  # on a cluster: a full replica on every node, not sharded
    settings: str = ""

    @property
    def partition_by(self) -> str | None:
        return f"toYYYYMM({self.month_column})" if self.month_column else None


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
    month_column="timestamp",
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
    month_column=None,
    ttl_column=None,
    shard_key="",
    version_column="version",
    everywhere=True,  # the key mapping: every shard resolves keys locally
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
    month_column="start_time",
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
    month_column=None,
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
    month_column=None,
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
    month_column=None,
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
    month_column=None,
    ttl_column=None,
    shard_key="cityHash64(tenant, transaction_id)",
)


# --- Migration 4: state kept by the engine (see aggregates.py) ------------------------------------

# An absorbed transaction (one whose key was announced as an alias of another after it had events of
# its own) and the transaction it now belongs to. Events keep the transaction they were stored under;
# queries map it through here. Small: only late links write it.
# Aliases announced but not linked (storage.writes.AliasConflict), shown on both transactions.
ALIAS_CONFLICTS = Table(
    name="alias_conflicts",
    columns="""
    tenant LowCardinality(String),
    alias String,
    kind LowCardinality(String),
    key_kind LowCardinality(String),
    announced_by String,
    claimed_by String,
    belongs_to String,
    reason LowCardinality(String),
    seen_at DateTime64(6, 'UTC'),
    version UInt64,
    INDEX idx_claimed claimed_by TYPE bloom_filter GRANULARITY 2,
    INDEX idx_belongs belongs_to TYPE bloom_filter GRANULARITY 2
    """,
    order_by="(tenant, alias, claimed_by)",
    month_column=None,
    ttl_column=None,
    shard_key="",
    version_column="version",
    everywhere=True,  # a key table: read beside the key mapping
)

TRANSACTION_LINKS = Table(
    name="transaction_links",
    columns="""
    tenant LowCardinality(String),
    transaction_id String,
    merged_into String,
    linked_at DateTime64(6, 'UTC'),
    version UInt64
    """,
    order_by="(tenant, transaction_id)",
    month_column=None,
    ttl_column=None,
    shard_key="",
    version_column="version",
    everywhere=True,
)

# The backfill inserts each slice with a deduplication token, so that a slice inserted again after
# a crash is dropped (replicated tables deduplicate by themselves; the views' inserts never are).
BACKFILL_DEDUPLICATION = "non_replicated_deduplication_window = 1000"

TRANSACTION_ROLLUPS = Table(
    name="transaction_rollups",
    columns=f"""
    tenant LowCardinality(String),
    transaction_id String,
    {aggregates.columns(aggregates.ROLLUP)},
    INDEX idx_last_activity last_activity TYPE minmax GRANULARITY 1
    """,
    order_by="(tenant, transaction_id)",
    month_column=None,
    ttl_column="last_activity",  # expires with the transaction's last event
    shard_key="cityHash64(tenant, transaction_id)",
    engine="AggregatingMergeTree",
    settings=BACKFILL_DEDUPLICATION,
)

WORKFLOW_TRACES = Table(
    name="workflow_traces",
    columns=f"""
    tenant LowCardinality(String),
    workflow LowCardinality(String),
    transaction_id String,
    {aggregates.columns(aggregates.TRACE)}
    """,
    order_by="(tenant, workflow, transaction_id)",
    month_column=None,
    ttl_column="started_at",
    shard_key="cityHash64(tenant, transaction_id)",
    engine="AggregatingMergeTree",
    settings=BACKFILL_DEDUPLICATION,
)

# Slices of the events stored before the aggregates existed, and whether each is in them yet.
AGGREGATE_BACKFILL = Table(
    name="aggregate_backfill",
    columns="""
    slice UInt32,
    slices UInt32,
    cutoff DateTime64(6, 'UTC'),
    done Bool,
    version UInt64
    """,
    order_by="slice",
    month_column=None,
    ttl_column=None,
    shard_key="",
    version_column="version",
    everywhere=True,
)

EVENTS_PER_BACKFILL_SLICE = 250_000


# --- Migration 6: technical spans keep what was sent ---------------------------------------------
# From migration 6 on, the attribute maps of a span (`attributes`, `resource`, `scope_attributes`)
# hold each value as its JSON, so that 201 stays a number and [1, 2] an array; `typed_values`
# tells those rows from older ones, whose values are plain text. `events` and `links` are JSON
# arrays. A row written by a collector from before the migration gets the default: plain text.
SPAN_COLUMNS_OF_MIGRATION_6 = (
    "links String",
    "scope_name LowCardinality(String)",
    "scope_version LowCardinality(String)",
    "scope_attributes Map(String, String)",
    "typed_values Bool DEFAULT false",
)


# --- Migration 9: alert rules watch from when they are first seen -------------------------------
# A rule (by name and definition) starts watching when a collector first evaluates it: what already
# met it then is its baseline, summarised once and never fired one by one (collector.alerts.watches).
ALERT_WATCHES = Table(
    name="alert_watches",
    columns="""
    tenant LowCardinality(String),
    rule String,
    definition String,
    watching_since DateTime64(6, 'UTC'),
    already_holding UInt64,
    summary String,
    transactions Array(String),
    version UInt64
    """,
    order_by="(tenant, rule, definition)",
    month_column=None,
    ttl_column=None,
    shard_key="",
    version_column="version",
    everywhere=True,
)

# The subjects (transactions) each watch found already meeting its rule; ``holds`` turns false once
# one stops meeting it, so that meeting it again is news and fires.
ALERT_BASELINES = Table(
    name="alert_baselines",
    columns="""
    tenant LowCardinality(String),
    rule String,
    definition String,
    subject String,
    holds Bool,
    version UInt64
    """,
    order_by="(tenant, rule, definition, subject)",
    month_column=None,
    ttl_column=None,
    shard_key="",
    version_column="version",
    everywhere=True,
)

# Per tenant, the moment its last alert evaluation covered: the next one looks only at what arrived
# since (with a margin), across restarts too.
ALERT_CURSORS = Table(
    name="alert_cursors",
    columns="""
    tenant LowCardinality(String),
    evaluated_at DateTime64(6, 'UTC'),
    version UInt64
    """,
    order_by="tenant",
    month_column=None,
    ttl_column=None,
    shard_key="",
    version_column="version",
    everywhere=True,
)


# --- Migration 11: notification groups and silences ----------------------------------------------
# Notifications are grouped per receiver as Alertmanager does (collector.alerts.groups): each group's
# timers and the alerts it last told of, the notifications sent (each lists its alerts), and the
# silences operators set (what they match, from when until when, who set them and why).
ALERT_GROUPS = Table(
    name="alert_groups",
    columns="""
    tenant LowCardinality(String),
    receiver String,
    group_key String,
    labels Map(String, String),
    grouping String,
    firing Array(String),
    last_notified_at Nullable(DateTime64(6, 'UTC')),
    notifications UInt64,
    version UInt64
    """,
    order_by="(tenant, receiver, group_key)",
    month_column=None,
    ttl_column=None,
    shard_key="",
    version_column="version",
    everywhere=True,
)

ALERT_GROUP_NOTIFICATIONS = Table(
    name="alert_group_notifications",
    columns="""
    tenant LowCardinality(String),
    notification_id String,
    group_key String,
    labels Map(String, String),
    alerts Array(String),
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
    month_column=None,
    ttl_column=None,
    shard_key="cityHash64(tenant, notification_id)",
    version_column="version",
)

ALERT_SILENCES = Table(
    name="alert_silences",
    columns="""
    tenant LowCardinality(String),
    silence_id String,
    matchers Map(String, String),
    starts_at DateTime64(6, 'UTC'),
    ends_at DateTime64(6, 'UTC'),
    comment String,
    created_by String,
    operator String,
    created_at DateTime64(6, 'UTC'),
    expired_by String,
    version UInt64
    """,
    order_by="(tenant, silence_id)",
    month_column=None,
    ttl_column=None,
    shard_key="",
    version_column="version",
    everywhere=True,
)


# --- Migration 10: the state snapshot --------------------------------------------------------------
# The tables the pages read a page of transactions from by id (50 ids scattered over millions of
# rows): small granules and small compressed blocks, so each id costs about 4 KB of decompressing
# rather than a 64 KB block per column. At 10 M events this reads a page's 50 snapshot rows in 22 ms
# instead of 53 ms; the scans of the whole table are as fast (migration 19).
POINT_READS = "index_granularity = 1024, min_compress_block_size = 4096, max_compress_block_size = 16384"

# Per transaction, what its events say against the workflow definitions, except what depends on the
# moment asked about (``state/rules.DERIVED``), kept up to date off the ingest path by the collector
# (``state/snapshot.py``) for what changed: the pages read it instead of deriving every transaction's
# state on every call. Which definitions it was derived with and up to when it is complete: per
# tenant, in ``state_marks``.
TIME = aggregates.TIME
TRANSACTION_STATES = Table(
    name="transaction_states",
    columns=f"""
    tenant LowCardinality(String),
    transaction_id String,
    workflow LowCardinality(String),
    started_at {TIME},
    last_activity {TIME},
    systems Array(String),
    event_count UInt64,
    error_count UInt64,
    retry_count UInt64,
    amount Nullable(Float64),
    currency LowCardinality(String),
    completed_at Nullable({TIME}),
    failed_at Nullable({TIME}),
    missing Array(String),
    violations Array(Tuple(String, String, String)),
    sla_limit Float64,
    has_workflow UInt8,
    stuck_after Float64,
    last_progress {TIME},
    waiting Array(String),
    waiting_systems Array(String),
    due_since Array({TIME}),
    waiting_within Array(Float64),
    version UInt64
    """,
    order_by="(tenant, transaction_id)",
    month_column=None,
    ttl_column="last_activity",  # expires with the transaction's rollup
    shard_key="cityHash64(tenant, transaction_id)",
    version_column="version",
    settings=POINT_READS,
)

STATE_MARKS = Table(
    name="state_marks",
    columns=f"""
    tenant LowCardinality(String),
    definitions String,
    covered_until {TIME},
    version UInt64
    """,
    order_by="tenant",
    month_column=None,
    ttl_column=None,
    shard_key="",
    version_column="version",
    everywhere=True,
)


# --- Migration 13: reconciliation ------------------------------------------------------------------
# Per transaction of a workflow with `reconcile:` or `unique_by:`, what the state keeper derived from
# its events (``state/reconciliation.py``): the values its systems disagree on (``mismatches``, the
# API's JSON; ``mismatch_fields`` for counting), its business key and the transactions sharing it.
# ``reconciled_at`` tells the alert evaluator what changed since its last pass.
TRANSACTION_RECONCILIATIONS = Table(
    name="transaction_reconciliations",
    columns=f"""
    tenant LowCardinality(String),
    transaction_id String,
    workflow LowCardinality(String),
    started_at {TIME},
    mismatches String,
    mismatch_fields Array(String),
    key_field LowCardinality(String),
    key_value String,
    duplicates Array(String),
    reconciled_at {TIME},
    version UInt64
    """,
    order_by="(tenant, transaction_id)",
    month_column=None,
    ttl_column="started_at",
    shard_key="cityHash64(tenant, transaction_id)",
    version_column="version",
    settings=POINT_READS,
)


# --- Migration 16: business dimensions ---------------------------------------------------------------
# Per transaction of a workflow with `dimensions:`, the value of each (``state/dimensions.py``), kept
# by the state keeper: the queue's filter, the overview's grouping and the process map read them here.
# ``kept_at`` tells the alert evaluator what changed since its last pass.
TRANSACTION_DIMENSIONS = Table(
    name="transaction_dimensions",
    columns=f"""
    tenant LowCardinality(String),
    transaction_id String,
    workflow LowCardinality(String),
    started_at {TIME},
    dimensions Map(LowCardinality(String), String),
    kept_at {TIME},
    version UInt64
    """,
    order_by="(tenant, transaction_id)",
    month_column=None,
    ttl_column="started_at",
    shard_key="cityHash64(tenant, transaction_id)",
    version_column="version",
    settings=POINT_READS,
)


# The state keeper's tables that pages and lookups read by id: made with POINT_READS (migration 19).
READ_BY_ID = (TRANSACTION_STATES, TRANSACTION_RECONCILIATIONS, TRANSACTION_DIMENSIONS)


# --- Migration 17: which attributes each system's events carry -----------------------------------
# Kept by the engine at insert time (``aggregates.PRESENCE``), filled once from the events stored
# before; schema drift (``state/drift.py``) reads these rows, never the events in bulk.
ATTRIBUTE_PRESENCE = Table(
    name="attribute_presence",
    columns=f"""
    tenant LowCardinality(String),
    hour DateTime('UTC'),
    system LowCardinality(String),
    step LowCardinality(String),
    attribute String,
    {aggregates.columns(aggregates.PRESENCE)}
    """,
    order_by="(tenant, hour, system, step, attribute)",  # drift reads the last two weeks
    month_column=None,
    ttl_column="hour",
    shard_key="cityHash64(tenant, system, step)",
    engine="AggregatingMergeTree",
)

FILL_PRESENCE = f"""
INSERT INTO {ATTRIBUTE_PRESENCE.name} ({aggregates.PRESENCE_BY}, {aggregates.names(aggregates.PRESENCE)})
SELECT {aggregates.PRESENCE_KEYS}, {aggregates.aggregated(aggregates.PRESENCE)}
FROM events
{aggregates.PRESENCE_JOIN}
GROUP BY {aggregates.PRESENCE_BY}
"""


# --- Migration 18: open exceptions per transaction ----------------------------------------------------
# Per transaction that ever had an error event, its open exceptions (``state/transaction_exceptions.py``):
# each step with errors and no ``ok`` event, with its latest error. Kept by the state keeper with the
# snapshot, so that the exceptions report reads these rows instead of every event of every erring
# transaction. An empty array: every error of the transaction was recovered.
OPEN_EXCEPTION = (
    f"Tuple(step String, kind String, system String, message String, error_at {TIME}, "
    f"received_at {TIME}, errors UInt64)"
)
TRANSACTION_EXCEPTIONS = Table(
    name="transaction_exceptions",
    columns=f"""
    tenant LowCardinality(String),
    transaction_id String,
    exceptions Array({OPEN_EXCEPTION}),
    last_error_at {TIME},
    version UInt64
    """,
    order_by="(tenant, transaction_id)",
    month_column=None,
    ttl_column="last_error_at",
    shard_key="cityHash64(tenant, transaction_id)",
    version_column="version",
)

# Every tenant's snapshot mark cleared: the keeper's next pass derives every transaction again, and
# keeps the new table's rows with it (until then reads derive what they need from the events).
CLEAR_STATE_MARKS = f"""
INSERT INTO {STATE_MARKS.name} (tenant, definitions, covered_until, version)
SELECT tenant, '', toDateTime64(0, 6, 'UTC'), max(version) + 1
FROM {STATE_MARKS.name}
GROUP BY tenant
"""


def _checked_identifier(value: str, what: str) -> str:
    if not _IDENTIFIER.match(value):
        raise ValueError(f"{what} {value!r} is not a plain identifier (letters, digits, underscore)")
    return value


def create_table(table: Table, cluster: str | None, ttl_days: int | None) -> list[str]:
    """DDL for one table: a plain table, or local replicated tables plus a Distributed one."""
    if ttl_days is not None and (not isinstance(ttl_days, int) or ttl_days <= 0):
        raise ValueError(f"ttl_days must be a positive whole number, not {ttl_days!r}")
    version = table.version_column or ""
    clauses = []
    if table.partition_by:
        clauses.append(f"PARTITION BY {table.partition_by}")
    clauses.append(f"ORDER BY {table.order_by}")
    if ttl_days and table.ttl_column:
        clauses.append(f"TTL toDateTime({table.ttl_column}) + INTERVAL {int(ttl_days)} DAY")
    if table.settings:
        clauses.append(f"SETTINGS {table.settings}")
    tail = "\n".join(clauses)
    if cluster is None:
        return [
            f"CREATE TABLE IF NOT EXISTS {table.name} ({table.columns})\n"
            f"ENGINE = {table.engine}({version})\n{tail}"
        ]
    cluster = _checked_identifier(cluster, "cluster name")
    if table.everywhere:  # one shard-independent path: every node holds all of it
        path = "/clickhouse/tables/all/threadline/" + table.name
        return [
            f"CREATE TABLE IF NOT EXISTS {table.name} ON CLUSTER {cluster} ({table.columns})\n"
            f"ENGINE = Replicated{table.engine}('{path}', '{{replica}}'{', ' + version if version else ''})\n"
            f"{tail}"
        ]
    local = f"{table.name}_local"
    zookeeper_path = "/clickhouse/tables/{shard}/threadline/" + local
    engine = f"Replicated{table.engine}('{zookeeper_path}', '{{replica}}'"
    engine += f", {version})" if version else ")"
    return [
        f"CREATE TABLE IF NOT EXISTS {local} ON CLUSTER {cluster} ({table.columns})\n"
        f"ENGINE = {engine}\n{tail}",
        f"CREATE TABLE IF NOT EXISTS {table.name} ON CLUSTER {cluster} AS {local}\n"
        f"ENGINE = Distributed({cluster}, currentDatabase(), {local}, {table.shard_key})",
    ]


def add_column(table: Table, column: str, cluster: str | None) -> list[str]:
    if cluster is None:
        return [f"ALTER TABLE {table.name} ADD COLUMN IF NOT EXISTS {column}"]
    cluster = _checked_identifier(cluster, "cluster name")
    return [
        f"ALTER TABLE {name} ON CLUSTER {cluster} ADD COLUMN IF NOT EXISTS {column}"
        for name in (f"{table.name}_local", table.name)
    ]


def materialized_view(
    target: Table,
    group_by: str,
    aggregated: tuple[aggregates.Aggregate, ...],
    cluster: str | None,
    keys: str | None = None,
    joined: str = "",
) -> list[str]:
    """A view that aggregates every block inserted into ``events`` into ``target``; ``keys`` selects
    the ``group_by`` columns when some are computed, ``joined`` is an ARRAY JOIN clause.

    On a cluster it lives on every node, from the local events into the local target: a
    transaction's events and its aggregates are on the same shard.
    """
    source, into, on_cluster = EVENTS.name, target.name, ""
    if cluster is not None:
        source, into = f"{EVENTS.name}_local", f"{target.name}_local"
        on_cluster = f" ON CLUSTER {_checked_identifier(cluster, 'cluster name')}"
    source_clause = f"{source}\n{joined}" if joined else source
    return [
        f"CREATE MATERIALIZED VIEW IF NOT EXISTS {target.name}_mv{on_cluster} TO {into} AS\n"
        f"SELECT {keys or group_by},\n    {aggregates.aggregated(aggregated)}\n"
        f"FROM {source_clause}\nGROUP BY {group_by}"
    ]


def rollups_view(cluster: str | None) -> list[str]:
    """The rollups' view as of migration 15: its rows also record the inserts they hold."""
    return materialized_view(
        TRANSACTION_ROLLUPS, aggregates.ROLLUP_BY, (*aggregates.ROLLUP, aggregates.BATCHES), cluster
    )


def traces_view(cluster: str | None) -> list[str]:
    """The traces' view as of migration 15, likewise."""
    return materialized_view(
        WORKFLOW_TRACES, aggregates.TRACE_BY, (*aggregates.TRACE, aggregates.BATCHES), cluster
    )


def presence_view(cluster: str | None) -> list[str]:
    return materialized_view(
        ATTRIBUTE_PRESENCE,
        aggregates.PRESENCE_BY,
        aggregates.PRESENCE,
        cluster,
        keys=aggregates.PRESENCE_KEYS,
        joined=aggregates.PRESENCE_JOIN,
    )


def drop_table(name: str, cluster: str | None) -> list[str]:
    if cluster is None:
        return [f"DROP TABLE IF EXISTS {name}"]
    cluster = _checked_identifier(cluster, "cluster name")
    return [f"DROP TABLE IF EXISTS {table} ON CLUSTER {cluster}" for table in (name, f"{name}_local")]


# The events stored before migration 4 (and so before its views), in slices for the background.
PLAN_BACKFILL = f"""
INSERT INTO aggregate_backfill (slice, slices, cutoff, done, version)
WITH
    (SELECT count() FROM events) AS stored,
    toUInt32(ceil(ifNull(stored, 0) / {EVENTS_PER_BACKFILL_SLICE})) AS slices
SELECT toUInt32(number), slices, now64(6), false, 0
FROM numbers(slices)
WHERE (SELECT count() FROM aggregate_backfill) = 0  -- planned once, whoever applies it again
"""


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
        (3, []),  # transaction_state, kept by the collector: replaced by migration 4
        (
            4,
            [
                *add_column(EVENTS, "seq UInt64", cluster),
                *create_table(TRANSACTION_LINKS, cluster, None),
                *create_table(TRANSACTION_ROLLUPS, cluster, ttl_days),
                *create_table(WORKFLOW_TRACES, cluster, ttl_days),
                *create_table(AGGREGATE_BACKFILL, cluster, None),
                *materialized_view(TRANSACTION_ROLLUPS, aggregates.ROLLUP_BY, aggregates.ROLLUP, cluster),
                *materialized_view(WORKFLOW_TRACES, aggregates.TRACE_BY, aggregates.TRACE, cluster),
                PLAN_BACKFILL,
                *drop_table("transaction_state", cluster),
            ],
        ),
        (5, create_table(ALIAS_CONFLICTS, cluster, None)),
        (
            6,
            [
                statement
                for column in SPAN_COLUMNS_OF_MIGRATION_6
                for statement in add_column(SPANS, column, cluster)
            ],
        ),
        (
            7,
            [  # what OTLP exceptions carry beyond kind and message (exception.type, .stacktrace)
                *add_column(EVENTS, "error_type String", cluster),
                *add_column(EVENTS, "error_stacktrace String", cluster),
            ],
        ),
        (
            8,
            [  # ties in event time break by arrival: the view's expressions change, not its table
                *drop_table(f"{TRANSACTION_ROLLUPS.name}_mv", cluster),
                *materialized_view(TRANSACTION_ROLLUPS, aggregates.ROLLUP_BY, aggregates.ROLLUP, cluster),
            ],
        ),
        (
            9,
            [
                *create_table(ALERT_WATCHES, cluster, None),
                *create_table(ALERT_BASELINES, cluster, None),
                *create_table(ALERT_CURSORS, cluster, None),
            ],
        ),
        (
            10,
            [*create_table(TRANSACTION_STATES, cluster, ttl_days), *create_table(STATE_MARKS, cluster, None)],
        ),
        (
            11,
            [
                *create_table(ALERT_GROUPS, cluster, None),
                *create_table(ALERT_GROUP_NOTIFICATIONS, cluster, None),
                *create_table(ALERT_SILENCES, cluster, None),
            ],
        ),
        (13, create_table(TRANSACTION_RECONCILIATIONS, cluster, ttl_days)),
        (
            15,
            [  # which inserts each aggregate row holds, so a crash between the two is repaired
                *add_column(TRANSACTION_ROLLUPS, aggregates.BATCHES.column, cluster),
                *add_column(WORKFLOW_TRACES, aggregates.BATCHES.column, cluster),
                *drop_table(f"{TRANSACTION_ROLLUPS.name}_mv", cluster),
                *rollups_view(cluster),
                *drop_table(f"{WORKFLOW_TRACES.name}_mv", cluster),
                *traces_view(cluster),
            ],
        ),
        (16, create_table(TRANSACTION_DIMENSIONS, cluster, ttl_days)),
        (
            17,
            [  # embedded, nothing inserts during a migration; docs/scaling.md says what a server may miss
                *create_table(ATTRIBUTE_PRESENCE, cluster, ttl_days),
                FILL_PRESENCE,
                *presence_view(cluster),
            ],
        ),
        (18, [*create_table(TRANSACTION_EXCEPTIONS, cluster, ttl_days), CLEAR_STATE_MARKS]),
        (
            19,
            [  # kept by the state keeper: made again with POINT_READS, and derived again from the events
                statement
                for table in READ_BY_ID
                for statement in [*drop_table(table.name, cluster), *create_table(table, cluster, ttl_days)]
            ]
            + [CLEAR_STATE_MARKS],
        ),
    ]


# The first version whose views record their inserts (``aggregates.BATCHES``).
BATCHES_RECORDED = 15


VERSION_TABLE = Table(
    name="schema_migrations",
    columns="""
    version UInt32,
    applied_at DateTime64(3, 'UTC') DEFAULT now64(3)
    """,
    order_by="version",
    month_column=None,
    ttl_column=None,
    shard_key="",
    engine="MergeTree",
    everywhere=True,  # one schema version for the whole cluster
)


def version_table(cluster: str | None) -> list[str]:
    return create_table(VERSION_TABLE, cluster, None)
