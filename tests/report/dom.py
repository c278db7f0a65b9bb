"""Reading the page back with the stdlib HTML parser: matrix cells, tables, and any active content."""

from __future__ import annotations

from dataclasses import dataclass, field
from html.parser import HTMLParser


@dataclass
class Page:
    cells: dict[tuple[str, str], dict[str, str]] = field(default_factory=dict)  # (node, namespace) -> attributes
    tables: dict[str, list[list[str]]] = field(default_factory=dict)  # table id -> rows of cell text
    tags: set[str] = field(default_factory=set)
    attributes: set[str] = field(default_factory=set)
    bars: list[dict[str, str]] = field(default_factory=list)
    title: str = ""


class _Reader(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.page = Page()
        self._table: str | None = None
        self._row: list[str] | None = None
        self._cell: list[str] | None = None
        self._in_title = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        self.page.tags.add(tag)
        self.page.attributes.update(a)
        if tag == "td" and "cell" in a.get("class", "").split():
            self.page.cells[(a["data-node"], a["data-namespace"])] = a
        if tag == "rect" and "bar" in a.get("class", "").split():
            self.page.bars.append(a)
        if tag == "table" and a.get("id"):
            self._table = a["id"]
            self.page.tables[self._table] = []
        if tag == "tr" and self._table:
            self._row = []
        if tag in ("td", "th") and self._row is not None:
            self._cell = []
        if tag == "title":
            self._in_title = True

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._row is not None and self._cell is not None:
            self._row.append("".join(self._cell).strip())
            self._cell = None
        if tag == "tr" and self._table and self._row is not None:
            self.page.tables[self._table].append(self._row)
            self._row = None
        if tag == "table":
            self._table = None
        if tag == "title":
            self._in_title = False

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)
        if self._in_title and not self.page.title:
            self.page.title = data


def read(html: str) -> Page:
    reader = _Reader()
    reader.feed(html)
    reader.close()
    return reader.page
