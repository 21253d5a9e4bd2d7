"""Alert rules without a collector: the ``alerts:`` section, rule matching, payloads and backoff.

Every problem in the section is a WorkflowError reading ``file:line: reason``, like the rest of the
definitions file; the error cases below mark the line they expect with ``# <-``.
"""

from __future__ import annotations

import datetime as dt
import textwrap
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from tests.support.workflow_files import refused
from threadline.collector.alert_rules import AlertRule, Condition, Grouping, Receiver
from threadline.collector.alerts.evaluate import (
    Candidate,
    GaugeRow,
    Match,
    SystemRate,
    evaluate_rules,
    human_duration,
)
from threadline.collector.alerts.payloads import group_payload, render, slack_group_message, slack_message
from threadline.collector.config import EXAMPLE_WORKFLOWS
from threadline.collector.models import Sla, State, TransactionSummary, Violation, WaitingStep
from threadline.collector.workflows import load, parse

EXAMPLE_FILE = EXAMPLE_WORKFLOWS
NOW = dt.datetime(2026, 3, 2, 12, 0, tzinfo=dt.UTC)

HEAD = """\
workflows:
  order:
    sla: 1h
    steps: [{name: order.received, system: crm}, {name: order.booked, system: erp}]
"""


def rules_of(section: str) -> tuple[AlertRule, ...]:
    return parse(HEAD + textwrap.dedent(section)).alerts


def test_the_example_file_defines_receivers_from_the_environment_and_one_rule_of_each_kind() -> None:
    rules = {rule.name: rule for rule in load(EXAMPLE_FILE).alerts}

    assert {rule.when for rule in rules.values()} == {
        "sla_breached",
        "stuck_longer_than",
        "stuck_or_failed_count_above",
        "system_error_rate_above",
        "violation",
        "value_at_risk_above",
        "mismatch",
        "duplicate",
        "schema_drift",
    }
    breach = rules["q2c-sla-breach"]
    assert (breach.workflow, breach.severity) == ("quote-to-cash", "critical")
    assert [receiver.name for receiver in breach.receivers] == ["ops-webhook", "ops-slack"]
    webhook = breach.receivers[0]
    assert (webhook.name, webhook.type, webhook.url_env, webhook.url) == (
        "ops-webhook",
        "webhook",
        "OPS_WEBHOOK_URL",
        None,
    )
    assert rules["stuck-over-2h"].duration_s == 7200
    assert rules["netsuite-errors"].parameters() == {
        "window_seconds": 900.0,
        "system": "netsuite",
        "percent": 5.0,
        "min_events": 20,
    }
    assert (rules["value-at-risk"].amount, rules["value-at-risk"].currency) == (100000, "USD")


def test_a_rule_reads_every_parameter_of_its_condition() -> None:
    rules = rules_of("""
        alerts:
          receivers:
            hook: {type: webhook, url: "http://127.0.0.1:9/hook"}
            chat: {type: slack, url_env: CHAT_URL}
          rules:
            - {name: a, when: stuck_or_failed_count_above, threshold: 3, window: 90m, severity: info,
               receivers: hook}
            - {name: b, when: system_error_rate_above, percent: 2.5, window: 15m, severity: warning,
               receivers: [hook, chat], workflow: order, description: ERP errors}
            - {name: c, when: value_at_risk_above, amount: 1_000, currency: eur, severity: critical,
               receivers: [chat]}
    """)

    a, b, c = rules
    assert (a.threshold, a.window_s, a.per_transaction, a.receivers[0].url) == (
        3,
        5400,
        False,
        "http://127.0.0.1:9/hook",
    )
    assert (b.percent, b.min_events, b.system, b.workflow, b.description) == (
        2.5,
        1,
        None,
        "order",
        "ERP errors",
    )
    assert (c.amount, c.currency) == (1000, "EUR")
    assert [receiver.type for receiver in b.receivers] == ["webhook", "slack"]


