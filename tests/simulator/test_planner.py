"""Planning without sending: timing, faults, keys and amounts of the planned transactions."""

from __future__ import annotations

import itertools
import random
import re
from collections import Counter

import pytest

from tests.simulator.conftest import NOW
from threadline.collector.workflows import Workflows
from threadline.simulator.faults import DAY_S, Fault, SlowSchedule, SlowWindow
from threadline.simulator.history import History, showcases
from threadline.simulator.ids import KeyFactory
from threadline.simulator.planner import Planner, Transaction, TransactionSpec
from threadline.simulator.scenarios import SCRIPTS, scenarios_for

T0 = NOW.timestamp()
KEY_SHAPES = {
    "quote-to-cash": r"OPP-\d{6}",
    "customer-onboarding": r"ACC-\d{5}",
    "subscription-renewal": r"OPP-\d{6}",
    "support-credit": r"CASE-\d{5}",
}


def planner_for(workflows: Workflows, slow: SlowSchedule | None = None) -> Planner:
    return Planner(scenarios_for(workflows), slow or SlowSchedule("test", ()))


def plan(planner: Planner, workflow: str, fault: Fault, seed: str, slow: bool = False) -> Transaction:
    spec = TransactionSpec(workflow, T0, fault, seed, slow=slow)
    return planner.materialize(planner.timeline(spec), KeyFactory(random.Random(seed)))


def test_every_example_workflow_has_its_own_script(workflows: Workflows) -> None:
    scenarios = scenarios_for(workflows)
    assert set(scenarios) == {d.name for d in workflows}
    assert {type(s) for s in scenarios.values()} == set(SCRIPTS)  # none fell back to the generic one


@pytest.mark.parametrize("workflow", KEY_SHAPES)
def test_without_faults_a_transaction_completes_within_its_sla_and_never_looks_stuck(
    workflows: Workflows, workflow: str
) -> None:
    """Only injected faults and incidents make transactions stuck or late, so each can be traced back."""
    planner = planner_for(workflows)
    definition = workflows.get(workflow)
    assert definition is not None and definition.sla_s is not None
    for number in range(60):
        transaction = plan(planner, workflow, Fault.NONE, f"calm/{number}")
        timeline = transaction.timeline
        assert timeline.outcome == "completed"
        done = timeline.progress()
        assert done[0] == T0
        assert done[-1] - T0 < definition.sla_s
        assert max(b - a for a, b in itertools.pairwise(done)) < definition.stuck_after_s
        steps = [event.step for event in transaction.events]
        assert set(steps) == {s.name for s in definition.steps if s.name not in definition.fail_on}
        for event in transaction.events:  # every step comes after the steps it must follow
            step = definition.step(event.step)
            assert step is not None
            assert all(other.at < event.at for other in transaction.events if other.step in step.after)


@pytest.mark.parametrize("workflow", KEY_SHAPES)
def test_keys_amounts_and_currencies_look_like_the_real_systems(workflows: Workflows, workflow: str) -> None:
    planner = planner_for(workflows)
    currencies: Counter[str] = Counter()
    for number in range(40):
        transaction = plan(planner, workflow, Fault.NONE, f"money/{number}")
        assert re.fullmatch(KEY_SHAPES[workflow], transaction.correlation_id)
        for kind, key in transaction.aliases.items():
            prefix = {"erp.sales_order": "SO", "erp.customer": "CUST", "billing.invoice": "INV"}.get(
                kind, "CM"
            )
            assert re.fullmatch(rf"{prefix}-\d{{5,6}}", key)
        amounts = {(e.amount, e.currency) for e in transaction.events if e.amount is not None}
        assert len(amounts) == 1  # one deal, told the same way by every system
        (amount, currency), *_ = amounts
        assert amount > 0 and currency is not None
        currencies[currency] += 1
    assert set(currencies) <= {"USD", "EUR", "GBP"}
    assert currencies["USD"] > 10


