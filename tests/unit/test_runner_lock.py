"""The run lock: one per pipeline and target database, within MySQL's 64-character limit."""

import dataclasses

from runner import config
from runner.targets.base import target_for


def lock_name(kind: str, pipeline: str, **place: str) -> str:
    return target_for(dataclasses.replace(config.connection(kind), **place), pipeline).lock_name


def test_runs_into_other_databases_or_schemas_take_other_locks() -> None:
    assert lock_name("mysql", "marts", database="a") != lock_name("mysql", "marts", database="b")
    assert lock_name("postgresql", "stream", schema="a") != lock_name("postgresql", "stream", schema="b")
    assert lock_name("mysql", "marts", database="a") != lock_name("mysql", "replicate", database="a")


def test_the_same_pipeline_and_place_take_the_same_lock() -> None:
    assert lock_name("mysql", "marts", database="a") == lock_name("mysql", "marts", database="a")


def test_long_names_fit_mysql() -> None:
    name = lock_name("mysql", "p" * 80, database="d" * 64)
    assert len(name) <= 64
    assert name != lock_name("mysql", "p" * 80, database="e" * 64)
