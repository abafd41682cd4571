"""Entity file rows: CSV read as a spreadsheet would (BOM, sniffed delimiter, quoted newlines), the
header rule, and cells coerced to the entity's types under a locale and a timezone offset."""

from __future__ import annotations

import datetime as dt
import io
from typing import Any

import openpyxl
import pytest

from ingest_core.tabular import Coercer, csv_rows, is_header, sniff_delimiter, xlsx_rows

PROPERTIES: dict[str, dict[str, Any]] = {
    "name": {"type": "string"},
    "age": {"type": "integer"},
    "score": {"type": "number"},
    "active": {"type": "boolean"},
    "born": {"type": "string", "format": "date"},
    "seen": {"type": "string", "format": "date-time"},
}
MAPPING = {1: "name", 2: "age", 3: "score", 4: "active", 5: "born", 6: "seen"}


@pytest.mark.parametrize(("sample", "delimiter"), [
    ("a,b,c\n1,2,3\n", ","), ("a;b;c\n1;2,5;3\n", ";"), ("a\tb\n1\t2\n", "\t"), ("a|b\n1|2\n", "|"),
    ('"x;y",b\n"1;2",3\n', ","), ("single\ncolumn\n", ","),
])  # fmt: skip
def test_the_delimiter_is_sniffed(sample: str, delimiter: str) -> None:
    assert sniff_delimiter(sample) == delimiter


def test_a_csv_with_a_bom_semicolons_and_quoted_newlines_reads_as_a_spreadsheet_shows_it() -> None:
    data = '\ufeffName;Age\n"Ann\nSmith";31\nBob;42\n'.encode()
    rows = list(csv_rows(io.BytesIO(data)))
    assert rows == [(1, ["Name", "Age"]), (2, ["Ann\nSmith", "31"]), (3, ["Bob", "42"])]
    assert list(csv_rows(io.BytesIO(data), after=2)) == [(3, ["Bob", "42"])]  # resumed from a checkpoint


def test_a_file_that_is_not_utf8_is_refused() -> None:
    with pytest.raises(UnicodeDecodeError):
        list(csv_rows(io.BytesIO(b"a,b\n\xff\xfe,1\n")))


def test_the_header_rule() -> None:
    assert is_header([" NAME ", "Age", "x"], {1: "name", 2: "age"})
    assert not is_header(["Ann", "31"], {1: "name", 2: "age"})
    assert not is_header(["name"], {1: "name", 2: "age"})  # a mapped column missing


def test_cells_are_coerced_under_en_us() -> None:
    c = Coercer(PROPERTIES, "en-US", tz_offset_min=-300)  # New York in winter
    row = c.row(["Ann", "1,234", "3.5", "Yes", "12/31/2024", "12/31/2024 23:30"], MAPPING)
    assert row == {
        "name": "Ann", "age": 1234, "score": 3.5, "active": True, "born": "2024-12-31",
        "seen": "2025-01-01T04:30:00Z",
    }  # fmt: skip


def test_cells_are_coerced_under_en_gb_and_de_de() -> None:
    gb = Coercer(PROPERTIES, "en-GB", tz_offset_min=60)
    assert gb.row(["x", "", "", "no", "31/12/2024", "2024-12-31T23:30:00+00:00"], MAPPING) == {
        "name": "x", "active": False, "born": "2024-12-31", "seen": "2024-12-31T23:30:00Z",
    }  # fmt: skip
    de = Coercer(PROPERTIES, "de-DE")
    assert de.row(["x", "1.234", "3,5", "0", "31.12.2024", "31.12.2024 08:00:05"], MAPPING) == {
        "name": "x", "age": 1234, "score": 3.5, "active": False, "born": "2024-12-31", "seen": "2024-12-31T08:00:05Z",
    }  # fmt: skip


def test_formula_like_cells_stay_text_and_empty_cells_are_left_out() -> None:
    c = Coercer(PROPERTIES)
    assert c.row(["=1+1", " ", None], MAPPING) == {"name": "=1+1"}
    for cell in ("+SUM(A1)", "-2+3", "@cmd"):
        assert c.value("name", cell) == cell


@pytest.mark.parametrize(("column", "cell", "message"), [
    (2, "3.5", "column 2 (age): '3.5' is not a whole number"),
    (2, "many", "column 2 (age): 'many' is not a number"),
    (4, "maybe", "column 4 (active): 'maybe' is not true or false"),
    (5, "31/31/2024", "column 5 (born): '31/31/2024' is not a date"),
    (6, "tomorrow", "column 6 (seen): 'tomorrow' is not a date and time"),
])  # fmt: skip
def test_a_bad_cell_names_its_column_and_property(column: int, cell: str, message: str) -> None:
    cells = [""] * 6
    cells[column - 1] = cell
    with pytest.raises(ValueError, match="^" + message.replace("(", r"\(").replace(")", r"\)") + "$"):
        Coercer(PROPERTIES).row(cells, MAPPING)


def test_native_cells_of_a_spreadsheet_are_taken_as_they_are() -> None:
    from datetime import date, datetime

    c = Coercer(PROPERTIES, tz_offset_min=120)
    assert c.row(["A", 7, 2.5, True, date(2024, 1, 2), datetime(2024, 1, 2, 3, 4, 5)], MAPPING) == {
        "name": "A", "age": 7, "score": 2.5, "active": True, "born": "2024-01-02", "seen": "2024-01-02T01:04:05Z",
    }  # fmt: skip


# Spreadsheet cells hold naive dates and times: the import's timezoneOffset places them.
# ruff: noqa: DTZ001


