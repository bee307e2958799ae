"""How wide nnexp's output is, and what fits in it: the tables of `report`, `check`, a sweep and a run.

A terminal gets its own width; output that is piped or captured (CI logs, files) gets a wide console, where
rich would otherwise assume 80 columns and wrap every row. A table is printed as it is when it fits; when it
does not, its caller switches to a layout that keeps every label and number whole (measured here, with
rich's own measure). Paths and commands a user copies are printed unwrapped, never through a table.
"""

from __future__ import annotations

from rich.cells import cell_len
from rich.console import Console, RenderableType
from rich.measure import Measurement
from rich.table import Table

PIPED_WIDTH = 200  # columns when stdout is not a terminal: one table row per line in a log
_UNBOUNDED = 100_000


def stdout_console() -> Console:
    """A console on stdout with plain text (overrides, claims and paths hold brackets: no markup, no
    highlighting, no emoji codes); a terminal's own width, else :data:`PIPED_WIDTH`."""
    console = Console(highlight=False, markup=False, emoji=False)
    if not console.is_terminal:
        console = Console(highlight=False, markup=False, emoji=False, width=PIPED_WIDTH)
    return console


def needed_width(console: Console, renderable: RenderableType) -> int:
    """The columns ``renderable`` takes when nothing in it wraps (rich caps its measure at the console's width,
    so it is measured against an unbounded one)."""
    return Measurement.get(console, console.options.update_width(_UNBOUNDED), renderable).maximum


def fits(console: Console, renderable: RenderableType) -> bool:
    return needed_width(console, renderable) <= console.width


def pack(words: list[str], width: int) -> list[str]:
    """``words`` joined by spaces into lines of at most ``width`` columns, broken only between words; a word
    longer than ``width`` stays whole on a line of its own (a label or a path is never cut)."""
    lines: list[str] = []
    for word in words:
        if lines and cell_len(lines[-1]) + 1 + cell_len(word) <= width:
            lines[-1] += " " + word
        else:
            lines.append(word)
    return lines


def wrap_between(label: str, width: int) -> str:
    """``label`` broken into lines of at most ``width`` columns between its overrides (words)."""
    return "\n".join(pack(label.split(" "), width))


def first_column_room(console: Console, table: Table, header: str, labels: list[str]) -> int | None:
    """The columns the first column of ``table`` (``header`` over ``labels``, each on one line) may have while
    every other column keeps its whole width; None when that is too narrow for a label's longest override."""
    widest = max(cell_len(header), *(cell_len(label) for label in labels))
    room = console.width - (needed_width(console, table) - widest)
    longest = max(cell_len(header), *(cell_len(word) for label in labels for word in label.split(" ")))
    return room if room >= longest else None


def print_titled(console: Console, words: list[str], table: Table) -> None:
    """``table`` under the title ``words`` make: the table's own title when it fits the table's width (rich
    would wrap it inside that width, at any space), else lines of their own as wide as the console, broken
    only between the words (overrides: one may hold a space)."""
    title = " ".join(words)
    if cell_len(title) <= min(needed_width(console, table), console.width):
        table.title, table.title_justify = title, "left"
    else:
        table.title = None
        for line in pack(words, console.width):
            console.print(line, soft_wrap=True)
    console.print(table)
