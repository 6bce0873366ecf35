"""Reading the department's own spreadsheets as offices make them, without letting a file eat the machine.

Offices put a title row (often merged cells) above the header, add a hidden 填表说明 or 示例 sheet, write
"单位（部门）" or "姓 名" in the header, store dates as Excel serial numbers and phones as numbers. This
module finds the header within the first rows, matches header names after normalising spaces and
full/half-width punctuation (with the usual synonyms), picks the one visible sheet whose header fits,
and turns typed cells (dates, phones, years) into values — every problem named by sheet, row and column.

Limits come first (:class:`SheetLimits`): an .xlsx is a zip whose parts can unpack to gigabytes, and
whose declared dimension can claim a million rows × 16,384 columns; both are checked before a row is
read, rows are streamed (openpyxl ``read_only``) and reading stops at a long run of empty rows.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

from bot.text import Reasoned, fold


class SheetError(Reasoned):
    """The file as a whole cannot be used (type, size, no header, ambiguous sheet). Its reason is a
    template under ``templates/imports/file/``, rendered like a row error (``imports.row_reason``)."""


class CellError(Reasoned):
    """One cell's value cannot be used (a date, a phone); the row is reported, the others still go in.
    Its reason is a template under ``templates/imports/cells/``."""


@dataclass(frozen=True)
class SheetLimits:
    """Configurable as ``[imports]`` (see ``bot.config``)."""

    max_rows: int = 100_000
    max_columns: int = 50
    max_unpacked_mb: float = 50.0
    empty_run: int = 1_000  # this many empty rows in a row end the data
    header_rows: int = 20  # the header is looked for within the first rows

    @property
    def max_bytes(self) -> int:
        return int(self.max_unpacked_mb * 1024 * 1024)


# Sheets that explain or show an example are never imported, hidden or not.
_NOT_DATA = re.compile(r"说明|示例|样例|范例|举例|例表|填表须知|instruction|example|sample", re.IGNORECASE)
_XLSX = (".xlsx", ".xlsm")


@dataclass
class Sheet:
    """The rows of the chosen sheet, keyed by canonical field; values of typed fields already converted."""

    name: str | None  # the worksheet's name; None for a CSV file
    header_line: int
    columns: dict[str, int]  # field -> column index (0-based)
    headers: dict[str, str]  # field -> the header as written in the file
    rows: list[tuple[int, dict[str, Any]]] = field(default_factory=list)  # (line, field -> value)
    bad_rows: list[tuple[int, str, CellError]] = field(default_factory=list)  # (line, field, why) of unusable cells
    empty_lines: int = 0  # empty lines between data lines
    ignored_headers: list[str] = field(default_factory=list)
    notes: list[Reasoned] = field(default_factory=list)  # things the report mentions: template key + values

    def where(self, line: int, field_name: str | None = None) -> str:
        """``工作表“花名册” 第 5 行 C 列（手机）`` — where an error is, as the person will find it in Excel."""
        place = (f"工作表“{self.name}” " if self.name else "") + f"第 {line} 行"
        if field_name and field_name in self.columns:
            place += f" {column_letter(self.columns[field_name])} 列（{self.headers[field_name]}）"
        return place


def column_letter(index: int) -> str:
    """0 -> A, 25 -> Z, 26 -> AA."""
    out, n = "", index + 1
    while n:
        n, rem = divmod(n - 1, 26)
        out = chr(65 + rem) + out
    return out


def norm_header(text: Any) -> str:
    """``单位（部门）``, ``单位(部门)``, `` 姓　名 ``, ``*手机：`` -> one spelling, for matching headers."""
    t = fold(str(text if text is not None else ""))
    t = re.sub(r"\s+", "", t).strip("*※#:").lower()
    return t.replace("【", "(").replace("】", ")").replace("[", "(").replace("]", ")")


_PAREN_TAIL = re.compile(r"\([^()]*\)$")


class HeaderMatcher:
    """Which field a header names: exact (normalised) synonyms first, then without a trailing note in
    brackets (``手机(必填)``). A header that is none of them but contains one (``工作单位及职务``) or is
    contained in one (``电话``) looks like a known column and is refused, not silently ignored."""

    def __init__(self, aliases: dict[str, list[str]]) -> None:
        self.aliases = aliases
        self.lookup = {norm_header(a): f for f, names in aliases.items() for a in [*names, f]}

    def field_of(self, header: Any) -> str | None:
        name = norm_header(header)
        if not name:
            return None
        return self.lookup.get(name) or self.lookup.get(_PAREN_TAIL.sub("", name))

    def looks_like(self, header: Any) -> str | None:
        name = _PAREN_TAIL.sub("", norm_header(header))
        if len(name) < 2:
            return None
        for alias, f in self.lookup.items():
            if len(alias) >= 2 and not alias.isascii() and (alias in name or name in alias):
                return f
        return None


# --- typed cells ---------------------------------------------------------------------------------------

_FULL_DATE = re.compile(r"^(\d{4})\s*[-/.年]\s*(\d{1,2})\s*[-/.月]\s*(\d{1,2})\s*日?$", re.ASCII)
_COMPACT_DATE = re.compile(r"^(\d{4})(\d{2})(\d{2})$", re.ASCII)
_TIME_TAIL = re.compile(r"[T\s]+\d{1,2}:\d{2}(:\d{2}(\.\d+)?)?$")
_EXCEL_EPOCH = dt.date(1899, 12, 30)
# Excel serial numbers from 1950 to 2100: a bare number in a date column outside this is no date.
_SERIAL_RANGE = (18264, 73051)


def sheet_date(value: Any) -> dt.date | None:
    """A date cell: a real date, an Excel serial number (46082), or 2026-03-01 / 2026.3.1 / 2026/3/1 /
    2026年3月1日 / 20260301, with or without a time after it."""
    if value is None or value == "":
        return None
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if float(value).is_integer() and _SERIAL_RANGE[0] <= value <= _SERIAL_RANGE[1]:
            return _EXCEL_EPOCH + dt.timedelta(days=int(value))
        raise CellError("imports/cells/date_number", value=f"{value:g}")
    text = _TIME_TAIL.sub("", fold(str(value)).strip())
    if text.isascii() and text.isdigit() and len(text) == 5:
        return sheet_date(int(text))
    m = _FULL_DATE.match(text) or _COMPACT_DATE.match(text)
    if not m:
        raise CellError("imports/cells/date_text", value=text)
    try:
        return dt.date(*map(int, m.groups()))
    except ValueError:
        raise CellError("imports/cells/date_impossible", value=text) from None


def sheet_phone(value: Any) -> str | None:
    """A mobile number however Excel kept it: 13800138000, 13800138000.0, "138-0013-8000", "+86 138…"."""
    if value is None or value == "":
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    text = re.sub(r"[\s\-()]", "", fold(str(value)))
    if re.fullmatch(r"\d+(\.\d+)?[eE]\+?\d+", text):
        raise CellError("imports/cells/phone_scientific", value=text)
    text = re.sub(r"\.0+$", "", text)
    text = re.sub(r"^(\+?86)(?=1\d{10}$)", "", text)
    if not re.fullmatch(r"1\d{10}", text, re.ASCII):
        raise CellError("imports/cells/phone", value=text)
    return text


def sheet_year(value: Any) -> int | None:
    """A birth year: 1985, 1985.0, a date cell, "1985.03", "1985年3月", "1985-03-12"."""
    if value is None or value == "":
        return None
    if isinstance(value, (dt.date, dt.datetime)):
        return value.year
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    text = fold(str(value)).strip()
    if m := re.fullmatch(r"(\d{4})(?:\s*[-/.年]\s*\d{1,2}(?:\s*[-/.月]\s*\d{1,2}\s*日?)?\s*月?)?", text, re.ASCII):
        return int(m.group(1))
    raise CellError("imports/cells/birth_year", value=text)


def sheet_text(value: Any) -> Any:
    return value.strip() if isinstance(value, str) else value


CONVERTERS = {"date": sheet_date, "phone": sheet_phone, "year": sheet_year, "text": sheet_text}


# --- the file ------------------------------------------------------------------------------------------

@dataclass
class _Source:
    """One candidate sheet of a file: its name, declared size, and a way to stream its rows."""

    name: str | None
    rows: Any  # callable(max_columns) -> iterator of row tuples, from line 1
    declared: tuple[int, int] | None = None  # (rows, columns) as the file declares them


def _check_unpacked(path: Path, limits: SheetLimits) -> None:
    try:
        with zipfile.ZipFile(path) as archive:
            total = sum(info.file_size for info in archive.infolist())
    except zipfile.BadZipFile:
        raise SheetError("imports/file/not_xlsx") from None
    # zipfile never reads past a member's declared size (it fails instead), so the declaration bounds the work.
    if total > limits.max_bytes:
        raise SheetError("imports/file/unpacked_too_big", mb=total / 1024 / 1024, limit_mb=limits.max_unpacked_mb)


def _xlsx_sources(path: Path, limits: SheetLimits) -> tuple[Any, list[_Source], list[str]]:
    from openpyxl import load_workbook

    _check_unpacked(path, limits)
    try:
        wb = load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises many kinds on a damaged file
        raise SheetError("imports/file/cannot_open", error=str(exc)) from None
    sources, skipped = [], []
    for ws in wb.worksheets:
        if not hasattr(ws, "iter_rows"):  # a chart sheet
            continue
        declared = (ws.max_row, ws.max_column) if ws.max_row and ws.max_column else None

        def rows(max_columns: int, ws: Any = ws, declared: Any = declared) -> Iterator[tuple]:
            width = min(declared[1], max_columns) if declared else max_columns
            return ws.iter_rows(min_row=1, max_col=width, values_only=True)

        source = _Source(ws.title, rows, declared)
        if ws.sheet_state != "visible" or _NOT_DATA.search(ws.title):
            skipped.append(source)
        else:
            sources.append(source)
    return wb, sources, skipped


def _csv_source(path: Path, limits: SheetLimits) -> _Source:
    size = path.stat().st_size
    if size > limits.max_bytes:
        raise SheetError("imports/file/csv_too_big", mb=size / 1024 / 1024, limit_mb=limits.max_unpacked_mb)
    data = path.read_bytes()
    for encoding in ("utf-8-sig", "gb18030"):  # Excel in China saves CSV as GBK
        try:
            text = data.decode(encoding)
            break
        except UnicodeDecodeError:
            continue
    else:  # pragma: no cover - gb18030 decodes nearly anything
        raise SheetError("imports/file/csv_encoding")

    def rows(max_columns: int) -> Iterator[tuple]:
        for line, row in enumerate(csv.reader(io.StringIO(text)), start=1):
            if len(row) > max_columns and any(c.strip() for c in row[max_columns:]):
                raise SheetError("imports/file/line_too_wide", line=line, columns=len(row), max_columns=max_columns)
            yield tuple(row[:max_columns])

    return _Source(None, rows)


def _find_header(head: list[tuple], matcher: HeaderMatcher, required: set[str]) -> tuple[int, dict[str, int]] | None:
    """The first of the first rows that names every required field: (index, field -> column)."""
    for i, row in enumerate(head):
        found: dict[str, int] = {}
        for idx, cell in enumerate(row):
            f = matcher.field_of(cell)
            if f is not None and f not in found:
                found[f] = idx
        if required <= found.keys():
            return i, found
    return None


def _head(source: _Source, limits: SheetLimits) -> list[tuple]:
    out = []
    for row in source.rows(limits.max_columns):
        out.append(row)
        if len(out) >= limits.header_rows:
            break
    return out


def _required_names(aliases: dict[str, list[str]], required: set[str]) -> list[str]:
    return [aliases[f][0] for f in sorted(required)]


def read_sheet(
    path: str | Path, aliases: dict[str, list[str]], required: set[str], *, kinds: dict[str, str] | None = None,
    sheet_name: str | None = None, limits: SheetLimits | None = None, what: str = "表格",
) -> Sheet:
    """The data rows of the file's one sheet that fits: ``aliases`` maps a field to the headers that name
    it (the department's Chinese header first), ``required`` fields must all be in the header row,
    ``kinds`` converts typed fields (``date``, ``phone``, ``year``). ``sheet_name`` picks the sheet when
    several fit (``--sheet NAME``); ``what`` names the kind of file in messages (花名册, 结对表…)."""
    path = Path(path)
    limits = limits or SheetLimits()
    kinds = kinds or {}
    if not path.exists():
        raise SheetError("imports/file/not_found", path=str(path))
    suffix = path.suffix.lower()
    matcher = HeaderMatcher(aliases)
    workbook = None
    try:
        if suffix in _XLSX:
            workbook, sources, skipped = _xlsx_sources(path, limits)
        elif suffix == ".csv":
            sources, skipped = [_csv_source(path, limits)], []
        elif suffix in (".xls", ".et", ".wps"):
            raise SheetError("imports/file/old_format", suffix=suffix)
        else:
            raise SheetError("imports/file/wrong_type", suffix=path.suffix)
        source, head_at, columns = _choose(sources, skipped, matcher, aliases, required, sheet_name, limits, what)
        return _read_rows(source, head_at, columns, matcher, kinds, limits)
    finally:
        if workbook is not None:
            workbook.close()


def _choose(sources: list[_Source], skipped: list[_Source], matcher: HeaderMatcher, aliases: dict[str, list[str]],
            required: set[str], sheet_name: str | None, limits: SheetLimits, what: str
            ) -> tuple[_Source, int, dict[str, int]]:
    needed = _required_names(aliases, required)
    if sheet_name is not None:
        wanted = sheet_name.strip()
        named = [s for s in sources + skipped if s.name == wanted]
        if not named:
            raise SheetError("imports/file/no_such_sheet", wanted=wanted,
                             names=[s.name for s in sources + skipped if s.name])
        found = _find_header(_head(named[0], limits), matcher, required)
        if found is None:
            raise SheetError("imports/file/sheet_without_header", wanted=wanted, header_rows=limits.header_rows,
                             needed=needed)
        return named[0], *found
    fits = [(s, found) for s in sources if (found := _find_header(_head(s, limits), matcher, required))]
    if len(fits) > 1:
        raise SheetError("imports/file/several_sheets", what=what, names=[s.name for s, _ in fits])
    if fits:
        return fits[0][0], *fits[0][1]
    if not sources:
        raise SheetError("imports/file/no_sheet")
    hidden_fits = any(_find_header(_head(s, limits), matcher, required) for s in skipped)
    raise SheetError("imports/file/header_missing", needed=needed, sheet=sources[0].name, several=len(sources) > 1,
                     header_rows=limits.header_rows, hidden_fits=hidden_fits)


def _read_rows(source: _Source, head_at: int, columns: dict[str, int], matcher: HeaderMatcher,
               kinds: dict[str, str], limits: SheetLimits) -> Sheet:
    if source.declared:
        n_rows, n_cols = source.declared
        if n_rows > limits.max_rows or n_cols > limits.max_columns:
            raise SheetError("imports/file/too_large", sheet=source.name, rows=n_rows, columns=n_cols,
                             max_rows=limits.max_rows, max_columns=limits.max_columns)
    sheet = Sheet(source.name, head_at + 1, columns, {})
    run, run_start = 0, 0
    for line, raw in enumerate(source.rows(limits.max_columns), start=1):
        if line <= head_at:
            continue
        if line == head_at + 1:
            _check_header(sheet, raw, matcher)
            continue
        values = {f: sheet_text(raw[c]) if c < len(raw) else None for f, c in columns.items()}
        if all(v is None or v == "" for v in values.values()):
            if run == 0:
                run_start = line
            run += 1
            if run >= limits.empty_run:
                if source.declared and source.declared[0] > line:
                    sheet.notes.append(Reasoned("imports/file/empty_run", start=run_start, run=run, sheet=source.name,
                                                declared=source.declared[0]))
                break
            continue
        if line > limits.max_rows:
            raise SheetError("imports/file/too_many_rows", sheet=source.name, line=line, max_rows=limits.max_rows)
        sheet.empty_lines += run
        run = 0
        converted = _convert(sheet, line, values, kinds)
        if converted is not None:
            sheet.rows.append((line, converted))
    return sheet


def _check_header(sheet: Sheet, row: tuple, matcher: HeaderMatcher) -> None:
    where = {"sheet": sheet.name, "line": sheet.header_line}
    for idx, cell in enumerate(row):
        text = str(cell).strip() if cell is not None else ""
        if not text:
            continue
        f = matcher.field_of(cell)
        if f is None:
            like = matcher.looks_like(cell)
            if like is not None:
                raise SheetError("imports/file/header_looks_like", **where, column=column_letter(idx), text=text,
                                 names=list(dict.fromkeys(matcher.aliases[like][:3])))
            sheet.ignored_headers.append(text)
        elif sheet.columns.get(f) != idx:
            raise SheetError("imports/file/header_twice", **where, column=column_letter(idx), text=text,
                             first=column_letter(sheet.columns[f]))
        else:
            sheet.headers[f] = text


def _convert(sheet: Sheet, line: int, values: dict[str, Any], kinds: dict[str, str]) -> dict[str, Any] | None:
    for f, kind in kinds.items():
        if f not in values:
            continue
        try:
            values[f] = CONVERTERS[kind](values[f])
        except CellError as exc:
            sheet.bad_rows.append((line, f, exc))
            return None
    return values
