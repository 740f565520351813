"""Load a pipeline: a directory of ordered SQL files and its `pipeline.toml` settings.

Loading never fails on bad content: every problem is kept, with the file and line, for
`validate` to report all of them at once.

Example:
    >>> pipeline = load_pipeline("marts")
    >>> [f.name for f in pipeline.files][:1]
    ['010_mart_user_activity.sql']
    >>> pipeline.files[0].reads   # in order of appearance; a join hint's names are not reads
    ['orders', 'users']
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import sqlglot
from sqlglot import exp

from runner import config

SQL_ROOT = config.ROOT / "sql"
SETTINGS_FILE = "pipeline.toml"

MODES = ("overwrite", "append", "merge", "view", "check")
WRITE_MODES = ("overwrite", "append", "merge")
HEADER_KEYS = ("target", "mode", "keys", "verify")
VERIFY = ("checksum",)
SETTINGS_KEYS = ("description", "schedule", "source", "tables", "topic", "target", "consumer",
                 "max_events_per_run", "publish_timeout")
# Events one run of a Kafka source reads at most: a batch of small events that the default
# driver memory holds with room to spare; a larger backlog drains over several runs.
DEFAULT_MAX_EVENTS_PER_RUN = 100_000

_STRING_TYPES = {"VARCHAR", "CHAR", "NVARCHAR", "NCHAR"}
_HEADER_LINE = re.compile(r"^--\s*([A-Za-z_][\w-]*)\s*:\s*(.*?)\s*$")
_PREFIX = re.compile(r"^\d+_")


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a pipeline, printed as `path:line: message`."""

    path: Path
    line: int
    message: str

    def __str__(self) -> str:
        return f"{_relative(self.path)}:{self.line}: {self.message}"


@dataclass(frozen=True)
class Settings:
    """The directory's settings: where its tables come from and go to, and when it runs."""

    description: str = ""
    schedule: str | None = None
    source: str = "postgresql"
    tables: tuple[str, ...] = ()
    topic: str = ""
    target: str = "mysql"
    # A Kafka source: the name its stored offsets are kept under (default: the directory's name),
    # and the most events one run reads.
    consumer: str = ""
    max_events_per_run: int = DEFAULT_MAX_EVENTS_PER_RUN
    # Seconds a publish keeps retrying a swap that readers block (None: RUNNER_PUBLISH_TIMEOUT, else 120).
    publish_timeout: float | None = None


@dataclass
class SqlFile:
    """One transform: a single SELECT, its header, and the tables it reads."""

    path: Path
    sql: str
    target: str
    mode: str = "overwrite"
    keys: tuple[str, ...] = ()
    verify: str = ""  # "checksum": the staged copy must equal the one source table it reads
    reads: list[str] = field(default_factory=list)
    tree: exp.Expression | None = None
    header_lines: dict[str, int] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def writes(self) -> bool:
        return self.mode in WRITE_MODES

    def declared_sizes(self) -> dict[str, int]:
        """Column sizes the SQL declares with `cast(x as varchar(n)) as column` (largest wins).

        Read from the tokens: sqlglot's Spark dialect parses VARCHAR(n) as an unsized STRING.
        """
        sizes: dict[str, int] = {}
        try:
            tokens = sqlglot.tokenize(self.sql, read="spark")
        except sqlglot.errors.TokenError:
            return sizes
        kinds = [t.token_type.name for t in tokens]
        for i, kind in enumerate(kinds):
            if kind not in _STRING_TYPES or kinds[i + 1:i + 5] != ["L_PAREN", "NUMBER", "R_PAREN", "R_PAREN"]:
                continue
            j = i + 5 + (kinds[i + 5:i + 6] == ["ALIAS"])
            if j < len(tokens) and (kinds[j] in ("VAR", "IDENTIFIER") or tokens[j].text.isidentifier()):
                name = tokens[j].text
                sizes[name] = max(sizes.get(name, 0), int(tokens[i + 2].text))
        return sizes

    def line_of(self, table: str) -> int:
        """The first line where `table` is read (1 if unknown)."""
        for node in table_nodes(self.tree):
            if _table_name(node) == table:
                return node.this.meta.get("line", 1)
        return 1


@dataclass
class Pipeline:
    """A directory under `sql/`: its settings and its files in run order."""

    name: str
    directory: Path
    settings: Settings
    files: list[SqlFile]
    problems: list[Problem] = field(default_factory=list)

    @property
    def settings_path(self) -> Path:
        return self.directory / SETTINGS_FILE

    def all_problems(self) -> list[Problem]:
        return self.problems + [p for f in self.files for p in f.problems]


