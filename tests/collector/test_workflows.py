"""Workflow definitions (docs/architecture.md, "Workflow definitions"): what a file means, and how a bad one
is reported.

Every problem in a definitions file is a WorkflowError reading ``file:line: reason``; the error cases
below mark the line they expect with ``# <-``.
"""

from __future__ import annotations

import math
import textwrap
from pathlib import Path

import pytest

from tests.support.workflow_files import refused
from threadline.collector.config import EXAMPLE_WORKFLOWS
from threadline.collector.workflows import (
    StepDefinition,
    Tolerance,
    WorkflowDefinition,
    WorkflowError,
    Workflows,
    load,
    parse,
    parse_duration,
)

EXAMPLE_FILE = EXAMPLE_WORKFLOWS

# Verbatim from docs/architecture.md, "Workflow definitions" (the product contract's example).
DESIGN_EXAMPLE = """\
workflows:
  quote-to-cash:
    sla: 4h                 # first event -> a complete_on step
    stuck_after: 1h         # no progress for this long while a step is due -> stuck
    complete_on: [support.entitlement.created]
    fail_on: [erp.order.rejected]
    steps:
      - {name: crm.opportunity.won, system: salesforce}
      - {name: erp.customer.validated, system: netsuite, within: 15m}   # after the step above
      - {name: cpq.quote.approved, system: cpq, after: [crm.opportunity.won]}
      - {name: erp.order.created, system: netsuite, after: [erp.customer.validated, cpq.quote.approved], within: 30m}
      - {name: erp.order.rejected, system: netsuite, after: [erp.order.created]}
      - {name: billing.subscription.activated, system: stripe, after: [erp.order.created], within: 1h}
      - {name: support.entitlement.created, system: zendesk}
"""  # noqa: E501


@pytest.fixture
def quote_to_cash() -> WorkflowDefinition:
    definition = parse(DESIGN_EXAMPLE).get("quote-to-cash")
    assert definition is not None
    return definition


def workflow(text: str) -> WorkflowDefinition:
    """The only workflow defined in ``text``."""
    (definition,) = parse(textwrap.dedent(text))
    return definition


# --- The documented example ----------------------------------------------------------------------


def test_the_design_example_parses_to_its_steps_in_file_order(quote_to_cash: WorkflowDefinition) -> None:
    assert quote_to_cash.steps == (
        StepDefinition("crm.opportunity.won", "salesforce", (), None, 8),
        StepDefinition("erp.customer.validated", "netsuite", ("crm.opportunity.won",), 900.0, 9),
        StepDefinition("cpq.quote.approved", "cpq", ("crm.opportunity.won",), None, 10),
        StepDefinition(
            "erp.order.created", "netsuite", ("erp.customer.validated", "cpq.quote.approved"), 1800.0, 11
        ),
        StepDefinition("erp.order.rejected", "netsuite", ("erp.order.created",), None, 12),
        StepDefinition("billing.subscription.activated", "stripe", ("erp.order.created",), 3600.0, 13),
        StepDefinition(
            "support.entitlement.created", "zendesk", ("billing.subscription.activated",), None, 14
        ),
    )


def test_the_design_example_has_its_sla_stuck_time_and_outcomes(quote_to_cash: WorkflowDefinition) -> None:
    assert quote_to_cash.name == "quote-to-cash"
    assert quote_to_cash.sla_s == 4 * 3600
    assert quote_to_cash.stuck_after_s == 3600
    assert quote_to_cash.complete_on == ("support.entitlement.created",)
    assert quote_to_cash.fail_on == ("erp.order.rejected",)


def test_after_defaults_to_the_step_above_and_the_first_step_waits_on_nothing(
    quote_to_cash: WorkflowDefinition,
) -> None:
    assert quote_to_cash.steps[0].after == ()
    assert quote_to_cash.steps[1].after == ("crm.opportunity.won",)
    assert quote_to_cash.steps[-1].after == ("billing.subscription.activated",)


