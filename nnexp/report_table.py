"""The tables of `nnexp report`, whole at any width.

The configurations table is printed as it is when one row per configuration fits the console. When it does
not, the labels are wrapped between their overrides, if that is enough; else the labels become a numbered
list (wrapped between overrides) and the numbers follow in as many tables as the width needs, each keyed by
that number. A number never folds and an override is never cut, at 80 columns as at 200.
"""

from __future__ import annotations

from rich.cells import cell_len
from rich.console import Console
from rich.table import Table
from rich.text import Text

from nnexp.terminal import first_column_room, fits, pack, print_titled, wrap_between

Cells = tuple[str | Text, ...]
_RIGHT = ("#", "n", "best epoch")
_WRAPPED = ("claim", "per seed", "error")  # sentences, wrapped between words; every other cell stays whole


def table(title: str | None, columns: tuple[str, ...], rows: list[Cells], caption: str = "",
          first_whole: bool = False) -> Table:
    """The first column names the row: wrapped (between overrides, or folded if one is too long) unless
    ``first_whole``, when its cells come broken into lines already."""
    t = Table(title=title, title_justify="left", caption=caption or None, caption_justify="left")
    for i, col in enumerate(columns):
        t.add_column(col, justify="right" if col in _RIGHT else "left", overflow="fold",
                     no_wrap=(i > 0 or first_whole) and col not in _WRAPPED)
    for row in rows:
        t.add_row(*row)
    return t


def _words(label: str | Text) -> list[str]:
    return str(label).split(" ")


def _broken(rows: list[Cells], width: int) -> list[Cells]:
    """Each row's label broken into lines of at most ``width`` columns, between overrides."""
    return [(wrap_between(str(r[0]), width), *r[1:]) for r in rows]


def print_configurations(console: Console, title: str, columns: tuple[str, ...], rows: list[Cells], order: str,
                         notes: str) -> None:
    """The configurations table, in the first layout that fits (see the module's docstring)."""
    whole = table(None, columns, rows, caption=f"{order}; {notes}")
    if not rows or fits(console, whole):
        print_titled(console, title.split(" "), whole)
        return
    room = first_column_room(console, whole, columns[0], [str(r[0]) for r in rows])
    if room is not None:
        print_titled(console, title.split(" "),
                     table(None, columns, _broken(rows, room), caption=f"{order}; {notes}", first_whole=True))
        return
    _print_numbered(console, title, columns, rows, order, notes)


def _print_numbered(console: Console, title: str, columns: tuple[str, ...], rows: list[Cells], order: str,
                    notes: str) -> None:
    """The labels as a numbered list, then the numbers in tables as wide as the console, keyed by that number."""
    for text in (title, f"{columns[0]}s, {order}:"):
        for line in pack(text.split(" "), console.width):
            console.print(line, soft_wrap=True)
    digits = len(str(len(rows)))
    indent = 2 + digits + 2
    for number, row in enumerate(rows, 1):
        lines = pack(_words(row[0]), console.width - indent)
        console.print(f"  {number:>{digits}}  {lines[0]}", soft_wrap=True)
        for line in lines[1:]:
            console.print(" " * indent + line, soft_wrap=True)
    keyed = [(str(number), *row[1:]) for number, row in enumerate(rows, 1)]
    for group in _column_groups(console, columns[1:], keyed):
        console.print(table(None, ("#", *(columns[1 + j] for j in group)),
                            [(r[0], *(r[1 + j] for j in group)) for r in keyed]))
    console.print(notes, soft_wrap=True)


def _column_groups(console: Console, columns: tuple[str, ...], keyed: list[Cells]) -> list[list[int]]:
    """The numeric columns, in order, cut into runs whose table (with the key column) fits the console; a
    column too wide even alone gets a table of its own."""
    groups: list[list[int]] = [[]]
    for j in range(len(columns)):
        candidate = [*groups[-1], j]
        trial = table(None, ("#", *(columns[k] for k in candidate)), [(r[0], *(r[1 + k] for k in candidate))
                                                                     for r in keyed])
        if groups[-1] and not fits(console, trial):
            groups.append([j])
        else:
            groups[-1] = candidate
    return groups


def print_failed(console: Console, title: str, rows: list[Cells]) -> None:
    """The jobs apart (failed, unfinished): the error wraps between words; a label only between overrides."""
    columns = ("configuration", "seed", "status", "error")
    whole = table(title, columns, rows)
    if fits(console, whole):
        console.print(whole)
        return
    width = max(max(cell_len(w) for r in rows for w in _words(r[0])), console.width // 3)
    console.print(table(title, columns, _broken(rows, width), first_whole=True))