def _workbook() -> bytes:
    """A first sheet starting at B2 (rows and a column before it empty), with every cell type, and a
    second sheet that must not be read."""
    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    sheet["B2"], sheet["C2"], sheet["D2"] = "name", "age", "joined"
    sheet["B3"], sheet["C3"], sheet["D3"], sheet["E3"] = "Ann", 41, dt.datetime(2024, 1, 2, 3, 4, 5), True
    sheet["B4"], sheet["D4"], sheet["F4"] = "=not a formula", dt.date(2024, 5, 6), 2.5
    sheet["B4"].data_type = "s"  # a string cell starting with "=": text, never evaluated
    sheet["B5"] = "Bob"  # shared with B7 below
    sheet["B7"] = "Bob"
    book.create_sheet("second")["A1"] = "not this sheet"
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


@pytest.mark.parametrize("in_memory", [True, False], ids=["calamine", "openpyxl"])
def test_both_xlsx_readers_give_the_same_cells_where_a_spreadsheet_shows_them(in_memory: bool) -> None:
    height, rows = xlsx_rows(io.BytesIO(_workbook()), in_memory=in_memory)
    got = {n: [None if c == "" else c for c in cells] for n, cells in rows}
    assert height == 7
    assert set(got) == {1, 2, 3, 4, 5, 6, 7}
    assert got[1] == [None] * len(got[1])
    assert got[2][1:4] == ["name", "age", "joined"]
    assert got[3][1:5] == ["Ann", 41, dt.datetime(2024, 1, 2, 3, 4, 5), True]
    assert got[4][1] == "=not a formula"
    assert got[4][5] == 2.5
    assert got[4][3] in (dt.date(2024, 5, 6), dt.datetime(2024, 5, 6))  # openpyxl: a datetime at midnight
    assert (got[5][1], got[7][1]) == ("Bob", "Bob")
    coercer = Coercer(
        {
            "name": {"type": "string"},
            "age": {"type": "integer"},
            "joined": {"type": "string", "format": "date"},
        }
    )
    assert coercer.row(got[3], {2: "name", 3: "age", 4: "joined"}) == {
        "name": "Ann",
        "age": 41,
        "joined": "2024-01-02",
    }
    # Resumed after row 4: the rows that follow, numbered as before.
    _, after = xlsx_rows(io.BytesIO(_workbook()), after=4, in_memory=in_memory)
    assert [n for n, _ in after] == [5, 6, 7]


def test_a_file_that_is_not_xlsx_is_refused() -> None:
    with pytest.raises(ValueError, match="not an XLSX"):
        xlsx_rows(io.BytesIO(b"name,age\n"))


def test_whole_numbers_read_as_floats_are_text_without_a_point() -> None:
    assert Coercer({"phone": {"type": "string"}}).value("phone", 5551234.0) == "5551234"


@pytest.mark.parametrize(
    ("cell", "offset", "expected"),
    [("2024-12-31 23:30:00", -300, "2025-01-01T04:30:00Z"), ("2024-12-31T23:30:00", 60, "2024-12-31T22:30:00Z"),
     ("2024-12-31 23:30:00", 0, "2024-12-31T23:30:00Z"), ("2024-12-31T23:30:00+02:00", -300, "2024-12-31T21:30:00Z")],
)  # fmt: skip
def test_the_common_date_time_cell_is_placed_at_the_offset(cell: str, offset: int, expected: str) -> None:
    assert (
        Coercer({"t": {"type": "string", "format": "date-time"}}, tz_offset_min=offset).value("t", cell)
        == expected
    )


@pytest.mark.parametrize(("cell", "prop"), [("2024-13-45", "d"), ("2024-13-45 10:00:00", "t")])
def test_an_impossible_date_in_the_common_shape_is_worded_as_such(cell: str, prop: str) -> None:
    coercer = Coercer(
        {"d": {"type": "string", "format": "date"}, "t": {"type": "string", "format": "date-time"}}
    )
    with pytest.raises(ValueError, match="is not a date"):
        coercer.value(prop, cell)


@pytest.mark.parametrize(("word", "value"), [("TRUE", True), ("No", False), (" yes ", True), ("0", False)])
def test_boolean_words_in_any_case(word: str, value: bool) -> None:
    assert Coercer({"b": {"type": "boolean"}}).value("b", word) is value


def test_a_zip_bomb_is_refused_before_it_is_inflated() -> None:
    import io
    import zipfile

    from ingest_core.tabular import xlsx_rows

    packed = io.BytesIO()
    with zipfile.ZipFile(packed, "w", zipfile.ZIP_DEFLATED) as book:
        book.writestr("[Content_Types].xml", "<Types/>")
        book.writestr("xl/worksheets/sheet1.xml", b"<row>" + b" " * (64 * 1024 * 1024) + b"</row>")
    assert packed.tell() < 1024 * 1024  # 64 MiB of sheet in well under 1 MiB
    packed.seek(0)
    for in_memory in (True, False):
        with pytest.raises(ValueError, match=r"inflates \d+ times, more than the 200 allowed"):
            xlsx_rows(packed, in_memory=in_memory)


def test_a_csv_of_100000_columns_is_read_and_a_huge_cell_refused() -> None:
    import io

    from ingest_core.tabular import csv_rows

    wide = ",".join(f"c{i}" for i in range(100_000)).encode() + b"\r\n"
    [(number, cells)] = list(csv_rows(io.BytesIO(wide)))
    assert (number, len(cells)) == (1, 100_000)
    huge = b"name\r\n" + b"x" * (1024 * 1024) + b"\r\n"  # over the csv module's 128 KiB field limit
    with pytest.raises(ValueError, match="field larger than field limit"):
        list(csv_rows(io.BytesIO(huge)))
