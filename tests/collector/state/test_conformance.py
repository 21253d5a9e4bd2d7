"""Which variants follow their workflow's definition, and how the others deviate (state/conformance.py).

The definition is the example's quote-to-cash: crm.opportunity.won; erp.customer.validated and
cpq.quote.approved in parallel after it; erp.order.created after both; erp.order.rejected (fail_on)
or billing.subscription.activated after the order; support.entitlement.created (complete_on) last.
"""

from __future__ import annotations

import pytest

from threadline.collector.state.conformance import Judged, judge, summary
from threadline.collector.workflows import WorkflowDefinition, parse

QUOTE_TO_CASH = """
workflows:
  quote-to-cash:
    complete_on: [support.entitlement.created]
    fail_on: [erp.order.rejected]
    steps:
      - {name: crm.opportunity.won}
      - {name: erp.customer.validated}
      - {name: cpq.quote.approved, after: [crm.opportunity.won]}
      - {name: erp.order.created, after: [erp.customer.validated, cpq.quote.approved]}
      - {name: erp.order.rejected, after: [erp.order.created]}
      - {name: billing.subscription.activated, after: [erp.order.created]}
      - {name: support.entitlement.created}
"""


def quote_to_cash() -> WorkflowDefinition:
    definition = parse(QUOTE_TO_CASH).get("quote-to-cash")
    assert definition is not None
    return definition


DEFINITION = quote_to_cash()

WON, VALIDATED, QUOTED, ORDERED, REJECTED, BILLED, ENTITLED = DEFINITION.step_names()
HAPPY = [WON, VALIDATED, QUOTED, ORDERED, BILLED, ENTITLED]


def named(steps: list[str]) -> list[str]:
    return [found.description for found in judge(DEFINITION, steps).deviations]


@pytest.mark.parametrize(
    "steps",
    [
        HAPPY,
        [WON, QUOTED, VALIDATED, ORDERED, BILLED, ENTITLED],  # parallel steps, either order
        [WON, VALIDATED, VALIDATED, QUOTED, ORDERED, BILLED, ENTITLED],  # a retry
        [WON, VALIDATED, QUOTED, VALIDATED, ORDERED, BILLED, ENTITLED],  # a retry after a parallel step
        [WON, VALIDATED, QUOTED, ORDERED, REJECTED],  # failed as the definition allows
        [WON, QUOTED],  # open: the rest is still to come
    ],
)
def test_a_variant_that_follows_the_definition_conforms(steps: list[str]) -> None:
    verdict = judge(DEFINITION, steps)
    assert verdict.deviations == ()
    assert verdict.conforming


def test_the_outcome_is_read_from_the_steps() -> None:
    assert judge(DEFINITION, HAPPY).outcome == "completed"
    assert judge(DEFINITION, [WON, VALIDATED, QUOTED, ORDERED, REJECTED]).outcome == "failed"
    assert judge(DEFINITION, [*HAPPY, REJECTED]).outcome == "failed"  # the failure is the news
    assert judge(DEFINITION, [WON, VALIDATED]).outcome == "open"


def test_a_step_before_one_it_must_come_after_is_named_with_both() -> None:
    assert named([WON, VALIDATED, QUOTED, BILLED, ORDERED, ENTITLED]) == [f"{BILLED} before {ORDERED}"]
    # Open: the prerequisite has not come yet, so whatever comes later, the step came first.
    assert named([WON, VALIDATED, QUOTED, BILLED]) == [f"{BILLED} before {ORDERED}"]
    # Only the steps it must come directly after: the chain's first broken link.
    assert named([ORDERED, WON, VALIDATED, QUOTED, BILLED, ENTITLED]) == [
        f"{ORDERED} before {VALIDATED}",
        f"{ORDERED} before {QUOTED}",
    ]


def test_a_completed_or_failed_transaction_misses_the_steps_it_never_did_an_open_one_does_not() -> None:
    assert named([WON, QUOTED, ORDERED, BILLED, ENTITLED]) == [f"{VALIDATED} missing"]
    assert named([WON, QUOTED, ORDERED, REJECTED]) == [f"{VALIDATED} missing"]
    # Open, it is only judged on the order so far: the order came before the validation.
    assert named([WON, QUOTED, ORDERED]) == [f"{ORDERED} before {VALIDATED}"]
    # A failure step is an outcome, never missing.
    assert named(HAPPY) == []


def test_a_step_the_definition_does_not_name_is_a_deviation() -> None:
    assert named([*HAPPY, "support.survey.sent"]) == ["support.survey.sent not in the definition"]


def test_a_step_redone_after_one_that_must_follow_it_is_not_a_retry() -> None:
    assert named([WON, VALIDATED, QUOTED, ORDERED, VALIDATED, BILLED, ENTITLED]) == [
        f"{VALIDATED} again after {ORDERED}"
    ]


def test_a_step_after_the_failure_is_a_deviation() -> None:
    assert named([WON, VALIDATED, QUOTED, ORDERED, REJECTED, BILLED]) == [
        f"{BILLED} after the failure {REJECTED}"
    ]


def test_the_summary_counts_transactions_and_ranks_deviations_by_them() -> None:
    billed_early = [WON, VALIDATED, QUOTED, BILLED, ORDERED, ENTITLED]
    judged = [
        Judged(60, judge(DEFINITION, HAPPY)),
        Judged(23, judge(DEFINITION, billed_early)),
        Judged(5, judge(DEFINITION, [WON, QUOTED, ORDERED, BILLED, ENTITLED])),
        Judged(4, judge(DEFINITION, [*billed_early, "support.survey.sent"])),
        Judged(8, judge(DEFINITION, [WON, VALIDATED])),
    ]
    result = summary("quote-to-cash", DEFINITION, judged)
    assert result.judged
    assert (result.transactions, result.conforming, result.deviating, result.open) == (100, 68, 32, 8)
    assert result.conforming_share == 0.68
    assert "Open transactions (8" in result.note
    assert [(d.description, d.transactions, d.variants) for d in result.deviations] == [
        (f"{BILLED} before {ORDERED}", 27, 2),
        (f"{VALIDATED} missing", 5, 1),
        ("support.survey.sent not in the definition", 4, 1),
    ]
    assert result.deviations[0].kind == "out_of_order"
    assert (result.deviations[0].step, result.deviations[0].other) == (BILLED, ORDERED)


def test_a_workflow_without_a_definition_is_not_judged_and_says_why() -> None:
    result = summary("imported", None, [])
    assert not result.judged
    assert result.note == "imported has no definition: there is no order to judge its transactions by."
    assert result.conforming_share is None and result.deviations == []
