"""Command line: `python -m runner validate|plan|run|show|docs`.

Exit codes (runner/errors.py): 0 success; 1 the run failed, or a database rejected the login or
the database; 2 invalid pipeline, usage or configuration (a missing `.env` key); 3 transient: a
database or broker could not be reached, or another run of the pipeline holds its lock (worth a
retry).
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import logging
import os
import sys
from pathlib import Path

from runner import config
from runner.errors import InvalidPipeline, RunnerError, Unreachable, is_unreachable, one_line
from runner.model.pipeline import load_pipeline, pipeline_names
from runner.model.plan import plan
from runner.model.validate import project_neighbours, validate

log = logging.getLogger("runner")

REPORT_FILE = "RUNNER_REPORT_FILE"  # where a scheduler wants the outcome as JSON (see `failed`)

DESCRIPTION = """\
Run ordered SQL files as a pipeline on one SparkSession.

A pipeline is a directory under sql/ (or a path) holding pipeline.toml and NNN_name.sql files.
Each file is one SELECT with a header of `-- key: value` lines (target, mode, keys).
Credentials come from .env or the environment, never from arguments."""

EXIT_CODES = """\
exit codes:
  0  success
  1  the run failed (an SQL error at file:line, a failed check or publish: published tables are
     unchanged), or a database rejected the login
  2  invalid pipeline, usage or configuration: nothing was run
  3  transient: a database or broker unreachable, or another run holds the pipeline's lock; worth a retry"""


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="python -m runner", description=DESCRIPTION,
                                   epilog=EXIT_CODES, formatter_class=argparse.RawDescriptionHelpFormatter)
    root.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    commands = root.add_subparsers(dest="command", required=True, metavar="command")

    v = commands.add_parser("validate", help="check pipelines without Spark or databases",
                            description="Parse every SQL file with Spark's own SQL parser (a bare JVM, no "
                                        "SparkSession) and sqlglot, check the columns read from earlier files, "
                                        "and check the "
                                        "settings, headers, file order and table references. Prints each "
                                        "problem as path:line: message and exits 1 if there is any.")
    v.add_argument("pipelines", nargs="*", help="pipeline names or paths (default: all under sql/)")

    p = commands.add_parser("plan", help="show the files in order, what each reads and writes",
                            description="Print the ordered files of a pipeline with the tables each reads, "
                                        "where it writes and how, and the source tables a run registers.")
    p.add_argument("pipeline", help="pipeline name (directory under sql/) or path")
    p.add_argument("--select", type=_stems, default=[], metavar="STEM[,STEM...]",
                   help="show what `run --select` would run and publish")

    r = commands.add_parser("run", help="run a pipeline and publish its results",
                            description="Validate, then run every file on one SparkSession, check, and "
                                        "publish all results at once (atomically per table). Logs rows and "
                                        "seconds per file. Master from SPARK_MASTER_URL (default local[*]).")
    r.add_argument("pipeline", help="pipeline name (directory under sql/) or path")
    r.add_argument("--follow", action="store_true",
                   help="keep running until stopped (for streams): runs back to back while the topic has a "
                        "backlog (a run reads at most max_events_per_run), then every --every seconds")
    r.add_argument("--drain", action="store_true",
                   help="run back to back until the topic is drained, then exit")
    r.add_argument("--every", type=float, default=10.0, metavar="SECONDS",
                   help="pause between runs with --follow (default 10)")
    r.add_argument("--workers", type=int, default=4, help="files run concurrently when independent (default 4)")
    r.add_argument("--select", type=_stems, default=[], metavar="STEM[,STEM...]",
                   help="run only these files (file names without .sql), plus the views and earlier results "
                        "they read and the checks that read them; publish only their targets")

    s = commands.add_parser("show", help="print the first rows of one file's result, publishing nothing",
                            description="Compute one SQL file (and the earlier files it reads) from its "
                                        "pipeline's sources and print its first rows as a table; a check "
                                        "shows its offending rows. Writes no table and takes no run lock.")
    s.add_argument("file", help="path of the SQL file, e.g. sql/marts/010_mart_user_activity.sql")
    s.add_argument("--limit", type=int, default=20, metavar="N", help="rows to print (default 20)")

    d = commands.add_parser("docs", help="draw each pipeline's lineage as SVG and HTML pages",
                            description="Write, per pipeline, <name>.svg (its sources, files and targets, "
                                        "drawn from the SQL) and <name>.html (the picture and the file list), "
                                        "plus index.html. Starts no SparkSession and touches no database.")
    d.add_argument("pipelines", nargs="*", help="pipeline names or paths (default: all under sql/)")
    d.add_argument("--out", type=Path, default=config.ROOT / "build" / "docs", metavar="DIR",
                   help="where to write (default build/docs)")
    return root


