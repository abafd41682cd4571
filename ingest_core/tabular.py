"""Rows of an entity file import (CSV or the first sheet of an XLSX workbook), mapped to an entity's
properties and coerced to their types. Pure but for reading the stream it is given.

- CSV: UTF-8 with or without a BOM; the delimiter is the one of ``,`` ``;`` tab ``|`` that splits
  the first lines most consistently; quoted fields may hold newlines. Row numbers count records
  from 1, the header row included, as a spreadsheet shows them.
- The header rule: the first row is a header, and skipped, when every mapped column's cell equals
  its property's name, ignoring case and surrounding spaces.
- A mapping is 1-based column index -> property. An empty cell is left out of the record.
- Values are coerced to the entity schema's types: ``integer`` and ``number`` (the locale's
  decimal comma and grouping), ``boolean`` (true/false, yes/no, 1/0), strings of ``format``
  ``date`` (-> ``YYYY-MM-DD``) and ``date-time`` (-> UTC, ``YYYY-MM-DDTHH:MM:SSZ``; a date-time
  without an offset is taken at ``timezoneOffset`` minutes from UTC). The locale decides
  ``12/31/2024`` (``en-US``) against ``31/12/2024`` (other locales). Anything else stays the text
  it was: a cell starting with ``=`` ``+`` ``-`` ``@`` is never evaluated.
"""

from __future__ import annotations

import codecs
import contextlib
import csv
import io
import re
import zipfile
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, date, datetime, timedelta, timezone
from typing import IO, Any

DELIMITERS = ",;\t|"
_SNIFF_BYTES = 64 * 1024
# Below this much sheet XML an XLSX file is read by python-calamine, which holds the sheet in memory
# (about 1.8 times its XML) at ten times openpyxl's speed; above it, by openpyxl's streaming
# read-only mode (bench/NOTES.md, "XLSX readers").
XLSX_IN_MEMORY_MAX_BYTES = 32 * 1024 * 1024
# Locales whose dates put the month first, and whose numbers use a decimal point.
_MONTH_FIRST = frozenset({"en-us", "en-ph", "en-ca", "es-us"})
_DECIMAL_POINT_LANGS = frozenset({"en", "ja", "zh", "ko", "he", "th", "hi"})
_TRUE = frozenset({"true", "yes", "y", "1"})
_FALSE = frozenset({"false", "no", "n", "0"})
# The words as most files write them, looked up before anything is stripped or lowered.
_BOOLEAN_WORDS = {
    **{w: True for t in _TRUE for w in (t, t.upper(), t.capitalize())},
    **{w: False for f in _FALSE for w in (f, f.upper(), f.capitalize())},
}
_DATE_SLASHED = re.compile(r"^(\d{1,2})[/.-](\d{1,2})[/.-](\d{4})$")
_PLAIN_DECIMAL = re.compile(r"-?\d+(?:\.\d+)?")
_TIME = re.compile(r"^(\d{1,2}):(\d{2})(?::(\d{2}))?$")


def sniff_delimiter(sample: str) -> str:
    """The delimiter among ``DELIMITERS`` that splits the sample's first lines into the same, largest
    number of fields (quotes respected); ``,`` when none does better."""
    best, best_score = ",", (0, 0)
    lines = sample.splitlines()[:20] or [""]
    for delimiter in DELIMITERS:
        counts = [len(row) for row in csv.reader(lines, delimiter=delimiter)]
        if not counts:
            continue
        consistent = sum(c == counts[0] for c in counts)
        score = (consistent if counts[0] > 1 else 0, counts[0])
        if score > best_score:
            best, best_score = delimiter, score
    return best


def csv_rows(stream: IO[bytes], after: int = 0) -> Iterator[tuple[int, list[str]]]:
    """``(row number, cells)`` of each record after row ``after``; raises UnicodeDecodeError for a
    file that is not UTF-8."""
    head = stream.read(_SNIFF_BYTES)
    text_head = codecs.getincrementaldecoder("utf-8-sig")().decode(head, final=False)
    delimiter = sniff_delimiter(text_head)
    stream.seek(0)
    text = io.TextIOWrapper(stream, encoding="utf-8-sig", newline="")
    try:
        for number, row in enumerate(csv.reader(text, delimiter=delimiter), 1):
            if number > after:
                yield number, row
    except csv.Error as exc:  # a field over the csv module's limit, or a NUL character
        raise ValueError(f"the CSV file cannot be read after row {after}: {exc}") from None
    finally:
        text.detach()