def test_definitions_are_looked_up_by_name() -> None:
    workflows = parse(DESIGN_EXAMPLE)
    assert isinstance(workflows, Workflows)
    assert workflows.source == "<string>"
    assert len(workflows) == 1
    assert [definition.name for definition in workflows] == ["quote-to-cash"]
    assert list(workflows.definitions) == ["quote-to-cash"]
    assert workflows.get("renewals") is None
    assert workflows.alerts == ()


def test_steps_are_looked_up_by_name(quote_to_cash: WorkflowDefinition) -> None:
    assert quote_to_cash.step_names()[:2] == ("crm.opportunity.won", "erp.customer.validated")
    step = quote_to_cash.step("cpq.quote.approved")
    assert step is not None and step.system == "cpq"
    assert quote_to_cash.step("crm.opportunity.lost") is None


# --- Defaults and forms -------------------------------------------------------------------------


def test_without_sla_or_stuck_after_there_is_no_sla_and_stuck_after_is_one_hour() -> None:
    definition = workflow("""
        workflows:
          w:
            steps: [{name: a.b.created}]
    """)
    assert definition.sla_s is None
    assert definition.stuck_after_s == 3600
    assert definition.fail_on == ()
    assert definition.steps[0].system is None
    assert definition.steps[0].within_s is None


def test_complete_on_defaults_to_the_last_step_not_in_fail_on() -> None:
    definition = workflow("""
        workflows:
          w:
            fail_on: [a.b.rejected]
            steps:
              - {name: a.b.created}
              - {name: a.b.approved}
              - {name: a.b.rejected, after: [a.b.created]}
    """)
    assert definition.complete_on == ("a.b.approved",)


def test_an_empty_after_means_no_prerequisites() -> None:
    definition = workflow("""
        workflows:
          w:
            steps:
              - {name: a.b.created}
              - {name: a.c.created, after: []}
    """)
    assert definition.steps[1].after == ()


def test_a_single_name_may_stand_for_a_list_of_one() -> None:
    definition = workflow("""
        workflows:
          w:
            complete_on: a.b.approved
            steps:
              - {name: a.b.created}
              - {name: a.c.created, after: []}
              - {name: a.b.approved, after: a.b.created}
    """)
    assert definition.complete_on == ("a.b.approved",)
    assert definition.steps[2].after == ("a.b.created",)


def test_steps_may_be_written_in_block_style_and_share_settings_through_yaml_merge_keys() -> None:
    definition = workflow("""
        workflows:
          w:
            description: block style, anchors and merge keys work as in any YAML file
            steps:
              - &erp
                name: erp.order.created
                system: netsuite
                within: 30m
              - <<: *erp
                name: erp.order.approved
    """)
    assert definition.steps[1] == StepDefinition(
        "erp.order.approved", "netsuite", ("erp.order.created",), 1800, 10
    )


def test_load_names_the_file_as_its_source(tmp_path: Path) -> None:
    path = tmp_path / "workflows.yaml"
    path.write_text(DESIGN_EXAMPLE, encoding="utf-8")
    assert load(path).source == str(path)
    assert load(str(path)) == load(path)


# --- Durations ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("90s", 90),
        ("15m", 900),
        ("1h", 3600),
        ("2d", 172_800),
        ("1h30m", 5400),
        ("1d2h3m4s", 93_784),
        ("1.5h", 5400),
        (" 4h ", 14_400),
        ("90", 90),
        ("0.5", 0.5),
        (90, 90),
        (1.5, 1.5),
    ],
)
def test_durations_are_seconds_or_numbers_with_units(value: object, seconds: float) -> None:
    assert parse_duration(value) == seconds


@pytest.mark.parametrize(
    "value",
    ["", "h", "4x", "15M", "1m1h", "1h1h", "-5", "1e3", "1 h", "4 hours", None, True, [60], "inf"],
)
def test_anything_else_is_not_a_duration(value: object) -> None:
    with pytest.raises(ValueError, match="invalid duration"):
        parse_duration(value)


