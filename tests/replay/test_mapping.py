"""The column mapping and value translation shared by CSV and XES."""

from __future__ import annotations

import datetime as dt

import pytest

from threadline.replay import ReplayError, mapping_from_args
from threadline.replay.mapping import CSV_OPTIONS, ColumnMapping, MappingSpec
from threadline.replay.values import TimestampParser, status_of


def csv_mapping(headers: list[str], mapping: dict[str, str] | None = None, **options: str) -> ColumnMapping:
    spec = MappingSpec.parse(mapping, CSV_OPTIONS)
    return ColumnMapping.for_headers(
        headers,
        spec,
        workflow=options.get("workflow"),
        system=options.get("system"),
        timezone=options.get("timezone", "UTC"),
    )


def test_command_line_items_become_a_mapping_split_at_the_first_equals_sign() -> None:
    assert mapping_from_args(
        ["step=Activity", "attribute:note=Note = remark", "timestamp_format=%d/%m/%Y"]
    ) == {
        "step": "Activity",
        "attribute:note": "Note = remark",
        "timestamp_format": "%d/%m/%Y",
    }
    with pytest.raises(ReplayError, match="not KEY=VALUE"):
        mapping_from_args(["Activity"])


def test_an_unknown_mapping_key_is_refused_with_the_keys_that_exist() -> None:
    with pytest.raises(ReplayError, match=r"unknown mapping key 'corelation_id'.*correlation_id"):
        MappingSpec.parse({"corelation_id": "Case"}, CSV_OPTIONS)


def test_process_mining_export_headers_are_detected_without_a_mapping() -> None:
    headers = [
        "case:concept:name",
        "concept:name",
        "time:timestamp",
        "org:resource",
        "lifecycle:transition",
        "cost",
    ]
    mapping = csv_mapping(headers, workflow="quote-to-cash")

    fields, problems = mapping.fields(
        {
            "case:concept:name": "OPP-1",
            "concept:name": "crm.opportunity.won",
            "time:timestamp": "2024-05-01T09:00:00+02:00",
            "org:resource": "salesforce",
            "lifecycle:transition": "complete",
            "cost": "12",
        }
    )

    assert problems == []
    assert fields == {
        "correlation_id": "OPP-1",
        "workflow": "quote-to-cash",
        "step": "crm.opportunity.won",
        "system": "salesforce",
        "timestamp": dt.datetime(2024, 5, 1, 9, tzinfo=dt.timezone(dt.timedelta(hours=2))),
        "status": "ok",
        # unused columns are attributes; the lifecycle word says more than "ok", so it stays too
        "attributes": {"cost": "12", "lifecycle:transition": "complete"},
    }


def test_plain_headers_are_detected_in_any_case_and_spacing() -> None:
    mapping = csv_mapping(["Case ID", "Activity", "Timestamp", "Resource", "Workflow"])
    fields, _ = mapping.fields(
        {"Case ID": "C-1", "Activity": "a", "Timestamp": "2024-05-01 09:00", "Resource": "r", "Workflow": "w"}
    )
    assert (fields["correlation_id"], fields["step"], fields["system"], fields["workflow"]) == (
        "C-1",
        "a",
        "r",
        "w",
    )
    assert fields["timestamp"] == dt.datetime(2024, 5, 1, 9, tzinfo=dt.UTC)


def test_a_missing_required_column_is_refused_before_any_row_naming_the_columns() -> None:
    with pytest.raises(ReplayError, match=r"no column for correlation_id.*'Activity', 'When'"):
        csv_mapping(["Activity", "When"], workflow="w", system="s")
    with pytest.raises(ReplayError, match="no system"):
        csv_mapping(["case_id", "activity", "timestamp"], workflow="w")
    with pytest.raises(ReplayError, match="no such column: Kase"):
        csv_mapping(
            ["case_id", "activity", "timestamp"], {"correlation_id": "Kase"}, workflow="w", system="s"
        )


def test_the_workflow_option_wins_over_a_column_and_the_system_option_only_fills_gaps() -> None:
    mapping = csv_mapping(
        ["case", "step", "timestamp", "system", "workflow"], workflow="onboarding", system="erp"
    )
    fields, _ = mapping.fields(
        {"case": "C", "step": "s", "timestamp": "2024-05-01T00:00:00Z", "system": "", "workflow": "legacy"}
    )
    assert fields["workflow"] == "onboarding"
    assert fields["system"] == "erp"
    assert fields["attributes"] == {"workflow": "legacy"}
    fields, _ = mapping.fields(
        {"case": "C", "step": "s", "timestamp": "2024-05-01T00:00:00Z", "system": "crm", "workflow": ""}
    )
    assert fields["system"] == "crm"


