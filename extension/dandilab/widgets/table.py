"""TimeIntervals / DynamicTable: a paged table whose pages are read when shown, with a
filter on one column.

A page reads rows ``[a, b)`` of each column (ragged columns through their index, a
region column as the indices it points to), so a 1 000 000-row table costs one page.
A filter reads only the filtered column, chunk by chunk, and keeps the matching row
numbers.
"""

from __future__ import annotations

import html
import re

import ipywidgets as W
import numpy as np

from .base import MUTED, View, controls, shape_of, text_of

__all__ = ["TablePager", "TableView"]

_CHUNK_ROWS = 65536


def _is_index(col) -> bool:
    return getattr(col, "neurodata_type", "") == "VectorIndex" or type(col).__name__ == "VectorIndex"


class TablePager:
    """Rows of a DynamicTable by page, read lazily: ``columns``, ``__len__``,
    ``rows(a, b)`` -> list of lists of cell texts, ``filter(column, query)``."""

    def __init__(self, table):
        self.table = table
        self.n = len(table.id.data) if hasattr(table.id.data, "__len__") else len(table)
        cols = [c for c in getattr(table, "columns", ()) if not _is_index(c)]
        self.columns = ["id"] + [c.name for c in cols]
        self._cols = {c.name: c for c in cols}
        self._index = {}
        for c in getattr(table, "columns", ()):
            if _is_index(c):
                self._index[c.target.name] = c
        self.selection: np.ndarray | None = None  # row numbers that pass the filter

    def __len__(self) -> int:
        return self.n if self.selection is None else len(self.selection)

    def _column_rows(self, name: str, rows: np.ndarray) -> list[str]:
        """Cell texts of column ``name`` for sorted row numbers ``rows``."""
        if not len(rows):
            return []
        a, b = int(rows[0]), int(rows[-1]) + 1
        if name == "id":
            vals = np.asarray(self.table.id.data[a:b])[rows - a]
            return [text_of(v) for v in vals]
        col = self._cols[name]
        if name in self._index:
            ends = np.asarray(self._index[name].data[max(0, a - 1):b])
            start0 = 0 if a == 0 else int(ends[0])
            ends = ends if a == 0 else ends[1:]
            flat = col.data[start0:int(ends[-1])] if len(ends) and ends[-1] > start0 else []
            flat = np.asarray(flat) if len(flat) else np.empty(0)
            out, prev = [], start0
            for k, e in enumerate(ends):
                if a + k in set(rows.tolist()):
                    out.append(_cell(flat[prev - start0:int(e) - start0], ragged=True))
                prev = int(e)
            return out
        data = col.data
        if getattr(col, "neurodata_type", "") == "DynamicTableRegion":
            vals = np.asarray(data[a:b])[rows - a]
            target = getattr(getattr(col, "table", None), "name", "table")
            return [f"{target}[{text_of(v)}]" for v in vals]
        try:
            vals = data[a:b]
        except Exception:  # noqa: BLE001 - a list-like column that h5py cannot slice
            vals = list(data)[a:b]
        out = []
        for r in rows:
            out.append(_cell(vals[int(r) - a]))
        return out

    def rows(self, a: int, b: int) -> tuple[np.ndarray, list[list[str]]]:
        """(row numbers, cell texts) of displayed rows ``[a, b)`` (after the filter)."""
        sel = (np.arange(a, min(b, self.n)) if self.selection is None
               else self.selection[a:b])
        if not len(sel):
            return sel, []
        cells = {}
        for name in self.columns:
            try:
                cells[name] = self._column_rows(name, sel)
            except Exception as e:  # noqa: BLE001 - one odd column must not hide the others
                cells[name] = [f"(unreadable: {type(e).__name__})"] * len(sel)
        return sel, [[cells[c][k] for c in self.columns] for k in range(len(sel))]

    def filter(self, column: str | None, query: str) -> int:
        """Keep rows whose ``column`` matches ``query``: ``>3``, ``<=0.5``, ``==2``, ``!=x``,
        ``a..b`` (a range) or text (substring, case-insensitive). Empty: no filter.
        Returns the number of rows kept."""
        query = (query or "").strip()
        if not column or not query:
            self.selection = None
            return len(self)
        test = _predicate(query)
        keep = []
        for a in range(0, self.n, _CHUNK_ROWS):
            b = min(self.n, a + _CHUNK_ROWS)
            if column == "id":
                vals = np.asarray(self.table.id.data[a:b])
            elif column in self._index:
                vals = np.asarray(self._column_rows(column, np.arange(a, b)), dtype=object)
            else:
                vals = self._cols[column].data[a:b]
                vals = np.asarray(vals) if hasattr(vals, "__len__") else np.asarray(list(vals))
            keep.append(a + np.nonzero(test(vals))[0])
        self.selection = np.concatenate(keep) if keep else np.empty(0, np.int64)
        return len(self.selection)