def pipeline_names(root: Path = SQL_ROOT) -> list[str]:
    """Names of the pipelines: directories under `sql/` holding a `pipeline.toml`."""
    return sorted(p.parent.name for p in root.glob(f"*/{SETTINGS_FILE}"))


def pipeline_directory(name_or_path: str | Path) -> Path:
    """`marts` -> sql/marts; a path is taken as it is."""
    path = Path(name_or_path)
    if path.is_dir():
        return path.resolve()
    candidate = SQL_ROOT / str(name_or_path)
    if candidate.is_dir():
        return candidate
    known = ", ".join(pipeline_names()) or "none"
    raise FileNotFoundError(f"no pipeline {str(name_or_path)!r}: not a directory, nor one under sql/ (known: {known})")


def load_pipeline(name_or_path: str | Path) -> Pipeline:
    """Read a pipeline directory: settings, then each `*.sql` file in file-name order."""
    directory = pipeline_directory(name_or_path)
    problems: list[Problem] = []
    settings = _load_settings(directory / SETTINGS_FILE, problems)
    files = [load_sql_file(path) for path in sorted(directory.glob("*.sql"))]
    if not files:
        problems.append(Problem(directory / SETTINGS_FILE, 1, "the pipeline has no .sql files"))
    return Pipeline(directory.name, directory, settings, files, problems)


def _load_settings(path: Path, problems: list[Problem]) -> Settings:
    if not path.exists():
        problems.append(Problem(path, 1, f"missing {SETTINGS_FILE}: it names the source, the target and the schedule"))
        return Settings()
    text = path.read_text()
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        line = int(m.group(1)) if (m := re.search(r"line (\d+)", str(error))) else 1
        problems.append(Problem(path, line, f"not valid TOML: {error}"))
        return Settings()

    def line_of(key: str) -> int:
        for number, line in enumerate(text.splitlines(), 1):
            if re.match(rf"\s*{re.escape(key)}\s*=", line):
                return number
        return 1

    for key in raw:
        if key not in SETTINGS_KEYS:
            problems.append(Problem(path, line_of(key), f"unknown setting {key!r} (known: {', '.join(SETTINGS_KEYS)})"))
    for key in ("source", "target"):
        if raw.get(key, "x") not in config.CONNECTIONS:
            problems.append(Problem(path, line_of(key),
                                    f"{key} = {raw.get(key)!r} is not a connection "
                                    f"(use {', '.join(config.CONNECTIONS)})"))
    if raw.get("target") == "kafka":
        problems.append(Problem(path, line_of("target"), "target = 'kafka' is not supported: publish to a database"))
    topic = ""
    if raw.get("source") == "kafka":
        try:
            topic = config.expand(str(raw.get("topic", "")))
        except config.ConfigError as error:
            problems.append(Problem(path, line_of("topic"), str(error)))
        if not topic:
            problems.append(Problem(path, line_of("source"), "a kafka source needs topic = \"...\""))
    tables = raw.get("tables", [])
    if not isinstance(tables, list) or not all(isinstance(t, str) for t in tables):
        problems.append(Problem(path, line_of("tables"), "tables must be a list of table names"))
        tables = []
    if raw.get("source") == "kafka" and len(tables) > 1:
        problems.append(Problem(path, line_of("tables"),
                                "a kafka source is one view: tables = [\"<name the SQL reads>\"]"))
    limit = raw.get("max_events_per_run", DEFAULT_MAX_EVENTS_PER_RUN)
    if not isinstance(limit, int) or isinstance(limit, bool) or limit < 1:
        problems.append(Problem(path, line_of("max_events_per_run"), "max_events_per_run must be a positive integer"))
        limit = DEFAULT_MAX_EVENTS_PER_RUN
    return Settings(
        description=str(raw.get("description", "")),
        schedule=raw.get("schedule"),
        source=str(raw.get("source", "postgresql")),
        # A kafka source is one view, named by `tables` (the topic's name if it names none).
        tables=tuple(tables) if raw.get("source") != "kafka" else (tables[0] if tables else topic,),
        topic=topic,
        target=str(raw.get("target", "mysql")),
        consumer=str(raw.get("consumer") or path.parent.name),
        max_events_per_run=limit,
        publish_timeout=_publish_timeout(raw, path, line_of, problems),
    )


def _publish_timeout(raw: dict, path: Path, line_of, problems: list[Problem]) -> float | None:
    value = raw.get("publish_timeout")
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        problems.append(Problem(path, line_of("publish_timeout"),
                                f"publish_timeout = {value!r}: give the seconds a blocked publish may retry, e.g. 120"))
        return None
    return float(value)