def test_a_receiver_url_comes_from_its_variable_when_it_is_sent_and_never_shows() -> None:
    receiver = Receiver("chat", "slack", url_env="CHAT_URL")

    assert receiver.resolve_url({}) is None
    assert receiver.resolve_url({"CHAT_URL": " https://hooks.example/T0 "}) == "https://hooks.example/T0"
    assert receiver.target == "$CHAT_URL"
    assert "hooks" not in Receiver("x", "webhook", url="https://hooks.example/secret").target


def test_grouping_comes_from_the_rule_then_its_receiver_then_alertmanagers_defaults() -> None:
    first, second = rules_of(
        """
        alerts:
          receivers:
            chat: {type: slack, url: "http://x/c", group_by: [rule, system], group_wait: 1m,
                   repeat_interval: 12h}
            hook: {type: webhook, url: "http://x/h"}
          rules:
            - {name: a, when: failed, severity: info, receivers: [chat, hook], group_interval: 10m}
            - {name: b, when: failed, severity: info, receivers: [chat], group_by: [...]}
        """
    )
    chat, hook = first.receivers
    assert first.grouping_for(chat) == Grouping(("rule", "system"), 60, 600, 12 * 3600)
    assert first.grouping_for(hook) == Grouping(("rule",), 30, 600, 4 * 3600)
    assert second.grouping_for(chat) == Grouping(("...",), 60, 300, 12 * 3600)
    assert second.grouping_for(chat).labels == (
        "rule",
        "severity",
        "workflow",
        "system",
        "currency",
        "subject",
    )
    assert Grouping() == Grouping(("rule",), 30, 300, 4 * 3600)  # Alertmanager's defaults


def test_no_alerts_section_means_no_rules() -> None:
    assert parse(HEAD).alerts == ()
    assert rules_of("alerts: {receivers: {hook: {type: webhook, url: 'http://x/y'}}}") == ()


