"""Reading the department's own spreadsheets (.xlsx via openpyxl, .csv in UTF-8 or GBK as Excel saves it)."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bot.text import fold


class SheetError(ValueError):
    """The file as a whole cannot be read (wrong type, no header, missing required columns)."""


@dataclass
class Sheet:
    columns: dict[str, int]  # canonical field -> column index
    rows: list[tuple[int, dict[str, Any]]]  # (line number in the sheet, field -> value)
    empty_lines: list[int]
    ignored_headers: list[str]


def _norm_header(text: Any) -> str:
    return fold(str(text or "")).strip().strip("*").replace(" ", "").lower()


def _raw_rows(path: Path) -> list[list[Any]]:
    suffix = path.suffix.lower()
    if suffix == ".xlsx":
        from openpyxl import load_workbook

        try:
            wb = load_workbook(path, read_only=True, data_only=True)
        except Exception as exc:
            raise SheetError(f"无法打开 Excel 文件：{exc}") from None
        try:
            ws = wb.worksheets[0]
            return [list(r) for r in ws.iter_rows(values_only=True)]
        finally:
            wb.close()
    if suffix == ".csv":
        data = path.read_bytes()
        for encoding in ("utf-8-sig", "gb18030"):
            try:
                text = data.decode(encoding)
                break
            except UnicodeDecodeError:
                continue
        else:  # pragma: no cover - gb18030 decodes nearly anything
            raise SheetError("CSV 文件编码无法识别，请另存为 UTF-8")
        return [list(r) for r in csv.reader(io.StringIO(text))]
    raise SheetError(f"只支持 .xlsx 和 .csv 文件，收到的是 {path.suffix or '无扩展名'}")


def read_sheet(path: str | Path, aliases: dict[str, list[str]], required: set[str]) -> Sheet:
    """Rows of the first sheet keyed by canonical field names; the first non-empty row is the header.

    ``aliases`` maps a field to the headers that name it, the Chinese header the department uses first.
    """
    path = Path(path)
    if not path.exists():
        raise SheetError(f"找不到文件 {path}")
    raw = _raw_rows(path)
    lookup = {_norm_header(a): field for field, names in aliases.items() for a in [*names, field]}
    header_at = next((i for i, r in enumerate(raw) if any(str(c or "").strip() for c in r)), None)
    if header_at is None:
        raise SheetError("文件是空的")
    columns: dict[str, int] = {}
    ignored = []
    for idx, cell in enumerate(raw[header_at]):
        name = _norm_header(cell)
        if not name:
            continue
        field = lookup.get(name)
        if field is None:
            ignored.append(str(cell).strip())
        elif field in columns:
            raise SheetError(f"表头“{str(cell).strip()}”重复")
        else:
            columns[field] = idx
    missing = required - columns.keys()
    if missing:
        expected = "、".join(aliases[m][0] for m in sorted(missing))
        raise SheetError(f"表头缺少必填列：{expected}（第 {header_at + 1} 行是表头）")
    rows, empty = [], []
    for i, r in enumerate(raw[header_at + 1:], start=header_at + 2):
        values = {f: (r[c] if c < len(r) else None) for f, c in columns.items()}
        values = {f: (v.strip() if isinstance(v, str) else v) for f, v in values.items()}
        if all(v is None or v == "" for v in values.values()):
            empty.append(i)
            continue
        rows.append((i, values))
    return Sheet(columns, rows, empty, ignored)