@pytest.mark.parametrize("value", [0, "0s", "0", -1, math.inf, math.nan])
def test_a_duration_must_be_positive_and_finite(value: object) -> None:
    with pytest.raises(ValueError, match="must be more than 0 seconds and finite"):
        parse_duration(value)


# --- Order: successors and predecessors ---------------------------------------------------------


def test_successors_are_every_step_that_must_come_after(quote_to_cash: WorkflowDefinition) -> None:
    assert quote_to_cash.successors("cpq.quote.approved") == {
        "erp.order.created",
        "erp.order.rejected",
        "billing.subscription.activated",
        "support.entitlement.created",
    }
    assert quote_to_cash.successors("crm.opportunity.won") == set(quote_to_cash.step_names()[1:])
    assert quote_to_cash.successors("erp.order.rejected") == frozenset()
    assert quote_to_cash.successors("support.entitlement.created") == frozenset()


def test_predecessors_are_every_step_that_must_come_before(quote_to_cash: WorkflowDefinition) -> None:
    assert quote_to_cash.predecessors("erp.order.created") == {
        "crm.opportunity.won",
        "erp.customer.validated",
        "cpq.quote.approved",
    }
    assert quote_to_cash.predecessors("support.entitlement.created") == {
        "crm.opportunity.won",
        "erp.customer.validated",
        "cpq.quote.approved",
        "erp.order.created",
        "billing.subscription.activated",
    }
    assert quote_to_cash.predecessors("crm.opportunity.won") == frozenset()


def test_order_questions_about_an_unknown_step_raise_key_error(quote_to_cash: WorkflowDefinition) -> None:
    with pytest.raises(KeyError):
        quote_to_cash.successors("crm.opportunity.lost")
    with pytest.raises(KeyError):
        quote_to_cash.predecessors("crm.opportunity.lost")


# --- Bad definitions: file:line: reason ---------------------------------------------------------