# Zip bombs: a workbook is refused when its parts would inflate beyond XLSX_MAX_INFLATED_BYTES in
# all, or a part larger than _RATIO_FLOOR inflates more than XLSX_MAX_RATIO times (real sheets'
# XML compresses 5 to 50 times; a bomb's thousands). Both readers read a part no further than its
# declared size, so the declared sizes bound what is inflated.
XLSX_MAX_INFLATED_BYTES = 4 * 1024**3
XLSX_MAX_RATIO = 200
_RATIO_FLOOR = 10 * 1024**2


def _check_inflation(book: zipfile.ZipFile) -> None:
    infos = book.infolist()
    total = sum(info.file_size for info in infos)
    if total > XLSX_MAX_INFLATED_BYTES:
        raise ValueError(
            f"the workbook would inflate to {total} bytes, more than the {XLSX_MAX_INFLATED_BYTES} allowed"
        )
    for info in infos:
        ratio = info.file_size // max(info.compress_size, 1)
        if info.file_size > _RATIO_FLOOR and ratio > XLSX_MAX_RATIO:
            raise ValueError(
                f"the workbook's part {info.filename[:100]!r} inflates {ratio} times, more than the"
                f" {XLSX_MAX_RATIO} allowed (a zip bomb?)"
            )


def xlsx_in_memory(stream: IO[bytes], max_bytes: int = XLSX_IN_MEMORY_MAX_BYTES) -> bool:
    """Is the workbook small enough to be read by the in-memory reader (its sheets' and shared
    strings' XML at most ``max_bytes``)? Raises ValueError when it is not a zip, or a zip bomb."""
    try:
        with zipfile.ZipFile(stream) as book:
            _check_inflation(book)
            size = sum(
                info.file_size for info in book.infolist()
                if info.filename.startswith("xl/worksheets/") or info.filename == "xl/sharedStrings.xml"
            )  # fmt: skip
    except zipfile.BadZipFile as exc:
        raise ValueError(f"not an XLSX file ({exc})") from None
    finally:
        stream.seek(0)
    return size <= max_bytes


Sheet = tuple[int, Iterator[tuple[int, list[Any]]]]


def xlsx_rows(
    stream: IO[bytes], after: int = 0, in_memory: bool | None = None,
    in_memory_max_bytes: int = XLSX_IN_MEMORY_MAX_BYTES,
) -> Sheet:  # fmt: skip
    """The first sheet's height (its last row's number; 0 if unknown) and ``(row number, cells)`` of
    each of its rows after row ``after``, cells as typed values (str, float or int, bool, date,
    datetime; None or ``""`` when empty). ``in_memory``: which reader (unless told, python-calamine
    up to ``in_memory_max_bytes`` of XML, else openpyxl). Raises ValueError for a file that is not
    a readable XLSX workbook."""
    fits = xlsx_in_memory(stream, in_memory_max_bytes)  # also refuses zip bombs
    if in_memory if in_memory is not None else fits:
        return _calamine_rows(stream, after)
    return _openpyxl_rows(stream, after)


def _calamine_rows(stream: IO[bytes], after: int) -> Sheet:
    import python_calamine

    try:
        book = python_calamine.CalamineWorkbook.from_filelike(stream)
        sheet = book.get_sheet_by_index(0)
        # iter_rows gives every row from the first, but each from the range's first used column.
        first_col = (sheet.start or (0, 0))[1]
        height = (sheet.end or (-1, 0))[0] + 1
        rows = sheet.iter_rows()
    except python_calamine.CalamineError as exc:
        raise ValueError(f"not a readable XLSX workbook ({exc})") from None
    pad: list[Any] = [None] * first_col

    def numbered() -> Iterator[tuple[int, list[Any]]]:
        for number, row in enumerate(rows, 1):
            if number > after:
                yield number, pad + row if pad else row

    return height, numbered()


