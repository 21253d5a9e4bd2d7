"""The ``actions:`` section of the workflows file: what each action applies to, where its URL comes
from, and every mistake named ``file:line: reason`` (the line marked ``# <-``)."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from tests.support.workflow_files import refused
from threadline.collector.integration_actions import IntegrationAction
from threadline.collector.workflows import parse

HEAD = """\
workflows:
  order:
    steps: [{name: order.received, system: crm}, {name: order.booked, system: erp}]
  refund:
    steps: [{name: refund.requested, system: support}, {name: refund.paid, system: billing}]
"""


def actions_of(section: str) -> dict[str, IntegrationAction]:
    return {action.name: action for action in parse(HEAD + textwrap.dedent(section)).actions}


def test_actions_apply_to_the_steps_their_workflow_step_and_system_match() -> None:
    actions = actions_of(
        """
        actions:
          - {name: rebook, kind: retry, system: erp, url_env: ERP_RETRY_URL, secret_env: ERP_SECRET,
             timeout: 5s}
          - {name: repay, kind: retry, workflow: refund, step: refund.paid, url_env: PAY_URL}
        """
    )

    rebook, repay = actions["rebook"], actions["repay"]
    assert (rebook.kind, rebook.url_env, rebook.secret_env, rebook.timeout_s) == (
        "retry",
        "ERP_RETRY_URL",
        "ERP_SECRET",
        5,
    )
    assert repay.timeout_s == 10 and repay.secret_env is None
    assert rebook.applies_to("order", "order.booked", "erp") and rebook.applies_to("refund", "x", "erp")
    assert not rebook.applies_to("order", "order.booked", "crm")
    assert repay.applies_to("refund", "refund.paid", "stripe")
    assert not repay.applies_to("order", "refund.paid", "billing")
    assert parse(HEAD).actions == ()


def test_an_action_is_configured_only_while_its_variables_are_set() -> None:
    rebook = actions_of(
        """
        actions:
          - {name: rebook, kind: retry, system: erp, url_env: ERP_RETRY_URL, secret_env: ERP_SECRET}
        """
    )["rebook"]

    assert rebook.not_configured({}) == "not configured: $ERP_RETRY_URL is not set"
    assert "$ERP_SECRET" in (rebook.not_configured({"ERP_RETRY_URL": "http://erp/retry"}) or "")
    ready = {"ERP_RETRY_URL": " http://erp/retry ", "ERP_SECRET": "s3cret"}
    assert rebook.not_configured(ready) is None
    assert (rebook.resolve_url(ready), rebook.secret(ready)) == ("http://erp/retry", "s3cret")


BAD_SECTIONS = [
    pytest.param(
        """
        actions:
          - {kind: retry, system: erp, url_env: U}   # <-
        """,
        "action 1 has no name",
        id="no name",
    ),
    pytest.param(
        """
        actions:
          - {name: a, kind: retry, system: erp, url_env: U}
          - {name: a, kind: retry, system: crm, url_env: V}   # <-
        """,
        'duplicate action "a" (first defined on line 7)',
        id="duplicate",
    ),
    pytest.param(
        """
        actions:
          - {name: a, kind: reboot, system: erp, url_env: U}   # <-
        """,
        "action \"a\": kind must be retry, not 'reboot'",
        id="unknown kind",
    ),
    pytest.param(
        """
        actions:
          - {name: a, kind: retry, url_env: U}   # <-
        """,
        'action "a" names neither a step nor a system it applies to',
        id="applies to nothing",
    ),
    pytest.param(
        """
        actions:
          - {name: a, kind: retry, system: erp}   # <-
        """,
        'action "a" has no url_env',
        id="no url_env",
    ),
    pytest.param(
        """
        actions:
          - name: a
            kind: retry
            system: erp
            url_env: http://erp/retry   # <-
        """,
        'action "a": url_env must be an environment variable name',
        id="a URL for a variable",
    ),
    pytest.param(
        """
        actions:
          - name: a
            kind: retry
            workflow: order
            step: refund.paid   # <-
            url_env: U
        """,
        'action "a": step "refund.paid" is not a step of workflow "order"',
        id="step of another workflow",
    ),
    pytest.param(
        """
        actions:
          - name: a
            kind: retry
            workflow: orders   # <-
            system: erp
            url_env: U
        """,
        'action "a": workflow names unknown workflow "orders"',
        id="unknown workflow",
    ),
    pytest.param(
        """
        actions:
          - name: a
            kind: retry
            system: erp
            url_env: U
            timeout: 5m   # <-
        """,
        'action "a": timeout must be at most 60s',
        id="timeout too long",
    ),
    pytest.param(
        """
        actions:
          - name: a
            kind: retry
            system: erp
            url: http://erp/retry   # <-
        """,
        'action "a": unknown key "url"',
        id="url in the file",
    ),
    pytest.param(
        """
        actions: {name: a}   # <-
        """,
        '"actions" must be a list',
        id="not a list",
    ),
]


@pytest.mark.parametrize(("section", "reason"), BAD_SECTIONS)
def test_a_bad_actions_section_names_the_file_the_line_and_the_reason(
    tmp_path: Path, section: str, reason: str
) -> None:
    text = HEAD + textwrap.dedent(section).lstrip("\n")
    error, path, line = refused(tmp_path, text)

    assert str(error).startswith(f"{path}:{line}: {reason}"), str(error)