BAD_DEFINITIONS = [
    pytest.param(
        """
        workflows:
          w:
            sla: 4h
           stuck_after: 1h   # <-
            steps: [{name: a.b.created}]
        """,
        "invalid YAML: while parsing a block mapping; expected <block end>",
        id="not valid YAML",
    ),
    pytest.param(
        """
        - workflows   # <-
        """,
        "the top level must be a mapping",
        id="top level not a mapping",
    ),
    pytest.param(
        """
        alerts: []   # <-
        """,
        'missing top-level key "workflows"',
        id="no workflows",
    ),
    pytest.param(
        """
        workflows:
          w:
            steps: [{name: a.b.created}]
        alert:   # <-
          - {when: stuck}
        """,
        'the top level: unknown key "alert" (allowed: actions, alerts, workflows)',
        id="unknown top-level key",
    ),
    pytest.param(
        """
        workflows: {}   # <-
        """,
        '"workflows" defines no workflow',
        id="no workflow defined",
    ),
    pytest.param(
        """
        workflows:
          w:
            steps: [{name: a.b.created}]
          w:   # <-
            steps: [{name: a.b.created}]
        """,
        '"workflows": duplicate key "w" (first on line 2)',
        id="duplicate workflow",
    ),
    pytest.param(
        """
        workflows:
          w: [a.b.created]   # <-
        """,
        'workflow "w" must be a mapping',
        id="workflow not a mapping",
    ),
    pytest.param(
        """
        workflows:
          w:
            complete-on: [a.b.created]   # <-
            steps: [{name: a.b.created}]
        """,
        'workflow "w": unknown key "complete-on" '
        "(allowed: complete_on, description, dimensions, fail_on, reconcile, sla, steps, stuck_after, "
        "unique_by)",
        id="unknown workflow key",
    ),
    pytest.param(
        """
        workflows:
          w:   # <-
            sla: 4h
        """,
        'workflow "w" has no steps',
        id="no steps key",
    ),
    pytest.param(
        """
        workflows:
          w:
            steps: []   # <-
        """,
        'workflow "w" has no steps',
        id="empty steps",
    ),
    pytest.param(
        """
        workflows:
          w:
            steps:
              - {name: a.b.created}
              - {system: salesforce}   # <-
        """,
        'workflow "w": step 2 has no name',
        id="step without name",
    ),
    pytest.param(
        """
        workflows:
          w:
            steps:
              - {name: a.b.created}
              - {name: ~}   # <-
        """,
        'workflow "w": step 2: name must not be empty',
        id="step with empty name",
    ),
    pytest.param(
        """
        workflows:
          w:
            steps:
              - {name: a.b.created}
              - {name: a.b.approved}
              - {name: a.b.created}   # <-
        """,
        'duplicate step "a.b.created" (first defined on line 4)',
        id="duplicate step",
    ),
    pytest.param(
        """
        workflows:
          w:
            steps:
              - {name: a.b.created, sytem: netsuite}   # <-
        """,
        'step "a.b.created": unknown key "sytem" (allowed: after, description, key, name, system, within)',
        id="unknown step key",
    ),
    pytest.param(
        """
        workflows:
          w:
            steps:
              - {name: crm.opportunity.won}
              - name: erp.order.created
                after:
                  - crm.won   # <-
        """,
        'step "erp.order.created": after names unknown step "crm.won"',
        id="after names an unknown step",
    ),
    pytest.param(
        """
        workflows:
          w:
            steps:
              - {name: a.b.created}
              - {name: a.b.approved, after: [a.b.approved]}   # <-
        """,
        'step "a.b.approved": after names the step itself',
        id="after names the step itself",
    ),
    pytest.param(
        """
        workflows:
          w:
            steps:
              - {name: a.b.created}
              - {name: a.b.approved, after: [a.b.created, a.b.created]}   # <-
        """,
        'step "a.b.approved": after names "a.b.created" twice',
        id="after names a step twice",
    ),
    pytest.param(
        """
        workflows:
          w:
            steps:
              - {name: a.b.created}
              - {name: a.b.approved, after: [a.b.posted]}   # <-
              - {name: a.b.posted}
        """,
        'step "a.b.approved": after forms a cycle: a.b.approved after a.b.posted after a.b.approved',
        id="cycle through a default after",
    ),
    pytest.param(
        """
        workflows:
          w:
            steps:
              - {name: a.b.created, after: [a.b.posted]}   # <-
              - {name: a.b.approved, after: [a.b.created]}
              - {name: a.b.posted, after: [a.b.approved]}
        """,
        'step "a.b.created": after forms a cycle: '
        "a.b.created after a.b.posted after a.b.approved after a.b.created",
        id="cycle of three",
    ),
    pytest.param(
        """
        workflows:
          w:
            sla: 4 hours   # <-
            steps: [{name: a.b.created}]
        """,
        "workflow \"w\": sla: invalid duration '4 hours'",
        id="bad sla",
    ),
    pytest.param(
        """
        workflows:
          w:
            stuck_after: 0s   # <-
            steps: [{name: a.b.created}]
        """,
        "workflow \"w\": stuck_after: invalid duration '0s': must be more than 0 seconds",
        id="bad stuck_after",
    ),
    pytest.param(
        """
        workflows:
          w:
            steps:
              - {name: a.b.created}
              - {name: a.b.approved, within: 15x}   # <-
        """,
        "step \"a.b.approved\": within: invalid duration '15x'",
        id="bad within",
    ),
    pytest.param(
        """
        workflows:
          w:
            sla:   # <-
            steps: [{name: a.b.created}]
        """,
        'workflow "w": sla must not be empty',
        id="empty sla",
    ),
    pytest.param(
        """
        workflows:
          w:
            complete_on: [a.b.aproved]   # <-
            steps: [{name: a.b.created}, {name: a.b.approved}]
        """,
        'workflow "w": complete_on names unknown step "a.b.aproved"',
        id="complete_on names an unknown step",
    ),
    pytest.param(
        """
        workflows:
          w:
            fail_on:
              - a.b.rejected   # <-
            steps: [{name: a.b.created}, {name: a.b.approved}]
        """,
        'workflow "w": fail_on names unknown step "a.b.rejected"',
        id="fail_on names an unknown step",
    ),
    pytest.param(
        """
        workflows:
          w:
            fail_on: [a.b.approved]
            complete_on: [a.b.approved]   # <-
            steps: [{name: a.b.created}, {name: a.b.approved}]
        """,
        'workflow "w": step "a.b.approved" is in both complete_on and fail_on',
        id="step both completes and fails",
    ),
    pytest.param(
        """
        workflows:
          w:
            complete_on: []   # <-
            steps: [{name: a.b.created}]
        """,
        'workflow "w": complete_on names no step',
        id="complete_on empty",
    ),
    pytest.param(
        """
        workflows:
          w:
            fail_on: [a.b.rejected]   # <-
            steps: [{name: a.b.rejected}]
        """,
        'workflow "w": every step is in fail_on, so nothing completes it',
        id="nothing can complete",
    ),
    pytest.param(
        """
        workflows:
          w:
            steps: [{name: a.b.created}]
        alerts: [{when: stuck}]   # <-
        """,
        '"alerts" must be a mapping',
        id="alerts not a mapping",
    ),
    pytest.param(
        """
        workflows:
          w:
            steps: [{name: a.b.created}]
        alerts:
          - {when: !!python/object/apply:os.system [echo unsafe]}   # <-
        """,
        "invalid YAML: could not determine a constructor for the tag 'tag:yaml.org,2002:python/object/apply",
        id="unsafe tag",
    ),
]