BAD_SECTIONS = [
    pytest.param("alerts: []   # <-", '"alerts" must be a mapping', id="not a mapping"),
    pytest.param(
        """
        alerts:
          rule: []   # <-
        """,
        '"alerts": unknown key "rule" (allowed: receivers, rules)',
        id="unknown section key",
    ),
    pytest.param(
        """
        alerts:
          receivers:
            hook: {url: "http://x/y"}   # <-
        """,
        'receiver "hook" has no type (webhook or slack)',
        id="receiver without type",
    ),
    pytest.param(
        """
        alerts:
          receivers:
            hook: {type: email, url: "http://x/y"}   # <-
        """,
        "receiver \"hook\": type must be webhook or slack, not 'email'",
        id="unknown receiver type",
    ),
    pytest.param(
        """
        alerts:
          receivers:
            hook: {type: webhook, url: "http://x/y", url_env: HOOK}   # <-
        """,
        'receiver "hook" needs exactly one of url or url_env',
        id="url and url_env",
    ),
    pytest.param(
        """
        alerts:
          receivers:
            hook:
              type: webhook
              url: ftp://x/y   # <-
        """,
        'receiver "hook": url must start with http:// or https://',
        id="not an http url",
    ),
    pytest.param(
        """
        alerts:
          receivers:
            hook: {type: webhook, url_env: "not a name"}   # <-
        """,
        'receiver "hook": url_env must be an environment variable name',
        id="bad variable name",
    ),
    pytest.param(
        """
        alerts:
          receivers: {hook: {type: webhook, url_env: HOOK}}
          rules:
            - {when: failed, severity: info, receivers: [hook]}   # <-
        """,
        "alert rule 1 has no name",
        id="rule without name",
    ),
    pytest.param(
        """
        alerts:
          receivers: {hook: {type: webhook, url_env: HOOK}}
          rules:
            - name: r
              when: stuck   # <-
              severity: info
              receivers: [hook]
        """,
        'alert rule "r": when must be one of sla_breached, stuck_longer_than, failed, violation, '
        "stuck_or_failed_count_above, system_error_rate_above, value_at_risk_above, mismatch, duplicate, "
        "predicted_breach, schema_drift, "
        "not 'stuck'",
        id="unknown condition",
    ),
    pytest.param(
        """
        alerts:
          receivers: {hook: {type: webhook, url_env: HOOK}}
          rules:
            - {name: r, when: stuck_longer_than, severity: info, receivers: [hook]}   # <-
        """,
        'alert rule "r": when: stuck_longer_than needs duration',
        id="missing duration",
    ),
    pytest.param(
        """
        alerts:
          receivers: {hook: {type: webhook, url_env: HOOK}}
          rules:
            - name: r   # <-
              when: system_error_rate_above
              percent: 5
              severity: info
              receivers: [hook]
        """,
        'alert rule "r": when: system_error_rate_above needs window',
        id="missing window",
    ),
    pytest.param(
        """
        alerts:
          receivers: {hook: {type: webhook, url_env: HOOK}}
          rules:
            - name: r
              when: sla_breached
              amount: 5   # <-
              severity: info
              receivers: [hook]
        """,
        'alert rule "r" (when: sla_breached): unknown key "amount"',
        id="parameter of another condition",
    ),
    pytest.param(
        """
        alerts:
          receivers: {hook: {type: webhook, url_env: HOOK}}
          rules:
            - {name: r, when: failed, receivers: [hook]}   # <-
        """,
        'alert rule "r" has no severity (critical, warning, info)',
        id="no severity",
    ),
    pytest.param(
        """
        alerts:
          receivers: {hook: {type: webhook, url_env: HOOK}}
          rules:
            - name: r
              when: failed
              severity: page-me   # <-
              receivers: [hook]
        """,
        "alert rule \"r\": severity must be one of critical, warning, info, not 'page-me'",
        id="unknown severity",
    ),
    pytest.param(
        """
        alerts:
          receivers: {hook: {type: webhook, url_env: HOOK}}
          rules:
            - name: r
              when: failed
              severity: info
              receivers: [hook, pager]   # <-
        """,
        'alert rule "r": receivers names unknown receiver "pager" (known: hook)',
        id="unknown receiver",
    ),
    pytest.param(
        """
        alerts:
          receivers: {hook: {type: webhook, url_env: HOOK}}
          rules:
            - name: r
              when: failed
              severity: info
              receivers: []   # <-
        """,
        'alert rule "r" names no receivers',
        id="no receivers",
    ),
    pytest.param(
        """
        alerts:
          receivers: {hook: {type: webhook, url_env: HOOK}}
          rules:
            - name: r
              when: failed
              workflow: orders   # <-
              severity: info
              receivers: [hook]
        """,
        'alert rule "r": workflow names unknown workflow "orders"',
        id="unknown workflow",
    ),
    pytest.param(
        """
        alerts:
          receivers: {hook: {type: webhook, url_env: HOOK}}
          rules:
            - {name: r, when: failed, severity: info, receivers: [hook]}
            - {name: r, when: violation, severity: info, receivers: [hook]}   # <-
        """,
        'duplicate alert rule "r" (first defined on line 8)',
        id="duplicate rule",
    ),
    pytest.param(
        """
        alerts:
          receivers: {hook: {type: webhook, url_env: HOOK}}
          rules:
            - name: r
              when: stuck_or_failed_count_above
              threshold: 2.5   # <-
              window: 1h
              severity: info
              receivers: [hook]
        """,
        "alert rule \"r\": threshold must be a whole number at least 0, not '2.5'",
        id="threshold not whole",
    ),
    pytest.param(
        """
        alerts:
          receivers: {hook: {type: webhook, url_env: HOOK}}
          rules:
            - name: r
              when: system_error_rate_above
              percent: 150   # <-
              window: 1h
              severity: info
              receivers: [hook]
        """,
        "alert rule \"r\": percent must be a number from 0 to 100, not '150'",
        id="percent over 100",
    ),
    pytest.param(
        """
        alerts:
          receivers: {hook: {type: webhook, url_env: HOOK}}
          rules:
            - name: r
              when: system_error_rate_above
              percent: 5
              window: soon   # <-
              severity: info
              receivers: [hook]
        """,
        "alert rule \"r\": window: invalid duration 'soon'",
        id="bad window",
    ),
    pytest.param(
        """
        alerts:
          receivers: {hook: {type: webhook, url_env: HOOK}}
          rules:
            - name: r
              when: value_at_risk_above
              amount: 1000
              currency: dollars   # <-
              severity: info
              receivers: [hook]
        """,
        'alert rule "r": currency must be a 3-letter code like USD',
        id="bad currency",
    ),
    pytest.param(
        """
        alerts:
          receivers:
            hook: {type: webhook, url: "http://x/h", group_by: [rule, colour]}   # <-
          rules: []
        """,
        "receiver \"hook\": group_by names unknown label 'colour' (one of rule, severity, workflow, system, "
        "currency, subject, or '...' for every label)",
        id="unknown group_by label",
    ),
    pytest.param(
        """
        alerts:
          receivers:
            hook: {type: webhook, url: "http://x/h"}
          rules:
            - name: r
              when: failed
              severity: info
              receivers: [hook]
              group_interval: soon   # <-
        """,
        "alert rule \"r\": group_interval: invalid duration 'soon'",
        id="bad group_interval",
    ),
    pytest.param(
        """
        alerts:
          receivers:
            hook: {type: webhook, url: "http://x/h", group_wait: 0s}   # <-
          rules: []
        """,
        "receiver \"hook\": group_wait: invalid duration '0s': must be more than 0 seconds",
        id="zero group_wait",
    ),
    pytest.param(
        """
        alerts:
          rules:
            - {name: !!python/object/apply:os.system [echo unsafe]}   # <-
        """,
        "invalid YAML: could not determine a constructor for the tag 'tag:yaml.org,2002:python/object/apply",
        id="unsafe tag",
    ),
]