def load_sql_file(path: Path) -> SqlFile:
    """Parse one SQL file's header and statement; problems are recorded, not raised."""
    sql = path.read_text()
    sql_file = SqlFile(path=path, sql=sql, target=_PREFIX.sub("", path.stem))
    _parse_header(sql_file)
    try:
        statements = [s for s in sqlglot.parse(sql, read="spark") if s is not None]
    except sqlglot.errors.ParseError as error:
        first = error.errors[0] if error.errors else {}
        sql_file.problems.append(Problem(path, first.get("line") or 1,
                                         f"syntax error: {first.get('description', error)}"))
        return sql_file
    except sqlglot.errors.TokenError as error:
        sql_file.problems.append(Problem(path, 1, f"syntax error: {error}"))
        return sql_file
    if len(statements) != 1:
        sql_file.problems.append(Problem(path, 1, f"expected exactly one SELECT statement, found {len(statements)}"))
        return sql_file
    tree = statements[0]
    if not isinstance(tree, exp.Query):
        line = _first_token_line(sql)
        kind = tree.key.upper()
        sql_file.problems.append(Problem(
            path, line, f"{kind} statement not allowed: a transform file holds one SELECT; "
                        "the runner creates, writes and swaps tables itself"))
        return sql_file
    sql_file.tree = tree
    sql_file.reads = _tables_read(tree)
    return sql_file


def _parse_header(sql_file: SqlFile) -> None:
    """Read the leading `-- key: value` comment lines."""
    for number, line in enumerate(sql_file.sql.splitlines(), 1):
        match = _HEADER_LINE.match(line.strip())
        if not match:
            break  # the header is the leading block of `-- key: value` lines; prose follows it
        key, value = match.group(1).lower(), match.group(2)
        sql_file.header_lines[key] = number
        if key == "target":
            sql_file.target = value
        elif key == "mode":
            sql_file.mode = value.lower()
            if sql_file.mode not in MODES:
                sql_file.problems.append(Problem(sql_file.path, number,
                                                 f"unknown mode {value!r} (use one of {', '.join(MODES)})"))
        elif key == "keys":
            sql_file.keys = tuple(k.strip() for k in value.split(",") if k.strip())
        elif key == "verify":
            sql_file.verify = value.lower()
            if sql_file.verify not in VERIFY:
                sql_file.problems.append(Problem(sql_file.path, number,
                                                 f"unknown verify {value!r} (use {', '.join(VERIFY)})"))
        else:
            sql_file.problems.append(Problem(sql_file.path, number,
                                             f"unknown header key {key!r} (known: {', '.join(HEADER_KEYS)})"))
    if sql_file.mode == "merge" and not sql_file.keys:
        sql_file.problems.append(Problem(sql_file.path, sql_file.header_lines.get("mode", 1),
                                         "mode merge needs keys: add a header line `-- keys: <column>, ...`"))
    if sql_file.verify and sql_file.mode not in WRITE_MODES:
        sql_file.problems.append(Problem(sql_file.path, sql_file.header_lines["verify"],
                                         f"verify needs a written result (mode {', '.join(WRITE_MODES)}), "
                                         f"not mode {sql_file.mode}"))
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", sql_file.target):
        sql_file.problems.append(Problem(sql_file.path, sql_file.header_lines.get("target", 1),
                                         f"target {sql_file.target!r} is not a plain table name"))


def _table_name(node: exp.Table) -> str:
    return f"{node.db}.{node.name}" if node.db else node.name


def table_nodes(tree: exp.Expression | None) -> list[exp.Table]:
    """The tables a statement names, but not the names in a join hint (`/*+ broadcast(u) */`):
    those point at a relation of the query, often by its alias, and read nothing themselves."""
    return [node for node in tree.find_all(exp.Table) if not node.find_ancestor(exp.Hint)] if tree else []


def _tables_read(tree: exp.Expression) -> list[str]:
    """Tables the statement reads, in order of appearance, without its own CTEs."""
    ctes = {cte.alias_or_name for cte in tree.find_all(exp.CTE)}
    tables: list[str] = []
    for node in table_nodes(tree):
        if not node.name:
            continue
        name = _table_name(node)
        if name not in ctes and name not in tables:
            tables.append(name)
    return sorted(tables, key=lambda t: _first_position(tree, t))


def _first_position(tree: exp.Expression, table: str) -> int:
    positions = [n.this.meta.get("start", 0) for n in table_nodes(tree) if _table_name(n) == table]
    return min(positions) if positions else 0


def _first_token_line(sql: str) -> int:
    for number, line in enumerate(sql.splitlines(), 1):
        if line.strip() and not line.strip().startswith("--"):
            return number
    return 1


def _relative(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(config.ROOT))
    except ValueError:
        return str(path)
