"""The XES reader: standard extensions to contract fields, streamed, with the line of each <event>."""

from __future__ import annotations

import datetime as dt
import gzip
from pathlib import Path

import pytest

from tests.replay.support import ONBOARDING_XES
from threadline.replay import ReplayError
from threadline.replay.source import Candidate
from threadline.replay.xes import XesLog

UTC = dt.UTC


def read(path: Path, mapping: dict[str, str] | None = None, **options: str) -> list[Candidate]:
    return list(XesLog(path, mapping, **options).candidates())


def test_both_traces_become_events_with_the_lines_of_their_event_tags() -> None:
    rows = read(ONBOARDING_XES)

    assert [row.line for row in rows] == [20, 31, 38, 47, 54]
    assert [row.fields["correlation_id"] for row in rows] == ["XES-ACME-1"] * 3 + ["XES-GLOBEX-2"] * 2
    first = rows[0]
    assert first.fields == {
        "correlation_id": "XES-ACME-1",
        "workflow": "customer-onboarding",  # the log's concept:name
        "step": "crm.account.created",
        "system": "salesforce",
        "timestamp": first.fields["timestamp"],
        "status": "ok",
        # trace attributes as case:<key>; the nested list attribute "tags" is not imported
        "attributes": {"case:AMOUNT_REQ": "20000", "lifecycle:transition": "complete"},
    }
    assert first.fields["timestamp"].astimezone(UTC) == dt.datetime(2024, 3, 4, 8, tzinfo=UTC)


def test_lifecycle_resource_group_and_identity_map_to_the_contract() -> None:
    rows = read(ONBOARDING_XES)
    assert [row.fields.get("status") for row in rows] == ["ok", "pending", "ok", "ok", "error"]
    assert rows[1].fields["attributes"]["manual"] == "true"  # booleans are written lower-case
    assert rows[3].fields["system"] == "salesforce"  # org:group when there is no org:resource
    assert rows[3].fields["event_id"] == "XES-GLOBEX-2-created"  # identity:id
    assert "event_id" not in rows[4].fields  # none: the collector's content hash identifies it


def test_the_bad_event_is_reported_on_its_line() -> None:
    bad = [row for row in read(ONBOARDING_XES) if row.problems]
    assert [(row.line, row.problems) for row in bad] == [
        (
            38,
            (
                (
                    "timestamp",
                    "'yesterday' is not an ISO 8601 time (pass timestamp_format=... for another format)",
                ),
            ),
        )
    ]


def test_the_workflow_option_overrides_the_log_name_and_a_mapping_reaches_trace_attributes() -> None:
    rows = read(ONBOARDING_XES, {"amount": "case:AMOUNT_REQ"}, workflow="onboarding", system="unused")
    assert {row.fields["workflow"] for row in rows} == {"onboarding"}
    assert rows[0].fields["amount"] == "20000"
    assert "case:AMOUNT_REQ" not in rows[0].fields["attributes"]


def test_the_system_option_serves_events_without_a_resource(tmp_path: Path) -> None:
    path = tmp_path / "log.xes"
    path.write_text(
        '<log><string key="concept:name" value="w"/>\n'
        '<trace><string key="concept:name" value="T"/>\n'
        '<event><string key="concept:name" value="a"/>'
        '<date key="time:timestamp" value="2024-01-01T00:00:00Z"/></event></trace></log>'
    )
    [without] = read(path)
    assert "system" not in without.fields  # validation will say "system: is required"
    [row] = read(path, system="legacy-erp")
    assert row.fields["system"] == "legacy-erp"
    assert row.line == 3


def test_a_gzip_compressed_log_reads_the_same(tmp_path: Path) -> None:
    compressed = tmp_path / "onboarding.xes.gz"
    compressed.write_bytes(gzip.compress(ONBOARDING_XES.read_bytes()))
    assert read(compressed) == read(ONBOARDING_XES)


def test_a_log_cut_short_yields_its_whole_traces_then_stops_with_the_line(tmp_path: Path) -> None:
    text = ONBOARDING_XES.read_text()
    path = tmp_path / "cut.xes"
    path.write_text(text[: text.index("<event>", text.index("XES-GLOBEX-2")) + 20])
    log = XesLog(path)
    rows = []
    with pytest.raises(ReplayError, match=r"line \d+: cut.xes is not well-formed XML"):
        for row in log.candidates():
            rows.append(row)
    assert [row.line for row in rows] == [20, 31, 38]  # the first trace, complete


def test_a_log_without_a_name_needs_a_workflow(tmp_path: Path) -> None:
    path = tmp_path / "anonymous.xes"
    path.write_text('<log><trace><string key="concept:name" value="T"/></trace></log>')
    with pytest.raises(ReplayError, match="no log concept:name"):
        read(path)
    assert read(path, workflow="w") == []


def test_another_xml_document_is_not_an_xes_log(tmp_path: Path) -> None:
    path = tmp_path / "feed.xes"
    path.write_text("<rss><channel/></rss>")
    with pytest.raises(ReplayError, match="not an XES log: its root element is <rss>"):
        read(path)


def test_delimiter_is_a_csv_option_only() -> None:
    with pytest.raises(ReplayError, match="unknown mapping key 'delimiter'"):
        XesLog(ONBOARDING_XES, {"delimiter": ";"})