def test_explicit_attributes_and_aliases_take_only_their_columns() -> None:
    mapping = csv_mapping(
        ["case", "step", "timestamp", "Region", "SO", "Noise"],
        {"attribute:region": "Region", "alias:erp.sales_order": "SO"},
        workflow="w",
        system="s",
    )
    fields, _ = mapping.fields(
        {
            "case": "C",
            "step": "s",
            "timestamp": "2024-05-01T00:00:00Z",
            "Region": "emea",
            "SO": "SO-1",
            "Noise": "x",
        }
    )
    assert fields["attributes"] == {"region": "emea"}
    assert fields["aliases"] == {"erp.sales_order": "SO-1"}


def test_error_columns_become_the_error_object() -> None:
    mapping = csv_mapping(
        ["case", "step", "timestamp", "error_kind", "error_message"], workflow="w", system="s"
    )
    fields, _ = mapping.fields(
        {
            "case": "C",
            "step": "s",
            "timestamp": "2024-05-01T00:00:00Z",
            "error_kind": "timeout",
            "error_message": "no answer in 30 s",
        }
    )
    assert fields["error"] == {"kind": "timeout", "message": "no answer in 30 s"}


def test_an_unknown_status_word_is_a_problem_of_the_row_not_a_silent_ok() -> None:
    mapping = csv_mapping(["case", "step", "timestamp", "status"], workflow="w", system="s")
    fields, problems = mapping.fields(
        {"case": "C", "step": "s", "timestamp": "2024-05-01T00:00:00Z", "status": "eror"}
    )
    assert "status" not in fields
    [(field, reason)] = problems
    assert field == "status"
    assert reason.startswith("'eror' is not a status: use ok, error, retrying, pending")


@pytest.mark.parametrize(
    ("word", "status"),
    [
        ("complete", "ok"),
        ("COMPLETE", "ok"),
        ("start", "pending"),
        ("schedule", "pending"),
        ("ate_abort", "error"),
        ("pi_abort", "error"),
        ("withdraw", "error"),
        ("retrying", "retrying"),
        ("in progress", "pending"),
        ("approved", None),
    ],
)
def test_lifecycle_transitions_translate_to_contract_statuses(word: str, status: str | None) -> None:
    assert status_of(word) == status


def test_zone_less_times_are_read_in_the_given_zone_and_zoned_ones_keep_theirs() -> None:
    berlin = TimestampParser("Europe/Berlin")
    assert berlin("2024-05-01 09:00").astimezone(dt.UTC) == dt.datetime(2024, 5, 1, 7, tzinfo=dt.UTC)
    assert berlin("2024-01-15T09:00:00").astimezone(dt.UTC) == dt.datetime(2024, 1, 15, 8, tzinfo=dt.UTC)
    assert berlin("2024-05-01T09:00:00Z") == dt.datetime(2024, 5, 1, 9, tzinfo=dt.UTC)


def test_a_timestamp_format_and_unix_times_are_understood() -> None:
    assert TimestampParser("UTC", "%d/%m/%Y %H:%M")("01/05/2024 09:00") == dt.datetime(
        2024, 5, 1, 9, tzinfo=dt.UTC
    )
    assert TimestampParser("UTC", "epoch_ms")("1714554000000") == dt.datetime(2024, 5, 1, 9, tzinfo=dt.UTC)
    with pytest.raises(ValueError, match=r"'2024-05-01' is not a time in the format '%d/%m/%Y %H:%M'"):
        TimestampParser("UTC", "%d/%m/%Y %H:%M")("2024-05-01")
    with pytest.raises(ValueError, match="is not an ISO 8601 time"):
        TimestampParser()("01.05.2024")


def test_an_unknown_time_zone_is_refused_up_front() -> None:
    with pytest.raises(ReplayError, match="unknown time zone 'Mars/Olympus'"):
        TimestampParser("Mars/Olympus")


def test_a_file_too_wide_for_attributes_is_refused_before_any_row() -> None:
    headers = ["case_id", "activity", "timestamp", *(f"c{n}" for n in range(130))]
    with pytest.raises(ReplayError, match="130 columns are left over as attributes"):
        csv_mapping(headers, workflow="w", system="s")
    csv_mapping(headers, {"attribute:first": "c0"}, workflow="w", system="s")