BAD_SECTIONS += [
    pytest.param(
        """
        alerts:
          receivers: {hook: {type: webhook, url: "http://x/y"}}
          rules:
            - name: emea
              when: failed
              severity: warning
              receivers: hook
              dimensions: {region: EMEA}   # <-
        """,
        'alert rule "emea": dimensions names "region", which no workflow declares (declared: none)',
        id="undeclared dimension",
    ),
    pytest.param(
        """
        alerts:
          receivers: {hook: {type: webhook, url: "http://x/y"}}
          rules:
            - name: many
              when: stuck_or_failed_count_above
              threshold: 3
              window: 1h
              severity: warning
              receivers: hook
              dimensions: {region: EMEA}   # <-
        """,
        'alert rule "many": dimensions applies to the per-transaction rules',
        id="dimensions of a count rule",
    ),
    pytest.param(
        """
        alerts:
          receivers: {hook: {type: webhook, url: "http://x/y"}}
          rules:
            - name: drift
              when: schema_drift
              severity: warning
              receivers: hook
              workflow: quote-to-cash   # <-
        """,
        "alert rule \"drift\": a schema drift is a system's, not a workflow's: name its system",
        id="workflow of a schema drift rule",
    ),
]


@pytest.mark.parametrize(("section", "reason"), BAD_SECTIONS)
def test_a_bad_alerts_section_names_the_file_the_line_and_the_reason(
    tmp_path: Path, section: str, reason: str
) -> None:
    text = HEAD + textwrap.dedent(section).lstrip("\n")
    error, path, line = refused(tmp_path, text)

    assert str(error).startswith(f"{path}:{line}: {reason}"), str(error)


# --- matching ---------------------------------------------------------------------------------

HOOK = Receiver("hook", "webhook", url="http://127.0.0.1:9/hook")


def rule(when: Condition, **fields: Any) -> AlertRule:
    return AlertRule(
        name=fields.pop("name", when), when=when, severity="warning", receivers=(HOOK,), **fields
    )


def summary(key: str, state: State = "stuck", waiting_hours: float = 3, **fields: Any) -> TransactionSummary:
    started = NOW - dt.timedelta(hours=5)
    values: dict[str, Any] = {
        "correlation_id": key,
        "workflow": "order",
        "state": state,
        "started_at": started,
        "last_activity": started,
        "completed_at": None,
        "failed_at": None,
        "waiting_on": [
            WaitingStep(
                step="order.booked",
                system="erp",
                due_since=NOW - dt.timedelta(hours=waiting_hours),
                within_seconds=None,
                overdue=False,
            )
        ]
        if state in ("stuck", "in_progress")
        else [],
        "sla": Sla(limit_seconds=3600, elapsed_seconds=5 * 3600, breached=True, breached_by_seconds=4 * 3600),
        "missing_steps": [],
        "violations": [],
        "systems": ["crm"],
        "amount": None,
        "currency": None,
        "event_count": 1,
        "error_count": 0,
        "retry_count": 0,
    }
    values.update(fields)
    return TransactionSummary(**values)