def test_aliases_are_announced_by_one_system_and_used_alone_by_another(workflows: Workflows) -> None:
    transaction = plan(planner_for(workflows), "quote-to-cash", Fault.NONE, "alias")
    by_step = {event.step: event for event in transaction.events}
    sales_order = transaction.aliases["erp.sales_order"]
    assert by_step["erp.order.created"].correlation_id == transaction.correlation_id
    assert by_step["erp.order.created"].aliases == {"erp.sales_order": sales_order}
    assert (
        by_step["billing.subscription.activated"].correlation_id == sales_order
    )  # Stripe knows the order only


def fault_plans(workflows: Workflows, workflow: str, fault: Fault) -> list[Transaction]:
    planner = planner_for(workflows)
    return [plan(planner, workflow, fault, f"{fault}/{number}") for number in range(20)]


@pytest.mark.parametrize("workflow", KEY_SHAPES)
def test_a_transient_error_is_retried_until_it_succeeds(workflows: Workflows, workflow: str) -> None:
    for transaction in fault_plans(workflows, workflow, Fault.TRANSIENT):
        errors = [e for e in transaction.events if e.status == "error"]
        assert errors and all(
            e.error is not None and e.error == {"kind": "transient", "message": e.error["message"]}
            for e in errors
        )
        retried = errors[0].step
        attempts = sorted((e.attempt or 0, e.status, e.at) for e in transaction.events if e.step == retried)
        assert [a for a, _, _ in attempts] == list(range(1, len(attempts) + 1))
        assert attempts[-1][1] == "ok" and attempts[-1][0] >= 2
        assert [t for _, _, t in attempts] == sorted(t for _, _, t in attempts)
        assert transaction.timeline.outcome == "completed"


@pytest.mark.parametrize("workflow", KEY_SHAPES)
def test_a_rejection_fails_the_transaction_at_a_fail_on_step(workflows: Workflows, workflow: str) -> None:
    definition = workflows.get(workflow)
    assert definition is not None
    for transaction in fault_plans(workflows, workflow, Fault.REJECTION):
        steps = [e.step for e in transaction.events]
        assert set(steps) & set(definition.fail_on)
        assert not set(steps) & set(definition.complete_on)
        assert transaction.timeline.outcome == "failed"
        failure = next(e for e in transaction.events if e.step in definition.fail_on)
        assert failure.at == max(e.at for e in transaction.events)  # nothing happens after it


@pytest.mark.parametrize("workflow", KEY_SHAPES)
def test_a_stuck_transaction_stops_before_completing(workflows: Workflows, workflow: str) -> None:
    definition = workflows.get(workflow)
    assert definition is not None
    for transaction in fault_plans(workflows, workflow, Fault.STUCK):
        steps = {e.step for e in transaction.events}
        assert (
            len(steps) >= 1
            and not steps & set(definition.complete_on)
            and not steps & set(definition.fail_on)
        )
        assert transaction.timeline.outcome == "open"


def test_a_credit_is_posted_before_finance_approved_it(workflows: Workflows) -> None:
    never = after_the_fact = 0
    for transaction in fault_plans(workflows, "support-credit", Fault.VIOLATION):
        at = {e.step: e.at for e in transaction.events}
        assert "billing.credit.posted" in at
        if "erp.credit.approved" in at:
            assert at["billing.credit.posted"] < at["erp.credit.approved"]
            after_the_fact += 1
        else:
            never += 1
        assert transaction.timeline.outcome == "completed"  # completed, but not compliant
    assert never and after_the_fact


@pytest.mark.parametrize("workflow", KEY_SHAPES)
def test_a_duplicate_is_the_same_event_delivered_twice(workflows: Workflows, workflow: str) -> None:
    for transaction in fault_plans(workflows, workflow, Fault.DUPLICATE):
        counts = Counter(e.event_id for e in transaction.events)
        (event_id, twice), *rest = counts.most_common()
        assert twice == 2 and all(n == 1 for _, n in rest)
        first, second = (e for e in transaction.events if e.event_id == event_id)
        assert second.redelivery and second.deliver_at > first.deliver_at
        assert {**vars(first), "deliver_at": 0, "redelivery": False} == {
            **vars(second),
            "deliver_at": 0,
            "redelivery": False,
        }