def _openpyxl_rows(stream: IO[bytes], after: int) -> Sheet:
    import openpyxl

    try:
        book = openpyxl.load_workbook(stream, read_only=True, data_only=True)
        sheet = book.worksheets[0]
    except (OSError, KeyError, ValueError, IndexError, zipfile.BadZipFile) as exc:
        raise ValueError(f"not a readable XLSX workbook ({exc})") from None

    def numbered() -> Iterator[tuple[int, list[Any]]]:
        try:
            rows = sheet.iter_rows(min_row=after + 1, min_col=1, values_only=True)
            for number, row in enumerate(rows, after + 1):
                yield number, list(row)
        finally:
            book.close()

    return sheet.max_row or 0, numbered()


def is_header(cells: list[Any], mapping: Mapping[int, str]) -> bool:
    """The header rule (module docstring)."""
    for column, prop in mapping.items():
        cell = cells[column - 1] if column <= len(cells) else None
        if not isinstance(cell, str) or cell.strip().lower() != prop.lower():
            return False
    return bool(mapping)


def _not_a_date() -> date:
    raise ValueError("not YYYY-MM-DD")


def _boolean(cell: Any) -> bool:
    if isinstance(cell, bool):
        return cell
    known = _BOOLEAN_WORDS.get(cell) if cell.__class__ is str else None
    if known is not None:
        return known
    word = str(cell).strip().lower()
    if word in _TRUE:
        return True
    if word in _FALSE:
        return False
    raise ValueError(f"{cell!r} is not true or false")


def _text(cell: Any) -> str:
    """A cell as the text a spreadsheet shows: a whole number without ``.0`` (XLSX readers give
    numbers as floats), a date in ISO 8601, a boolean as ``true``/``false``."""
    if isinstance(cell, str):
        return cell
    if isinstance(cell, bool):
        return "true" if cell else "false"
    if isinstance(cell, float) and cell.is_integer():
        return str(int(cell))
    if hasattr(cell, "isoformat"):
        return str(cell.isoformat())
    return str(cell)