@pytest.mark.parametrize(("text", "reason"), BAD_DEFINITIONS)
def test_a_bad_definition_names_the_file_the_line_and_the_reason(
    tmp_path: Path, text: str, reason: str
) -> None:
    text = textwrap.dedent(text).lstrip("\n")
    error, path, line = refused(tmp_path, text)

    assert str(error).startswith(f"{path}:{line}: {reason}"), str(error)
    assert (error.source, error.line) == (str(path), line)
    assert "workflows.yaml" in str(error)


def test_an_empty_file_is_reported_at_line_one(tmp_path: Path) -> None:
    path = tmp_path / "workflows.yaml"
    path.write_text("# nothing here yet\n", encoding="utf-8")
    with pytest.raises(WorkflowError, match=r"workflows\.yaml:1: the file is empty"):
        load(path)


def test_a_file_that_is_not_utf8_is_reported_at_its_line(tmp_path: Path) -> None:
    path = tmp_path / "workflows.yaml"
    path.write_bytes(b"workflows:\n  w:\n    description: caf\xe9\n")
    with pytest.raises(WorkflowError, match=r"workflows\.yaml:3: not UTF-8 text"):
        load(path)


def test_a_file_that_cannot_be_read_is_a_workflow_error_naming_it(tmp_path: Path) -> None:
    missing = tmp_path / "workflows.yaml"
    with pytest.raises(WorkflowError) as caught:
        load(missing)
    assert str(caught.value) == f"{missing}: cannot be read: No such file or directory"
    assert caught.value.line is None
    with pytest.raises(WorkflowError, match=r": cannot be read: Is a directory$"):
        load(tmp_path)


def test_errors_from_text_name_the_given_source_and_are_value_errors() -> None:
    with pytest.raises(ValueError, match=r'^<string>:4: step "b.c.approved": after names unknown step "x"$'):
        parse("workflows:\n  w:\n    steps:\n      - {name: b.c.approved, after: [x]}\n")
    with pytest.raises(WorkflowError, match=r"^defs\.yaml:1: "):
        parse("[]", source="defs.yaml")


# --- The demo's definitions ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def example() -> Workflows:
    return load(EXAMPLE_FILE)