def holding(
    rules: list[AlertRule],
    candidates: list[Candidate],
    rates: Sequence[SystemRate] = (),
    gauges: Sequence[GaugeRow] = (),
) -> dict[tuple[str, str], Match]:
    measured = evaluate_rules(rules, candidates, lambda _: rates, NOW, gauges)
    return {key: match for key, match in measured.items() if match.holds}


def test_per_transaction_rules_hold_per_transaction_and_never_for_a_resolved_one() -> None:
    candidates = [
        Candidate(summary("A", waiting_hours=3), resolved=False),
        Candidate(summary("B", waiting_hours=1), resolved=False),
        Candidate(summary("C", waiting_hours=9), resolved=True),
        Candidate(summary("D", state="completed"), resolved=False),  # completed late: breached, not open
        Candidate(summary("E", state="failed", failed_at=NOW), resolved=False),
        Candidate(
            summary("F", state="in_progress", violations=[Violation(step="b", before="a")]), resolved=False
        ),
    ]

    assert set(holding([rule("stuck_longer_than", duration_s=2 * 3600)], candidates)) == {
        ("stuck_longer_than", "A")
    }
    assert set(holding([rule("sla_breached")], candidates)) == {
        ("sla_breached", "A"),
        ("sla_breached", "B"),
        ("sla_breached", "F"),
    }
    assert set(holding([rule("failed")], candidates)) == {("failed", "E")}
    assert set(holding([rule("violation")], candidates)) == {("violation", "F")}
    assert set(holding([rule("failed", workflow="other")], candidates)) == set()
    text = holding([rule("stuck_longer_than", duration_s=60)], candidates)["stuck_longer_than", "A"].summary
    assert text == "order A is stuck: no progress for 3h, waiting on order.booked (erp)"


def test_a_rule_with_dimensions_holds_only_for_transactions_with_each_value() -> None:
    candidates = [
        Candidate(summary("EMEA-E", dimensions={"region": "EMEA", "segment": "enterprise"}), resolved=False),
        Candidate(summary("EMEA-SMB", dimensions={"region": "EMEA", "segment": "smb"}), resolved=False),
        Candidate(summary("AMER", dimensions={"region": "AMER"}), resolved=False),
        Candidate(summary("NONE"), resolved=False),  # carries no dimension
    ]
    emea = rule("sla_breached", dimensions=(("region", "EMEA"),))
    assert {key for _, key in holding([emea], candidates)} == {"EMEA-E", "EMEA-SMB"}
    both = rule("sla_breached", dimensions=(("region", "EMEA"), ("segment", "enterprise")))
    assert {key for _, key in holding([both], candidates)} == {"EMEA-E"}


def test_dimensions_of_a_rule_are_read_from_the_file_when_a_workflow_declares_them() -> None:
    [emea] = parse(
        HEAD.replace("    sla: 1h\n", "    sla: 1h\n    dimensions: [region, segment]\n")
        + textwrap.dedent(
            """
            alerts:
              receivers: {hook: {type: webhook, url: "http://x/y"}}
              rules:
                - {name: emea, when: failed, severity: warning, receivers: hook,
                   dimensions: {segment: enterprise, attributes.region: EMEA}}
            """
        )
    ).alerts
    assert emea.dimensions == (("region", "EMEA"), ("segment", "enterprise"))


