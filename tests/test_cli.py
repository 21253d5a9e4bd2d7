"""The `threadline` command refuses a configuration it cannot start with in one line, with status 2.

A bad workflows file (invalid YAML, a definition mistake, no file at all) or a store DSN of a kind
Threadline cannot use is a usage error: the operator reads one line naming the file and line, or
the DSN and the schemes there are, on stderr, and never a traceback.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.collector_process import ROOT
from tests.support.otlp_receiver import free_port

pytestmark = pytest.mark.slow

UNKNOWN_STEP = "workflows:\n  a:\n    steps:\n      - {name: x}\n      - {name: z, after: [y]}\n"
INVALID_YAML = "workflows:\n  a:\n    steps: [\n"


def threadline(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """The real command, as an operator runs it; no THREADLINE_* setting of the calling shell leaks in."""
    inherited = {name: value for name, value in os.environ.items() if not name.startswith("THREADLINE_")}
    return subprocess.run(
        [sys.executable, "-m", "threadline", *args],
        cwd=cwd,
        env={**inherited, "PYTHONPATH": str(ROOT), **(env or {})},
        capture_output=True,
        text=True,
        timeout=120,
    )


def refused(result: subprocess.CompletedProcess[str]) -> str:
    """The one line a refused start prints on stderr (asserting it is one line, status 2, no traceback)."""
    assert result.returncode == 2, (result.returncode, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr + result.stdout
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


def collector(tmp_path: Path, *options: str) -> subprocess.CompletedProcess[str]:
    return threadline("collector", "--port", str(free_port()), *options, cwd=tmp_path)


@pytest.mark.parametrize(
    ("text", "line", "reason"),
    [
        (UNKNOWN_STEP, 5, 'step "z": after names unknown step "y"'),
        (INVALID_YAML, 4, "invalid YAML: while parsing a flow node"),
    ],
    ids=["unknown-step", "invalid-yaml"],
)
def test_the_collector_names_the_file_and_line_of_a_bad_definition(
    tmp_path: Path, text: str, line: int, reason: str
) -> None:
    workflows = tmp_path / "workflows.yaml"
    workflows.write_text(text)
    message = refused(collector(tmp_path, "--workflows", str(workflows), "--store", f"chdb://{tmp_path}/s"))
    assert message.startswith(f"threadline collector: {workflows}:{line}: {reason}"), message
    assert not (tmp_path / "s").exists()  # refused before anything was opened


def test_the_collector_says_a_workflows_file_does_not_exist(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.yaml"
    message = refused(collector(tmp_path, "--workflows", str(missing)))
    assert message == f"threadline collector: {missing}: cannot be read: No such file or directory"


def test_the_collector_names_the_file_source_mapping_and_field_of_a_bad_webhook_mapping(
    tmp_path: Path,
) -> None:
    mappings = tmp_path / "webhooks.yaml"
    mappings.write_text(
        "sources:\n  crm:\n    mappings:\n      - name: won\n        event: {correlation_id: 'body.['}\n"
    )
    result = threadline(
        "collector", "--port", str(free_port()), cwd=tmp_path, env={"THREADLINE_WEBHOOKS": str(mappings)}
    )
    assert refused(result).startswith(
        f"threadline collector: {mappings}: source 'crm', mapping 'won': event.correlation_id: "
        "'body.[' is not a JMESPath expression"
    )


def test_the_collector_names_an_unknown_store_scheme_and_the_supported_ones(tmp_path: Path) -> None:
    message = refused(collector(tmp_path, "--store", "postgres://ops:s3cret@db.example:5432/threadline"))
    assert message == (
        "threadline collector: store postgres://***@db.example:5432/threadline: unknown scheme 'postgres'; "
        "supported: chdb://, http://, https://"
    )


def test_the_collector_reads_the_same_settings_from_the_environment(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.yaml"
    result = threadline(
        "collector", "--port", str(free_port()), cwd=tmp_path, env={"THREADLINE_WORKFLOWS": str(missing)}
    )
    assert refused(result).startswith(f"threadline collector: {missing}: cannot be read")
    store = threadline("collector", cwd=tmp_path, env={"THREADLINE_STORE": "./store"})
    assert (
        refused(store)
        == "threadline collector: store ./store: no scheme; supported: chdb://, http://, https://"
    )


def test_the_demo_refuses_a_bad_workflows_file_before_starting_anything(tmp_path: Path) -> None:
    workflows = tmp_path / "workflows.yaml"
    workflows.write_text(UNKNOWN_STEP)
    result = threadline("demo", cwd=tmp_path, env={"THREADLINE_WORKFLOWS": str(workflows)})
    assert refused(result) == f'threadline demo: {workflows}:5: step "z": after names unknown step "y"'
    assert not (tmp_path / ".threadline").exists()  # no child was started, no store made


def test_the_simulator_refuses_a_bad_workflows_file(tmp_path: Path) -> None:
    workflows = tmp_path / "workflows.yaml"
    workflows.write_text(INVALID_YAML)
    result = threadline("simulate", "--workflows", str(workflows), "--duration", "1", cwd=tmp_path)
    assert refused(result).startswith(f"threadline simulate: {workflows}:4: invalid YAML")


@pytest.mark.parametrize(
    ("command", "variable", "text", "reason"),
    [
        ("collector", "THREADLINE_PORT", "abc", "expected a whole number"),
        (
            "collector",
            "THREADLINE_READ_TIMEOUT",
            "soon",
            "expected a number of seconds or a duration like 90s",
        ),
        ("collector", "THREADLINE_ALERT_INTERVAL", "-1", "expected at least 0"),
        ("dashboard", "THREADLINE_DASHBOARD_PORT", "abc", "expected a whole number"),
        ("dashboard", "THREADLINE_API", "collector:4318", "expected an http:// or https:// URL"),
        ("demo", "THREADLINE_DEMO_SECONDS", "soon", "expected a number"),
        ("demo", "THREADLINE_READ_TIMEOUT", "soon", "expected a number of seconds or a duration like 90s"),
    ],
)
def test_a_bad_variable_stops_the_start_naming_it_its_value_and_the_reason(
    tmp_path: Path, command: str, variable: str, text: str, reason: str
) -> None:
    message = refused(threadline(command, cwd=tmp_path, env={variable: text}))
    assert message.startswith(f"threadline {command}: {variable}={text!r}: {reason}"), message
    assert not (tmp_path / ".threadline").exists()  # refused before any store was made or child started


def test_an_option_is_validated_as_its_variable_is(tmp_path: Path) -> None:
    message = refused(collector(tmp_path, "--port", "70000"))
    assert message == "threadline collector: --port=70000: expected at most 65535"
