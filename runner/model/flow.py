"""The data flow of a pipeline: what each name a file reads means, what each file waits for, and
what it writes. This is the one place that rule lives; `validate`, `plan`, the executor and the
Airflow DAGs all read the `Flow` it computes.

A name a file reads resolves, first match wins, to:
- `view`: the result of an earlier `mode: view` file (`completed_orders`);
- `result`: the result of an earlier writing file, read unqualified (`users` after 020_users.sql);
- `staged`: a qualified read of a table this run writes earlier (`mysql.users` after
  020_users.sql in a pipeline whose target is mysql): the staged copy about to be published;
- `source`: an unqualified table that pipeline.toml declares (for a Kafka source, the one
  view `tables` names, whose table is the topic);
- `external`: a qualified read of a published table of a connection (`postgresql.users`).
Anything else is a problem for `validate`: a name only a later file produces, an unknown name,
or a qualifier that is not a database connection.

A file waits for the earlier files whose results it reads, and a file that produces a name
waits for the earlier files that read that name as it stood before the run: its result would
shadow the source table, and its staging table would stand behind the target's staged copy.

`Flow.select` cuts out the part of a flow that `run --select` runs (and `show`, without checks).

Example:
    >>> from runner.model.pipeline import load_pipeline
    >>> flow = pipeline_flow(load_pipeline("marts"))
    >>> [(read.name, read.kind) for read in flow.steps[0].reads]
    [('orders', 'source'), ('users', 'source')]
    >>> flow.steps[0].writes
    ('mysql', 'mart_user_activity')
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from functools import cached_property

from runner import config
from runner.errors import InvalidPipeline
from runner.model.pipeline import WRITE_MODES, Pipeline, Problem, SqlFile

RESOLVED = ("view", "result", "staged", "source", "external")

Table = tuple[str, str]  # (connection name, or "view"; table name)


@dataclass(frozen=True)
class Read:
    """One name a file reads, resolved."""

    name: str  # as the SQL writes it: `orders`, `mysql.users`
    kind: str  # one of RESOLVED, or "problem"
    connection: str = ""  # where its rows live: a connection name, or "view" for a view
    table: str = ""  # the table (or topic, or view) there
    producer: int | None = None  # the earlier file whose result it is
    line: int = 1
    problem: str = ""

    @property
    def node(self) -> Table:
        """The read as a lineage node."""
        return (self.connection, self.table)

    @property
    def label(self) -> str:
        return self.table if self.connection == "view" else f"{self.connection}.{self.table}"


@dataclass(frozen=True)
class Step:
    """One file of the flow: what it reads, whom it waits for, what it writes."""

    index: int
    file: SqlFile
    reads: tuple[Read, ...]
    waits_for: tuple[int, ...]
    target_connection: str

    @property
    def writes(self) -> Table | None:
        """The published table, for overwrite, append and merge files."""
        return (self.target_connection, self.file.target) if self.file.mode in WRITE_MODES else None

    @property
    def output(self) -> Table | None:
        """What later files can read: the published table, a view, or nothing (a check)."""
        if self.file.mode == "view":
            return ("view", self.file.target)
        return self.writes

    def read(self, name: str) -> Read:
        return next(read for read in self.reads if read.name == name)

    def describe(self) -> str:
        """Where and how the result goes, e.g. `mysql.users (overwrite, keys user_id)`."""
        sql_file = self.file
        if sql_file.mode == "view":
            return f"view {sql_file.target}"
        if sql_file.mode == "check":
            return "check (fails the run if it returns rows)"
        keys = f", keys {', '.join(sql_file.keys)}" if sql_file.keys else ""
        verify = f", verified by checksum against {self.copied.label}" if sql_file.verify and self.copied else ""
        return f"{self.target_connection}.{sql_file.target} ({sql_file.mode}{keys}{verify})"

    @property
    def copied(self) -> Read | None:
        """The database table this file copies, if it reads exactly one (what `verify` compares with)."""
        if len(self.reads) == 1 and self.reads[0].kind in ("source", "external") \
                and self.reads[0].connection != "kafka":
            return self.reads[0]
        return None


@dataclass(frozen=True)
class Flow:
    """A pipeline's files as steps, in run order."""

    pipeline: Pipeline
    steps: tuple[Step, ...]
    selected: tuple[int, ...] | None = None  # after `select`: the files whose targets are published

    def publishes(self, step: Step) -> bool:
        """Whether a run of this flow publishes the step's target (a selected writer, or any writer)."""
        return step.writes is not None and (self.selected is None or step.index in self.selected)

    def select(self, stems: Iterable[str], checks: bool = True) -> Flow:
        """The part of the flow that runs when only some files are wanted (`run --select`).

        It holds the selected files, the checks that read their results (directly or through
        views; left out with `checks=False`, as `show` does), and every earlier file whose view
        or result those read, transitively. Only the selected files' targets are published: an
        earlier writer is in it because a selected file or a check reads its result, which is
        computed and staged like any other (a check reads the staged copy) but not published.

        Raises InvalidPipeline (exit 2) for a stem that is no file of the pipeline, naming it and
        the pipeline's files.

        Example:
            >>> from runner.model.pipeline import load_pipeline
            >>> marts = pipeline_flow(load_pipeline("marts")).select(["010_mart_user_activity"])
            >>> marts.writes()
            [('mysql', 'mart_user_activity')]
        """
        by_stem = {step.file.path.stem: step for step in self.steps}
        wanted = list(dict.fromkeys(stem.strip() for stem in stems if stem.strip()))
        unknown = [stem for stem in wanted if stem not in by_stem]
        if unknown or not wanted:
            raise InvalidPipeline(
                f"--select: pipeline {self.pipeline.name} has no file {', '.join(map(repr, unknown)) or 'named'} "
                f"(its files: {', '.join(by_stem) or 'none'})")
        selected = {by_stem[stem].index for stem in wanted}
        needed = set(selected)
        if checks:
            touched = set(selected)  # the selected files and the views over them, transitively
            for step in self.steps:  # in file order: a view over a view over a selected file counts
                if step.file.mode in ("view", "check") and touched & _producers(step):
                    touched.add(step.index)
                    if step.file.mode == "check":
                        needed.add(step.index)
        for step in reversed(self.steps):  # a file's producers come before it
            if step.index in needed:
                needed |= _producers(step)
        # Waiting only matters between files that run: a file left out holds up nothing.
        steps = tuple(replace(step, waits_for=tuple(i for i in step.waits_for if i in needed))
                      for step in self.steps if step.index in needed)
        return Flow(self.pipeline, steps, tuple(sorted(selected)))

    @cached_property
    def readers(self) -> dict[int, int]:
        """For each file, how many later files read its result (so it is worth keeping)."""
        counts = {step.index: 0 for step in self.steps}
        for step in self.steps:
            for producer in {read.producer for read in step.reads if read.producer is not None}:
                counts[producer] += 1
        return counts

    def registered(self) -> list[str]:
        """Names a run registers from a connection (sources and external tables), first read first."""
        return _unique(read.name for step in self.steps for read in step.reads
                       if read.kind in ("source", "external"))

    def staged(self) -> list[str]:
        """Qualified names read from this run's staged copies."""
        return _unique(read.name for step in self.steps for read in step.reads if read.kind == "staged")

    def writes(self) -> list[Table]:
        """The tables a run publishes, in file order."""
        return _unique(step.writes for step in self.steps if self.publishes(step))

    def inputs(self) -> list[Table]:
        """The database tables a run reads that something other than this run produces (its
        Airflow inlets): source tables and external tables it does not publish itself."""
        written = set(self.writes())
        return _unique(read.node for step in self.steps for read in step.reads
                       if read.kind in ("source", "external") and read.connection != "kafka"
                       and read.node not in written)

    def problems(self) -> list[Problem]:
        problems = [Problem(step.file.path, read.line, read.problem)
                    for step in self.steps for read in step.reads if read.problem]
        return problems + [
            Problem(step.file.path, step.file.header_lines["verify"],
                    "verify: checksum compares the result with the one database table the file copies, "
                    f"but it reads {', '.join(r.name for r in step.reads) or 'nothing'}: read exactly one "
                    "source table (or drop the verify line)")
            for step in self.steps if step.file.verify and not step.copied and not any(r.problem for r in step.reads)]