def test_the_count_rule_counts_stuck_now_and_failed_within_the_window_only() -> None:
    candidates = [
        Candidate(summary("A"), resolved=False),
        Candidate(summary("B"), resolved=True),
        Candidate(summary("C", state="failed", failed_at=NOW - dt.timedelta(minutes=10)), resolved=False),
        Candidate(summary("D", state="failed", failed_at=NOW - dt.timedelta(hours=2)), resolved=False),
    ]
    # Stuck now is counted over every transaction (the gauges: A stuck; B resolved leaves the count).
    gauges = [
        GaugeRow("order", "stuck", "", 1, 1, 1, 0, 0.0),
        GaugeRow("other", "stuck", "", 4, 0, 0, 0, 0.0),
    ]
    count = rule("stuck_or_failed_count_above", threshold=1, window_s=3600, workflow="order")

    match = evaluate_rules([count], candidates, lambda _: [], NOW, gauges)["stuck_or_failed_count_above", ""]

    assert match.holds and set(match.transactions) == {"A", "C"}
    assert match.figures == {"count": 2, "stuck": 1, "failed": 1, "threshold": 1}
    assert not evaluate_rules(
        [rule("stuck_or_failed_count_above", threshold=2, window_s=3600, workflow="order")],
        candidates,
        lambda _: [],
        NOW,
        gauges,
    )["stuck_or_failed_count_above", ""].holds


def test_error_rate_and_value_at_risk_hold_per_system_and_per_currency() -> None:
    rates = [
        SystemRate("erp", 10, 2, ("A",)),
        SystemRate("crm", 100, 2, ("B",)),
        SystemRate("billing", 1, 1, ("C",)),
    ]
    candidates = [
        Candidate(summary("A", amount=700.0, currency="USD"), resolved=False),
        Candidate(summary("B", amount=500.0, currency="USD"), resolved=False),
        Candidate(summary("C", amount=900.0, currency="EUR"), resolved=False),
        Candidate(summary("D", amount=5000.0, currency="USD"), resolved=True),
    ]

    # The totals count every transaction (the gauges, as the overview); the candidates name them.
    gauges = [
        GaugeRow("order", "stuck", "USD", 3, 3, 1, 3, 1200.0 + 300.0),  # 300 USD from one not a candidate
        GaugeRow("order", "stuck", "EUR", 1, 1, 0, 1, 900.0),
        GaugeRow("order", "completed", "USD", 5, 0, 0, 0, 0.0),
    ]
    errors = holding([rule("system_error_rate_above", percent=5, window_s=900, min_events=2)], [], rates)
    risk = holding([rule("value_at_risk_above", amount=1000)], candidates, gauges=gauges)
    usd_only = holding([rule("value_at_risk_above", amount=100, currency="USD")], candidates, gauges=gauges)
    other_workflow = holding(
        [rule("value_at_risk_above", amount=1, workflow="refund")], candidates, gauges=gauges
    )

    assert set(errors) == {("system_error_rate_above", "erp")}  # crm is at 2%, billing has too few events
    assert errors["system_error_rate_above", "erp"].figures["error_rate_percent"] == 20
    assert set(risk) == {("value_at_risk_above", "USD")}  # 1500 USD; 900 EUR is under
    assert risk["value_at_risk_above", "USD"].figures == {
        "value_at_risk": 1500.0,
        "currency": "USD",
        "transactions": 3,
    }
    assert risk["value_at_risk_above", "USD"].transactions == ("A", "B")  # D is resolved
    assert set(usd_only) == {("value_at_risk_above", "USD")}
    assert other_workflow == {}


def test_durations_read_like_the_definitions_file() -> None:
    assert [human_duration(s) for s in (5, 60, 5400, 86400 + 4 * 3600 + 60)] == ["5s", "1m", "1h30m", "1d4h"]


# --- payloads and delivery settings -----------------------------------------------------------

PAYLOAD: dict[str, Any] = {
    "schema": "threadline.alert/v1",
    "status": "firing",
    "tenant": "acme",
    "summary": "order A <1> is stuck",
    "alert": {
        "id": "a1",
        "rule": "stuck",
        "condition": "stuck_longer_than",
        "severity": "critical",
        "workflow": "order",
        "subject": "A",
        "description": None,
        "parameters": {},
        "fired_at": NOW.isoformat(),
        "resolved_at": None,
        "resolution": None,
        "link": "http://dash/alerts?alert=a1",
    },
    "figures": {},
    "transactions_total": 12,
    "transactions": [
        {
            "correlation_id": f"K-{n}",
            "keys": {"erp.order": f"SO-{n}"},
            "workflow": "order",
            "state": "stuck",
            "waiting_on": [{"step": "order.booked", "system": "erp", "due_since": NOW.isoformat()}],
            "amount": 10.0,
            "currency": "USD",
            "link": f"http://dash/transactions/K-{n}",
        }
        for n in range(12)
    ],
}


