"""The CSV reader: fields through a mapping, and the physical line of every row."""

from __future__ import annotations

import datetime as dt
import gzip
from pathlib import Path

import pytest

from tests.replay.support import CSV_BAD_TIME, ORDERS_CSV, orders_mapping
from threadline.replay import ReplayError
from threadline.replay.csv_log import CsvLog, guess_delimiter, unique_headers

UTC = dt.UTC


def read(path: Path, mapping: dict[str, str] | None = None, **options: str) -> list:
    return list(CsvLog(path, mapping, **options).candidates())


def test_the_fixture_rows_become_contract_fields_through_the_mapping() -> None:
    rows = read(ORDERS_CSV, orders_mapping(), workflow="quote-to-cash", timezone="Europe/Berlin")

    assert [row.line for row in rows] == [2, 3, 4, 6, 7, 8, 10]  # 5: the quoted note's 2nd line; 9: blank
    first = rows[0]
    assert first.problems == ()
    assert first.fields == {
        "correlation_id": "CSV-1001",
        "workflow": "quote-to-cash",
        "step": "crm.opportunity.won",
        "system": "salesforce",
        "timestamp": dt.datetime(2024, 5, 1, 9, tzinfo=first.fields["timestamp"].tzinfo),
        "status": "ok",
        "amount": "1250.00",
        "currency": "eur",
        "attributes": {"region": "emea"},
    }
    assert first.fields["timestamp"].astimezone(UTC) == dt.datetime(2024, 5, 1, 7, tzinfo=UTC)
    assert rows[2].fields["aliases"] == {"erp.sales_order": "SO-88812"}
    assert rows[2].fields["attributes"]["note"] == "Created after a retry:\nNetSuite answered 503 first"
    assert [row.fields.get("status") for row in rows[4:6]] == ["pending", "error"]  # start, ate_abort


def test_the_bad_row_is_reported_on_its_own_physical_line() -> None:
    rows = read(ORDERS_CSV, orders_mapping(), workflow="quote-to-cash", timezone="Europe/Berlin")
    bad = [row for row in rows if row.problems]
    assert [(row.line, row.problems) for row in bad] == [(6, (("timestamp", CSV_BAD_TIME),))]
    assert "timestamp" not in bad[0].fields


def test_a_row_with_the_wrong_number_of_values_is_one_problem(tmp_path: Path) -> None:
    path = tmp_path / "log.csv"
    path.write_text(
        "case_id,activity,timestamp,resource\n"
        "C-1,a,2024-05-01T09:00:00Z,crm\n"
        "C-1,b,2024-05-01T09:00:00Z,crm,extra\n"
        "C-1,c,2024-05-01T09:05:00Z,crm\n"
    )
    rows = read(path, workflow="w")
    assert [(row.line, row.problems) for row in rows if row.problems] == [
        (3, (("row", "has 5 values but the header has 4 columns"),))
    ]
    assert len(rows) == 3


def test_semicolons_tabs_and_a_byte_order_mark_are_handled(tmp_path: Path) -> None:
    path = tmp_path / "excel.csv"
    path.write_bytes("\ufeffcase_id;activity;timestamp\nC-1;a;2024-05-01T09:00:00Z\n".encode())
    [row] = read(path, workflow="w", system="s")
    assert row.fields["correlation_id"] == "C-1"
    tabbed = tmp_path / "tabbed.tsv"
    tabbed.write_text("case_id\tactivity\ttimestamp\nC-2\ta\t2024-05-01T09:00:00Z\n")
    [row] = read(tabbed, workflow="w", system="s")
    assert row.fields["correlation_id"] == "C-2"


def test_a_gzip_compressed_csv_reads_the_same(tmp_path: Path) -> None:
    compressed = tmp_path / "orders.csv.gz"
    compressed.write_bytes(gzip.compress(ORDERS_CSV.read_bytes()))
    options = {"workflow": "quote-to-cash", "timezone": "Europe/Berlin"}
    assert read(compressed, orders_mapping(), **options) == read(ORDERS_CSV, orders_mapping(), **options)


def test_a_file_in_another_encoding_stops_with_the_line_and_a_hint(tmp_path: Path) -> None:
    path = tmp_path / "latin.csv"
    path.write_bytes("case_id,activity,timestamp\nC-1,Bestätigt,2024-05-01T09:00:00Z\n".encode("cp1252"))
    with pytest.raises(ReplayError, match="is not utf-8-sig text"):
        read(path, workflow="w", system="s")
    [row] = read(path, {"encoding": "cp1252"}, workflow="w", system="s")
    assert row.fields["step"] == "Bestätigt"


def test_an_empty_file_has_no_header() -> None:
    with pytest.raises(ReplayError, match="no header"):
        read(Path("/dev/null"), workflow="w", system="s")


def test_delimiter_guess_and_header_names() -> None:
    assert guess_delimiter("a;b;c\n") == ";"
    assert guess_delimiter("a,b;c,d\n") == ","
    assert guess_delimiter("single\n") == ","
    assert unique_headers([" Case ", "", "Case"]) == ["Case", "column 2", "Case.2"]
