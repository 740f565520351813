"""Docstring examples are true: every `>>>` in runner/, datagen/ and dags/ runs as a doctest.

An example that needs a SparkSession, a database or a broker is written as a plain indented
illustration instead, without `>>>`, so nothing here needs a server.
"""

from __future__ import annotations

import doctest
import importlib
from pathlib import Path

import pytest

from runner import config

ROOT = config.ROOT
FOLDERS = ("runner", "datagen", "dags")
DAGS = ROOT / "dags"  # not a package: Airflow puts the folder itself on sys.path

# Modules whose examples do not run yet (they need Kafka, or use names their docstring does not
# import); the engineers changing them turn them into runnable examples or illustrations.
PENDING = {"runner.engine.sources"}


def module_name(path: Path) -> str:
    relative = path.relative_to(DAGS if path.parent == DAGS else ROOT).with_suffix("")
    return ".".join(part for part in relative.parts if part != "__init__")


def with_examples() -> list[str]:
    return sorted(module_name(path) for folder in FOLDERS for path in (ROOT / folder).rglob("*.py")
                  if ">>>" in path.read_text())


@pytest.mark.parametrize("name", with_examples())
def test_the_docstring_examples_of_each_module_run(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    if name in PENDING:
        pytest.xfail(f"{name}: its examples do not run on their own yet")
    monkeypatch.syspath_prepend(str(DAGS))
    module = importlib.import_module(name)
    finder = doctest.DocTestFinder(exclude_empty=True)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    output: list[str] = []
    for test in finder.find(module, name, globs=vars(module).copy()):
        runner.run(test, out=output.append)
    results = runner.summarize(verbose=False)
    assert results.attempted, f"{name} has `>>>` but no example doctest could find"
    assert not results.failed, "".join(output)


def test_the_examples_are_found_where_expected() -> None:
    names = with_examples()
    assert {"runner.config", "runner.errors", "runner_submit"} <= set(names), names
    assert not PENDING - set(names), f"PENDING names modules without examples: {PENDING - set(names)}"
