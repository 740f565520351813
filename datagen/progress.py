"""Progress of a generator run: a rich progress bar on a terminal, plain log lines otherwise.

Example:
    >>> import io
    >>> out = io.StringIO()
    >>> with Progress(out, fancy=False) as progress:
    ...     advance = progress.start("users", rows=2, size=10)
    ...     advance(10)
    ...     progress.done("users", rows=2, seconds=0.01)
    ...     progress.skipped("orders")
    >>> print(out.getvalue(), end="")
    users: loading 2 rows
    users: 2 rows loaded in 0.01 s
    orders: already holds rows, left alone
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import TextIO

from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, TextColumn, TimeElapsedColumn
from rich.progress import Progress as RichProgress


class Progress:
    """Reports a run table by table; `fancy` defaults to whether `stream` is a terminal."""

    def __init__(self, stream: TextIO | None = None, fancy: bool | None = None) -> None:
        self.stream = stream or sys.stdout
        self.fancy = self.stream.isatty() if fancy is None else fancy
        self._bar: RichProgress | None = None
        self._tasks: dict[str, tuple[int, int]] = {}

    def __enter__(self) -> Progress:
        if self.fancy:
            self._bar = RichProgress(
                TextColumn("{task.description:<20}"), BarColumn(), DownloadColumn(),
                TimeElapsedColumn(), console=Console(file=self.stream), transient=False)
            self._bar.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._bar:
            self._bar.stop()

    def log(self, message: str) -> None:
        """One line of news, above the bar on a terminal."""
        if self._bar:
            self._bar.console.print(message, markup=False, highlight=False)
        else:
            print(message, file=self.stream, flush=True)

    def start(self, table: str, rows: int, size: int) -> Callable[[int], None]:
        """Announce loading `rows` rows (`size` bytes); returns a callback taking bytes sent."""
        if self._bar:
            task = self._bar.add_task(table, total=max(size, 1))
            self._tasks[table] = (task, max(size, 1))
            return lambda sent: self._bar.advance(task, sent)
        self.log(f"{table}: loading {rows} rows")
        return lambda sent: None

    def done(self, table: str, rows: int, seconds: float) -> None:
        """The table's rows are committed."""
        if self._bar and table in self._tasks:
            task, total = self._tasks[table]
            self._bar.update(task, completed=total)
        self.log(f"{table}: {rows} rows loaded in {seconds:.2f} s")

    def skipped(self, table: str, reason: str = "already holds rows, left alone") -> None:
        """The table was not touched."""
        self.log(f"{table}: {reason}")