def test_the_example_file_defines_the_demo_workflows(example: Workflows) -> None:
    assert list(example.definitions) == [
        "quote-to-cash",
        "customer-onboarding",
        "subscription-renewal",
        "support-credit",
    ]
    systems = {step.system for definition in example for step in definition.steps}
    assert systems == {"salesforce", "cpq", "stripe", "zendesk", "netsuite", "mulesoft"}
    for definition in example:
        assert 5 <= len(definition.steps) <= 8, definition.name
        assert definition.sla_s is not None and definition.fail_on, definition.name
        assert all(len(step.name.split(".")) == 3 for step in definition.steps), definition.name


def test_the_example_quote_to_cash_is_the_design_example(
    example: Workflows, quote_to_cash: WorkflowDefinition
) -> None:
    definition = example.get("quote-to-cash")
    assert definition is not None
    assert definition.sla_s == quote_to_cash.sla_s
    assert definition.stuck_after_s == quote_to_cash.stuck_after_s
    assert (definition.complete_on, definition.fail_on) == (quote_to_cash.complete_on, quote_to_cash.fail_on)
    without_lines = [(step.name, step.system, step.after, step.within_s) for step in definition.steps]
    assert without_lines == [
        (step.name, step.system, step.after, step.within_s) for step in quote_to_cash.steps
    ]


def test_a_credit_never_posts_in_billing_before_finance_approves_it_in_erp(example: Workflows) -> None:
    support_credit = example.get("support-credit")
    assert support_credit is not None
    posted = support_credit.step("billing.credit.posted")
    assert posted is not None and posted.system == "stripe"
    assert "erp.credit.approved" in posted.after
    assert "erp.credit.approved" in support_credit.predecessors("billing.credit.posted")
    assert support_credit.fail_on == ("erp.credit.rejected",)
    assert "billing.credit.posted" not in support_credit.successors("erp.credit.rejected")


# --- What must agree across systems, and what must be unique (issue 21) ------------------------------

RECONCILED = """\
workflows:
  quote-to-cash:
    steps:
      - {name: crm.opportunity.won, system: salesforce}
      - {name: erp.order.created, system: netsuite}
      - {name: billing.subscription.activated, system: stripe}
    reconcile:
      - {value: amount, steps: [crm.opportunity.won, erp.order.created, billing.subscription.activated],
         tolerance: 0.5%}
      - {value: attributes.plan, steps: [erp.order.created, billing.subscription.activated]}
      - {value: amount, steps: [crm.opportunity.won, erp.order.created], tolerance: 50, currency: ignore}
  onboarding:
    unique_by: {value: attributes.tax_id, within: 30d}
    steps: [{name: crm.account.created}]
"""


def test_reconcile_names_the_value_the_steps_and_the_tolerance() -> None:
    workflows = parse(RECONCILED)
    amount, plan, loose = workflows.definitions["quote-to-cash"].reconcile
    assert (amount.value, amount.steps, amount.tolerance.text, amount.ignore_currency) == (
        "amount",
        ("crm.opportunity.won", "erp.order.created", "billing.subscription.activated"),
        "0.5%",
        False,
    )
    assert (plan.value, plan.tolerance.text) == ("attributes.plan", "exact")
    assert (loose.tolerance.kind, loose.tolerance.amount, loose.ignore_currency) == ("absolute", 50.0, True)
    unique = workflows.definitions["onboarding"].unique_by
    assert unique is not None and (unique.value, unique.within_s) == ("attributes.tax_id", 30 * 86400.0)
    assert workflows.definitions["onboarding"].reconcile == ()


@pytest.mark.parametrize(
    ("tolerance", "a", "b", "agree"),
    [
        ("exact", 48000, 48000, True),
        ("exact", 48000, 48000.01, False),
        ("0.5%", 48000, 47760, True),  # 240 is 0.5% of 48,000: at the limit
        ("0.5%", 48000, 47759, False),
        ("50", 100, 150, True),
        ("50", 100, 150.5, False),
    ],
)
def test_a_tolerance_is_exact_absolute_or_a_percent_of_the_larger_value(
    tolerance: str, a: float, b: float, agree: bool
) -> None:
    assert Tolerance.parse(tolerance).agree(a, b) is agree
    assert Tolerance.parse(tolerance).agree(b, a) is agree