class Coercer:
    """Cells to an entity's property values, under a locale and a timezone offset.

    Each property's conversion is chosen once, from its schema, when the coercer is made: a file's
    rows take a million calls each (bench/NOTES.md, "entity imports")."""

    def __init__(
        self, properties: Mapping[str, Mapping[str, Any]], locale: str = "en-US", tz_offset_min: int = 0
    ):
        tag = locale.strip().lower().replace("_", "-")
        self._month_first = tag in _MONTH_FIRST
        self._decimal_comma = tag.split("-")[0] not in _DECIMAL_POINT_LANGS
        self._offset = timedelta(minutes=tz_offset_min)
        self._tz = timezone(self._offset)
        self._convert: dict[str, Callable[[Any], Any]] = {
            prop: self._converter(spec) for prop, spec in properties.items()
        }

    def row(self, cells: list[Any], mapping: Mapping[int, str]) -> dict[str, Any]:
        """The record of a row ({} when every mapped cell is empty); raises ValueError naming the
        column and property at fault."""
        return self.rows(mapping)(cells)

    def rows(self, mapping: Mapping[int, str]) -> Callable[[list[Any]], dict[str, Any]]:
        """``row`` for one mapping, its columns' conversions looked up once."""
        columns: list[tuple[int, int, str, Callable[[Any], Any]]] = [
            (column, column - 1, prop, self._convert.get(prop, _text)) for column, prop in mapping.items()
        ]

        def row(cells: list[Any]) -> dict[str, Any]:
            out: dict[str, Any] = {}
            width = len(cells)
            for column, index, prop, convert in columns:
                if column > width:
                    continue
                cell = cells[index]
                if cell is None or cell == "" or (cell.__class__ is str and cell.isspace()):
                    continue
                try:
                    out[prop] = convert(cell)
                except ValueError as exc:
                    raise ValueError(f"column {column} ({prop}): {exc}") from None
            return out

        return row

    def value(self, prop: str, cell: Any) -> Any:
        """One cell as the value of ``prop``; raises ValueError."""
        convert: Callable[[Any], Any] = self._convert.get(prop, _text)
        return convert(cell)

    def _converter(self, spec: Mapping[str, Any]) -> Callable[[Any], Any]:
        kind, fmt = spec.get("type"), spec.get("format")
        if isinstance(kind, list):
            kind = next((k for k in kind if k != "null"), None)
        if kind == "integer":
            return self._integer
        if kind == "number":
            return self._number_cell
        if kind == "boolean":
            return _boolean
        if fmt == "date":
            return self._date_text
        if fmt == "date-time":
            return self._date_time_text
        return _text

    def _integer(self, cell: Any) -> int:
        if cell.__class__ is str and cell.isascii() and cell.isdigit():
            return int(cell)
        number = (
            cell if isinstance(cell, int | float) and not isinstance(cell, bool) else self._number(str(cell))
        )
        if float(number) != int(number):
            raise ValueError(f"{cell!r} is not a whole number")
        return int(number)

    def _number_cell(self, cell: Any) -> int | float:
        if isinstance(cell, int | float) and not isinstance(cell, bool):
            return cell
        if not self._decimal_comma and cell.__class__ is str and _PLAIN_DECIMAL.fullmatch(cell):
            return float(cell) if "." in cell else int(cell)
        return self._number(str(cell))

    def _date_text(self, cell: Any) -> str:
        if cell.__class__ is str and len(cell) == 10 and cell[4] == "-" and cell[5] != "W":
            with contextlib.suppress(ValueError):  # else the general path words the error
                return date.fromisoformat(cell).isoformat()  # YYYY-MM-DD, the common cell
        return str(self._date(cell).isoformat())

    def _date_time_text(self, cell: Any) -> str:
        if cell.__class__ is str and len(cell) == 19 and cell[10] in " T" and cell[4] == "-":
            # YYYY-MM-DD HH:MM:SS, the common cell: without an offset, so at timezoneOffset
            with contextlib.suppress(ValueError):  # else the general path words the error
                naive = datetime.fromisoformat(cell)
                return (naive - self._offset if self._offset else naive).isoformat() + "Z"
        moment = self._date_time(cell)
        offset = moment.utcoffset()
        utc = moment.replace(tzinfo=None) - offset if offset else moment.replace(tzinfo=None)
        return utc.isoformat(timespec="seconds") + "Z"

    def _number(self, text: str) -> float | int:
        t = text.strip().replace("\u00a0", "").replace(" ", "")
        if self._decimal_comma:
            t = t.replace(".", "").replace(",", ".")
        else:
            t = t.replace(",", "")
        try:
            return int(t) if re.fullmatch(r"[+-]?\d+", t) else float(t)
        except ValueError:
            raise ValueError(f"{text!r} is not a number") from None

    def _date(self, cell: Any) -> Any:
        if isinstance(cell, datetime):
            return cell.date()
        if hasattr(cell, "isoformat") and not isinstance(cell, str):
            return cell
        text = str(cell).strip()
        m = _DATE_SLASHED.fullmatch(text)
        try:
            if m is None:
                return date.fromisoformat(text) if len(text) == 10 else _not_a_date()
            first, second, year = (int(g) for g in m.groups())
            month, day = (first, second) if self._month_first else (second, first)
            return datetime(year, month, day, tzinfo=UTC).date()
        except ValueError:
            raise ValueError(f"{text!r} is not a date") from None

    def _date_time(self, cell: Any) -> datetime:
        if isinstance(cell, datetime):
            return cell if cell.tzinfo else cell.replace(tzinfo=self._tz)
        text = str(cell).strip()
        try:
            parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            date_part, _, time_part = text.partition(" ")
            m = _TIME.fullmatch(time_part.strip()) if time_part else None
            if m is None:
                raise ValueError(f"{text!r} is not a date and time") from None
            day = self._date(date_part)
            hour, minute, second = int(m[1]), int(m[2]), int(m[3] or 0)
            try:
                parsed = datetime(day.year, day.month, day.day, hour, minute, second)  # noqa: DTZ001 (zone set below)
            except ValueError:
                raise ValueError(f"{text!r} is not a date and time") from None
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=self._tz)