def _cell(v, ragged: bool = False) -> str:
    if isinstance(v, (bytes, str)):
        return text_of(v)
    if hasattr(v, "name") and hasattr(v, "neurodata_type"):  # an object reference
        return f"{v.neurodata_type} {v.name}"
    if isinstance(v, dict):  # e.g. a JSON-like column: its items, never "{}"
        return "; ".join(f"{k}: {_cell(x)}" for k, x in v.items()) or "none"
    arr = np.asarray(v) if not isinstance(v, np.ndarray) else v
    if arr.ndim == 0:
        x = arr.item()
        if isinstance(x, float):
            return f"{x:.6g}"
        return text_of(x)
    if arr.dtype.kind in "fiu":
        if arr.size <= 6:
            return "[" + ", ".join(f"{x:.4g}" for x in arr.ravel()) + "]"
        return f"[{arr.size} values: {arr.ravel()[0]:.4g} … {arr.ravel()[-1]:.4g}]"
    return f"[{arr.size} items]"


def _predicate(query: str):
    m = re.fullmatch(r"(<=|>=|==|!=|<|>)\s*(.+)", query)
    rng = re.fullmatch(r"(-?[\d.eE+-]+)\s*\.\.\s*(-?[\d.eE+-]+)", query)

    def as_text(vals):
        return np.array([text_of(v).lower() for v in np.ravel(vals)], dtype=object)

    if rng:
        a, b = float(rng.group(1)), float(rng.group(2))
        return lambda v: (np.asarray(v, float) >= a) & (np.asarray(v, float) <= b)
    if m:
        op, rhs = m.groups()
        try:
            num = float(rhs)
        except ValueError:
            num = None
        ops = {"<": np.less, "<=": np.less_equal, ">": np.greater, ">=": np.greater_equal,
               "==": np.equal, "!=": np.not_equal}
        if num is not None:
            def numeric(v):
                try:
                    return ops[op](np.asarray(v, float), num)
                except (TypeError, ValueError):
                    return ops[op](as_text(v), rhs.lower())
            return numeric
        return lambda v: ops[op](as_text(v), rhs.lower())
    q = query.lower()
    return lambda v: np.array([q in s for s in as_text(v)], dtype=bool)


class TableView(View):
    """``page_size`` rows at a time of a DynamicTable (TimeIntervals, Units, electrodes...)."""

    def __init__(self, table, *, page_size: int = 25):
        super().__init__(table)
        self.pager = TablePager(table)
        self.page_size = page_size
        self.page = 0
        self.html = W.HTML()
        self.prev = W.Button(description="◀ previous", layout=W.Layout(width="110px"))
        self.next = W.Button(description="next ▶", layout=W.Layout(width="110px"))
        self.prev.on_click(lambda _b: self.show_page(self.page - 1))
        self.next.on_click(lambda _b: self.show_page(self.page + 1))
        self.column = W.Dropdown(options=self.pager.columns, description="filter",
                                 layout=W.Layout(width="260px"))
        self.query = W.Text(placeholder="e.g. >0.5, 1..2, left", continuous_update=False,
                            layout=W.Layout(width="220px"))
        self.query.observe(lambda ch: self.apply_filter(self.column.value, ch["new"]), "value")
        self.column.observe(lambda ch: self.apply_filter(ch["new"], self.query.value), "value")
        self.children = [controls([self.prev, self.next, self.column, self.query]), self.html,
                         self.status]
        self.show_page(0)

    @property
    def pages(self) -> int:
        return max(1, -(-len(self.pager) // self.page_size))

    def show_page(self, page: int) -> None:
        self.page = int(np.clip(page, 0, self.pages - 1))
        self.load(self._render)

    def apply_filter(self, column: str, query: str) -> None:
        def run():
            try:
                kept = self.pager.filter(column, query)
            except ValueError as e:
                self.say(f"filter {query!r}: {e}", "warning")
                return
            self.page = 0
            self._render()
            if query:
                self.say(f"{kept} of {self.pager.n} rows match {column} {query}")
        self.load(run)

    def _render(self) -> None:
        a = self.page * self.page_size
        _sel, rows = self.pager.rows(a, a + self.page_size)
        head = "".join(f"<th>{html.escape(c)}</th>" for c in self.pager.columns)
        body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in r) + "</tr>"
                       for r in rows)
        desc = html.escape(text_of(getattr(self.obj, "description", "") or ""))
        self.html.value = (
            f'<div style="color:{MUTED}">{desc}</div>'
            '<div style="overflow-x:auto"><table class="dandilab-table" style="border-collapse:'
            'collapse;font-size:12px"><thead><tr style="text-align:left">' + head +
            "</tr></thead><tbody>" + body + "</tbody></table></div>"
            '<style>.dandilab-table td,.dandilab-table th{border-bottom:1px solid #ddd;'
            'padding:2px 8px;white-space:nowrap}</style>')
        self.prev.disabled = self.page == 0
        self.next.disabled = self.page >= self.pages - 1
        self.say(f"rows {a}–{a + len(rows) - 1} of {len(self.pager)}"
                 f"{'' if self.pager.selection is None else f' (filtered from {self.pager.n})'}"
                 f" · page {self.page + 1} of {self.pages} · "
                 f"{len(self.pager.columns)} columns" if rows else "no rows")

    def shape(self):
        return shape_of(self.obj.id.data)