BAD_RECONCILIATIONS = [
    pytest.param(
        """
        workflows:
          w:
            steps: [{name: a}, {name: b}]
            reconcile:
              - {value: price, steps: [a, b]}   # <-
        """,
        "workflow \"w\": reconcile 1: value: 'price' is not `amount` or `attributes.<key>`",
        id="unknown value",
    ),
    pytest.param(
        """
        workflows:
          w:
            steps: [{name: a}, {name: b}]
            reconcile:
              - {value: amount, steps: [a, c]}   # <-
        """,
        'workflow "w": reconcile 1: steps names unknown step "c"',
        id="unknown step",
    ),
    pytest.param(
        """
        workflows:
          w:
            steps: [{name: a}, {name: b}]
            reconcile:
              - {value: amount, steps: [a]}   # <-
        """,
        'workflow "w": reconcile 1: steps must name two steps or more to compare',
        id="one step",
    ),
    pytest.param(
        """
        workflows:
          w:
            steps: [{name: a}, {name: b}]
            reconcile:
              - {value: amount, steps: [a, b], tolerance: about}   # <-
        """,
        "workflow \"w\": reconcile 1: tolerance: 'about' is not `exact`, a difference (50) or a percent",
        id="bad tolerance",
    ),
    pytest.param(
        """
        workflows:
          w:
            steps: [{name: a}, {name: b}]
            reconcile:
              - {value: attributes.plan, steps: [a, b], currency: ignore}   # <-
        """,
        'workflow "w": reconcile 1: currency applies to `value: amount` only',
        id="currency of an attribute",
    ),
    pytest.param(
        """
        workflows:
          w:
            steps: [{name: a}, {name: b}]
            unique_by: {value: attributes.tax_id, within: soon}   # <-
        """,
        "workflow \"w\": unique_by: within: invalid duration 'soon'",
        id="bad window",
    ),
    pytest.param(
        """
        workflows:
          w:
            steps: [{name: a}, {name: b}]
            unique_by: {key: attributes.tax_id}   # <-
        """,
        'workflow "w": unique_by: unknown key "key"',
        id="unique_by without value",
    ),
]


@pytest.mark.parametrize(("text", "reason"), BAD_RECONCILIATIONS)
def test_a_bad_reconcile_or_unique_by_names_the_file_the_line_and_the_reason(
    tmp_path: Path, text: str, reason: str
) -> None:
    test_a_bad_definition_names_the_file_the_line_and_the_reason(tmp_path, text, reason)


def test_dimensions_are_attribute_keys_with_or_without_their_prefix() -> None:
    workflows = parse(
        """
        workflows:
          w:
            dimensions: [region, attributes.customer_tier, product.line]
            steps: [{name: a}]
          v:
            steps: [{name: a}]
        """
    )
    assert workflows.definitions["w"].dimensions == ("region", "customer_tier", "product.line")
    assert workflows.definitions["v"].dimensions == ()


BAD_DIMENSIONS = [
    pytest.param(
        """
        workflows:
          w:
            steps: [{name: a}]
            dimensions: [region, "region:EMEA"]   # <-
        """,
        'workflow "w": dimensions: "region:EMEA" is not an attribute key',
        id="a colon",
    ),
    pytest.param(
        """
        workflows:
          w:
            steps: [{name: a}]
            dimensions: [region, attributes.region]   # <-
        """,
        'workflow "w": dimensions names "region" twice',
        id="twice",
    ),
    pytest.param(
        """
        workflows:
          w:
            steps: [{name: a}]
            dimensions: {region: true}   # <-
        """,
        'workflow "w": dimensions must be a list',
        id="not a list",
    ),
]


@pytest.mark.parametrize(("text", "reason"), BAD_DIMENSIONS)
def test_a_bad_dimension_names_the_file_the_line_and_the_reason(
    tmp_path: Path, text: str, reason: str
) -> None:
    test_a_bad_definition_names_the_file_the_line_and_the_reason(tmp_path, text, reason)