def test_a_slack_message_has_text_and_blocks_with_links_to_the_dashboard() -> None:
    message = slack_message(PAYLOAD)

    assert set(message) == {"text", "blocks"}
    assert message["text"].startswith(":red_circle: FIRING [critical] stuck: order A <1> is stuck")
    headline, listing, context = message["blocks"]
    assert headline["text"]["type"] == "mrkdwn" and "order A &lt;1&gt; is stuck" in headline["text"]["text"]
    lines = listing["text"]["text"].splitlines()
    assert lines[0].startswith("• <http://dash/transactions/K-0|K-0> · order, stuck · (erp.order SO-0)")
    assert "waiting on order.booked (erp)" in lines[0]
    assert lines[-1] == "… and 2 more" and len(lines) == 11
    assert context["elements"][0]["text"].startswith("<http://dash/alerts?alert=a1|Open in Threadline>")


def test_a_webhook_gets_the_payload_with_its_notification_id() -> None:
    assert render("webhook", PAYLOAD, "n1") == {**PAYLOAD, "notification_id": "n1"}
    assert render("slack", PAYLOAD, "n1") == slack_message(PAYLOAD)


def test_a_group_notification_lists_each_alert_it_tells_of_and_slack_gets_a_line_for_each() -> None:
    alerts = [
        {
            **PAYLOAD,
            "alert": {**PAYLOAD["alert"], "subject": f"K-{n}"},
            "transactions": PAYLOAD["transactions"][n : n + 1],
        }
        for n in range(12)
    ]
    alerts[-1] = {**alerts[-1], "status": "resolved"}
    payload = group_payload(
        tenant="acme",
        receiver="chat",
        key="g1",
        labels={"rule": "stuck"},
        alerts=alerts,
        firing=30,
        repeat=False,
        dashboard_url="http://dash",
    )
    assert payload["schema"] == "threadline.alert-group/v1" and payload["status"] == "firing"
    assert payload["summary"] == "stuck: 30 firing, 11 new, 1 resolved"
    assert (payload["new"], payload["resolved"], payload["firing"]) == (11, 1, 30)
    assert [alert["alert"]["subject"] for alert in payload["alerts"]] == [f"K-{n}" for n in range(12)]
    assert payload["group"]["link"] == "http://dash/alerts?rule=stuck"
    assert render("webhook", payload, "n1") == {**payload, "notification_id": "n1"}

    message = render("slack", payload, "n1")
    assert message == slack_group_message(payload)
    assert message["text"] == ":red_circle: FIRING [critical] stuck: 30 firing, 11 new, 1 resolved"
    lines = message["blocks"][1]["text"]["text"].splitlines()
    assert len(lines) == 12 and lines[0].startswith("• <http://dash/transactions/K-0|K-0> order A &lt;1&gt;")
    assert lines[-1].startswith("• :white_check_mark: <http://dash/transactions/K-11|K-11>")


def test_a_slack_message_splits_a_long_group_into_sections_slack_accepts() -> None:
    alerts = [
        {
            **PAYLOAD,
            "alert": {**PAYLOAD["alert"], "subject": f"K-{n}"},
            "transactions": PAYLOAD["transactions"][:1],
        }
        for n in range(3000)
    ]
    payload = group_payload(
        tenant="",
        receiver="chat",
        key="g",
        labels={"rule": "stuck"},
        alerts=alerts,
        firing=3000,
        repeat=False,
        dashboard_url="http://dash",
    )
    blocks = slack_group_message(payload)["blocks"]
    assert len(blocks) <= 50
    assert all(len(block["text"]["text"]) <= 3000 for block in blocks if block["type"] == "section")
    assert blocks[-2]["text"]["text"].endswith("more")