def _stems(value: str) -> list[str]:
    """`010_a,020_b` -> ['010_a', '020_b']; a stem given as a file name loses its .sql."""
    return [stem.strip().removesuffix(".sql") for stem in value.split(",") if stem.strip()]


def _version() -> str:
    try:
        return importlib.metadata.version("sparksql-platform")  # pyproject.toml's, once installed
    except importlib.metadata.PackageNotFoundError:
        return "unknown (not installed: pip install -e .)"


def main(argv: list[str] | None = None) -> int:
    if not log.handlers:  # main() may run more than once in a process (tests): one handler
        handler = logging.StreamHandler(sys.stderr)
        # The level in every line, so a WARNING stands out among INFO lines.
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)-7s %(name)s  %(message)s", datefmt="%H:%M:%S"))
        log.addHandler(handler)
    log.setLevel(logging.INFO)
    args = parser().parse_args(argv)
    try:
        if args.command == "validate":
            return _validate(args.pipelines)
        if args.command == "plan":
            print(plan(load_pipeline(args.pipeline), args.select))
            return 0
        if args.command == "show":
            from runner.engine.show import show

            print(show(args.file, args.limit))
            return 0
        if args.command == "docs":
            from runner.model.diagram import write_docs

            for path in write_docs(args.pipelines or pipeline_names(), args.out):
                print(path)
            return 0
        return _run(args)
    except FileNotFoundError as error:
        return failed(InvalidPipeline.exit_code, str(error))
    except RunnerError as error:
        return failed(error.exit_code, str(error))
    except KeyboardInterrupt:
        return failed(130, "interrupted; nothing was published")
    except Exception as error:  # anything unexpected still ends in one actionable line
        code = Unreachable.exit_code if is_unreachable(error) else RunnerError.exit_code
        return failed(code, f"{type(error).__name__}: {one_line(error)}")


def failed(code: int, cause: str) -> int:
    """End with `error: <cause>` as the last line on stderr and exit `code`. A scheduler that
    sets RUNNER_REPORT_FILE also gets both as JSON there, so it never digs them out of a log."""
    print(f"error: {cause}", file=sys.stderr)
    if report := os.environ.get(REPORT_FILE):
        Path(report).write_text(json.dumps({"exit_code": code, "cause": cause}))
    return code


def _validate(names: list[str]) -> int:
    names = names or pipeline_names()
    pipelines = [load_pipeline(name) for name in names]
    # Pipelines validated together must not publish the same table; sql/'s are compared with
    # each other even when only one of them is named.
    problems = [p for pipeline in pipelines
                for p in validate(pipeline, [*pipelines, *project_neighbours(pipeline)])]
    for problem in problems:
        print(problem)
    if problems:
        print(f"{len(problems)} problem(s) in {len(names)} pipeline(s)", file=sys.stderr)
        return 1
    print(f"{len(names)} pipeline(s) valid: {', '.join(names)}")
    return 0


def _run(args) -> int:
    from runner.engine.run import follow, run_pipeline

    pipeline = load_pipeline(args.pipeline)
    if (args.follow or args.drain) and args.select:
        raise InvalidPipeline("--select and --follow (or --drain) do not go together: they run the whole pipeline")
    if args.follow or args.drain:
        follow(pipeline, args.every, until_drained=args.drain)
    else:
        run_pipeline(pipeline, max_workers=args.workers, select=args.select)
    return 0
