"""Small conventions of the command line: `--version`, exit codes in the root help, and log lines
that carry their level."""

from __future__ import annotations

import importlib.metadata
import logging
import re
import subprocess
import sys

import pytest

from runner import cli, config
from tests.fixtures.runner.pipelines import SAMPLE


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "runner", *args], cwd=config.ROOT, capture_output=True,
                          text=True, timeout=120)


def test_version_prints_the_project_version() -> None:
    result = run_cli("--version")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"python -m runner {importlib.metadata.version('sparksql-platform')}"


def test_root_help_lists_every_exit_code() -> None:
    result = run_cli("--help")
    codes = re.findall(r"^\s+([0-3])\s+\S", result.stdout.split("exit codes:")[-1], re.MULTILINE)
    assert codes == ["0", "1", "2", "3"], result.stdout


def test_log_lines_carry_their_level(capsys: pytest.CaptureFixture) -> None:
    logging.getLogger("runner").handlers.clear()  # main() binds its handler to the captured stderr
    assert cli.main(["validate", str(SAMPLE)]) == 0
    logging.getLogger("runner").warning("a lost offset range")
    logging.getLogger("runner").info("a file ran")
    lines = capsys.readouterr().err.splitlines()
    assert re.fullmatch(r"\d\d:\d\d:\d\d WARNING runner  a lost offset range", lines[-2]), lines
    assert re.fullmatch(r"\d\d:\d\d:\d\d INFO    runner  a file ran", lines[-1]), lines