@pytest.mark.parametrize("workflow", KEY_SHAPES)
def test_out_of_order_delivers_an_event_after_a_later_step(workflows: Workflows, workflow: str) -> None:
    for transaction in fault_plans(workflows, workflow, Fault.OUT_OF_ORDER):
        sent = list(transaction.events)  # in delivery order
        assert sent != sorted(sent, key=lambda e: e.at)
        late = max(sent, key=lambda e: e.deliver_at - e.at)
        assert any(e.at > late.at and e.deliver_at < late.deliver_at for e in sent)


@pytest.mark.parametrize(
    ("workflow", "record_step", "kind"),
    [
        ("quote-to-cash", "erp.order.created", "erp.sales_order"),
        ("customer-onboarding", "erp.customer.created", "erp.customer"),
    ],
)
def test_a_late_alias_leaves_a_record_keyed_by_its_own_number_until_the_alias_arrives(
    workflows: Workflows, workflow: str, record_step: str, kind: str
) -> None:
    for transaction in fault_plans(workflows, workflow, Fault.LATE_ALIAS):
        number = transaction.aliases[kind]
        record = next(e for e in transaction.events if e.step == record_step)
        assert record.correlation_id == number and not record.aliases
        announcing = [e for e in transaction.events if e.aliases.get(kind) == number]
        assert len(announcing) == 1
        assert announcing[0].correlation_id == transaction.correlation_id
        assert announcing[0].at > record.at and announcing[0].deliver_at > record.deliver_at


def test_a_slow_system_incident_stretches_that_systems_steps(workflows: Workflows) -> None:
    calm_planner = planner_for(workflows)
    window = SlowWindow("netsuite", T0 - 60, T0 + 3 * 3600, 20.0)
    slow = SlowSchedule("test", ("netsuite",), chance_per_day=0, incidents=(window,))
    slow_planner = planner_for(workflows, slow)
    for number in range(10):
        calm = plan(calm_planner, "quote-to-cash", Fault.NONE, f"slow/{number}")
        slowed = plan(slow_planner, "quote-to-cash", Fault.NONE, f"slow/{number}", slow=True)
        assert "erp.customer.validated" in slowed.timeline.slowed
        assert all(s.startswith("erp.") for s in slowed.timeline.slowed)
        calm_at = {e.step: e.at for e in calm.events}
        slow_at = {e.step: e.at for e in slowed.events}
        assert slow_at["erp.customer.validated"] - T0 == pytest.approx(
            20 * (calm_at["erp.customer.validated"] - T0)
        )
        assert slow_at["support.entitlement.created"] > calm_at["support.entitlement.created"]
        durations = {e.step: e.duration_ms for e in slowed.events}
        assert durations["erp.customer.validated"] > 2 * 650  # the API calls are slow too


def test_every_history_has_an_incident(workflows: Workflows) -> None:
    systems = ("cpq", "mulesoft", "netsuite", "salesforce", "stripe", "zendesk")
    for seed in range(20):
        schedule = SlowSchedule(str(seed), systems, ensure=(T0 - 0.5 * DAY_S, T0 - 3600))
        assert list(schedule.windows(T0 - 0.5 * DAY_S, T0 - 3600))


def test_history_has_every_showcase_and_a_realistic_volume(workflows: Workflows) -> None:
    scenarios = scenarios_for(workflows)
    systems = tuple(sorted({s.system for d in workflows for s in d.steps if s.system}))
    planner = Planner(scenarios, SlowSchedule("7", systems, ensure=(T0 - 2 * DAY_S, T0 - 3600)))
    timelines = History(planner, "7", T0, days=2, per_day=100).timelines()
    labels = {t.spec.label for t in timelines if t.spec.label}
    assert labels == {case.label for case in showcases(scenarios)} | {"slow_system"}
    assert len(timelines) == 200 + len(labels)
    assert [t.spec.start for t in timelines] == sorted(t.spec.start for t in timelines)
    traffic = [t for t in timelines if not t.spec.label]
    assert all(T0 - 2 * DAY_S <= t.spec.start <= T0 for t in traffic)
    faults = Counter(t.fault for t in traffic)
    assert faults[Fault.NONE] > 0.5 * len(traffic)
    for fault in (Fault.TRANSIENT, Fault.DUPLICATE, Fault.OUT_OF_ORDER):
        assert 0 < faults[fault] < 0.15 * len(traffic)