def pipeline_flow(pipeline: Pipeline) -> Flow:
    """Resolve every read of every file, and what each file waits for."""
    target = pipeline.settings.target
    produced: dict[str, int] = {}  # name -> the earlier file whose result it is
    readers_of_originals: dict[str, list[int]] = {}
    steps = []
    for index, sql_file in enumerate(pipeline.files):
        reads = tuple(_resolve(pipeline, index, name, produced) for name in sql_file.reads)
        waits = {read.producer for read in reads if read.producer is not None}
        for read in reads:
            qualifier, _, table = read.name.rpartition(".")
            if read.producer is None and qualifier in ("", target):
                readers_of_originals.setdefault(table, []).append(index)
        if sql_file.mode != "check":
            waits |= {i for i in readers_of_originals.get(sql_file.target, []) if i != index}
            produced[sql_file.target] = index
        steps.append(Step(index, sql_file, reads, tuple(sorted(waits)), target))
    return Flow(pipeline, tuple(steps))


def _resolve(pipeline: Pipeline, index: int, name: str, produced: dict[str, int]) -> Read:
    """What `name`, read by the file at `index`, means; `produced` maps the names earlier files produce."""
    settings, files = pipeline.settings, pipeline.files
    line = files[index].line_of(name)
    later = next((f for f in files[index + 1:] if f.target == name and f.mode != "check"), None)
    qualifier, _, table = name.rpartition(".")
    if qualifier:
        if qualifier not in config.CONNECTIONS or qualifier == "kafka":
            return Read(name, "problem", line=line, problem=(
                f"{name}: {qualifier!r} is not a database connection "
                "(qualify with postgresql. or mysql., or leave unqualified)"))
        producer = produced.get(table)
        if qualifier == settings.target and producer is not None and files[producer].writes:
            return Read(name, "staged", qualifier, table, producer, line)
        return Read(name, "external", qualifier, table, line=line)
    if name in produced:
        producer = produced[name]
        kind = "view" if files[producer].mode == "view" else "result"
        connection = "view" if kind == "view" else settings.target
        return Read(name, kind, connection, name, producer, line)
    if name in settings.tables:
        # A Kafka source's view has a name of its own; what it reads is the topic.
        table = settings.topic if settings.source == "kafka" else name
        return Read(name, "source", settings.source, table, line=line)
    if later:
        return Read(name, "problem", line=line, problem=(
            f"reads {name!r}, which {later.name} produces later: "
            "files run in file-name order, so renumber them"))
    if any(p.path == pipeline.settings_path for p in pipeline.problems):
        return Read(name, "problem", line=line)  # the settings are broken and reported; tables unknown
    if not settings.tables:
        return Read(name, "problem", line=line, problem=(
            f"unknown table {name!r}: no earlier file produces it and {pipeline.settings_path.name} "
            f"declares no source tables (add tables = [\"{name}\", ...])"))
    where = (f"the topic of {pipeline.settings_path.name}" if settings.source == "kafka"
             else f"tables in {pipeline.settings_path.name}")
    return Read(name, "problem", line=line, problem=(
        f"unknown table {name!r}: neither a view of an earlier file nor a source table "
        f"({where}: {', '.join(sorted(settings.tables))})"))


def _producers(step: Step) -> set[int]:
    return {read.producer for read in step.reads if read.producer is not None}


def _unique(items) -> list:
    return list(dict.fromkeys(items))
