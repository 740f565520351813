"""DAG integrity: the dags/ folder imports cleanly into one DAG per sql/ directory, each only
submitting the runner, with no secret anywhere in what Airflow renders or runs.

No server is needed: the DagBag parses the folder the way the dag-processor does, and the Spark
hook builds its spark-submit command from the `spark_default` connection given as an
environment variable (the JSON form local/airflow.sh sets).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

from runner import config
from runner.model.pipeline import load_pipeline, pipeline_names

ROOT = config.ROOT
DAGS = ROOT / "dags"
sys.path.insert(0, str(DAGS))

from airflow.configuration import conf  # noqa: E402
from airflow.dag_processing.dagbag import DagBag  # noqa: E402
from airflow.providers.apache.spark.operators.spark_submit import SparkSubmitOperator  # noqa: E402
from airflow.sdk import Asset  # noqa: E402
from airflow.sdk.exceptions import AirflowException, AirflowFailException  # noqa: E402
from runner_submit import RunnerSubmitOperator  # noqa: E402

from runner.model.flow import pipeline_flow  # noqa: E402
from tests.fixtures.runner.pipelines import INVALID  # noqa: E402

SPARK_DEFAULT = json.dumps({"conn_type": "spark", "host": "local[*]"})


@pytest.fixture(scope="module")
def bag() -> DagBag:
    return DagBag(dag_folder=str(DAGS))


@pytest.fixture(autouse=True)
def spark_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_SPARK_DEFAULT", SPARK_DEFAULT)


def secrets() -> dict[str, str]:
    """Every configured password or secret, by its .env key."""
    return {key: value for key, value in config.all_values().items()
            if value and ("PASSWORD" in key or "SECRET" in key)}


def assert_no_secret(text: str, where: str) -> None:
    # Paths under the project root are not secrets, whatever the folder happens to be called.
    text = text.replace(str(ROOT), "<root>")
    for key, value in secrets().items():
        assert value not in text, f"{where} contains the value of {key}"


def test_dag_folder_imports_without_errors(bag: DagBag) -> None:
    assert bag.import_errors == {}
    duration = sum(stat.duration.total_seconds() for stat in bag.dagbag_stats)
    # The dag-processor gives up on a file after dagbag_import_timeout; stay far below it.
    limit = conf.getfloat("core", "dagbag_import_timeout")
    assert duration < limit / 3, f"parsing dags/ took {duration:.1f}s, close to Airflow's {limit:.0f}s limit"


def test_one_dag_per_sql_directory(bag: DagBag) -> None:
    assert sorted(bag.dag_ids) == pipeline_names()
    assert {"replicate", "marts", "stream"} <= set(bag.dag_ids)


def test_every_task_submits_the_runner_with_its_directory_name(bag: DagBag) -> None:
    for dag_id, dag in bag.dags.items():
        assert len(dag.tasks) == 1, dag_id
        task = dag.tasks[0]
        assert isinstance(task, SparkSubmitOperator), dag_id
        assert Path(task.application) == ROOT / "runner" / "__main__.py"
        assert task.application_args == ["run", dag_id]
        assert task._conn_id == "spark_default"
        assert task.env_vars["PYSPARK_PYTHON"] == sys.executable


def test_spark_submit_uses_the_connection_master_and_the_jars(bag: DagBag) -> None:
    task = bag.dags["replicate"].tasks[0]
    command = task._get_hook()._build_spark_submit_command(task.application)
    assert command[command.index("--master") + 1] == "local[*]"
    # The jars `make up` put in SPARK_JARS_DIR, listed here without the operator's own code.
    directory = Path(config.env("SPARK_JARS_DIR"))
    directory = directory if directory.is_absolute() else ROOT / directory
    on_disk = sorted(path.resolve() for path in directory.glob("*.jar"))
    assert on_disk, f"no jars in {directory}: `make up` resolves them from jvm/pom.xml"
    for needed in ("postgresql-", "mysql-connector-j-", "spark-sql-kafka-0-10_"):
        assert any(path.name.startswith(needed) for path in on_disk), f"no {needed}*.jar in {directory}"
    assert "--jars" in command, f"spark-submit gets no --jars: {command}"
    assert sorted(Path(jar).resolve() for jar in command[command.index("--jars") + 1].split(",")) == on_disk
    assert "--driver-class-path" in command, f"the jars are not on the driver's classpath: {command}"
    class_path = command[command.index("--driver-class-path") + 1].split(os.pathsep)
    assert sorted(Path(jar).resolve() for jar in class_path) == on_disk
    assert command[-3:] == [task.application, "run", "replicate"]


def test_no_secret_in_rendered_templates_or_arguments(bag: DagBag) -> None:
    assert secrets(), "no password in the configuration: the test would prove nothing"
    for dag_id, dag in bag.dags.items():
        task = dag.tasks[0]
        task.render_template_fields(context={"dag": dag, "task": task}, jinja_env=dag.get_template_env())
        for field in task.template_fields:
            assert_no_secret(json.dumps(getattr(task, field, None), default=str), f"{dag_id}.{field}")
        command = task._get_hook()._build_spark_submit_command(task.application)
        assert_no_secret(" ".join(command), f"{dag_id}'s spark-submit command")
        assert_no_secret(dag.doc_md or "", f"{dag_id}'s doc_md")


def test_dags_run_by_themselves_one_at_a_time_without_catch_up(bag: DagBag) -> None:
    for dag_id, dag in bag.dags.items():
        assert dag.catchup is False, dag_id
        assert dag.max_active_runs == 1, dag_id
        assert dag.is_paused_upon_creation is False, dag_id


def test_marts_runs_when_replicate_has_published_the_tables_it_reads(bag: DagBag) -> None:
    replicate_outlets = {asset.uri for asset in bag.dags["replicate"].tasks[0].outlets}
    marts_inputs = {asset.uri for asset in bag.dags["marts"].timetable.asset_condition.objects}
    assert marts_inputs, "marts is not scheduled on any asset"
    assert marts_inputs <= replicate_outlets
    assert f"mysql://{config.env('MYSQL_APP_HOST')}:{config.env('MYSQL_APP_PORT')}/" \
           f"{config.env('MYSQL_APP_DB')}/orders" in marts_inputs


def test_schedules_come_from_pipeline_toml(bag: DagBag) -> None:
    assert bag.dags["replicate"].timetable.expression == "0 0 * * *"
    assert bag.dags["stream"].timetable.expression.startswith("*/")


def test_outlets_are_the_tables_the_pipeline_publishes(bag: DagBag) -> None:
    from runner.model.pipeline import load_pipeline

    for dag_id, dag in bag.dags.items():
        names = {asset.name for asset in dag.tasks[0].outlets if isinstance(asset, Asset)}
        assert names == {f"{c}.{t}" for c, t in pipeline_flow(load_pipeline(dag_id)).writes()}, dag_id


def test_doc_md_lists_each_file_and_embeds_the_lineage_picture(bag: DagBag) -> None:
    doc = bag.dags["marts"].doc_md
    assert "010_mart_user_activity.sql" in doc
    assert "`mysql.mart_user_activity`" in doc
    # A markdown image with a relative address: Airflow's UI drops raw HTML and data: URIs.
    assert "](/pipeline-lineage/marts.svg)" in doc and "```mermaid" not in doc


def test_the_plugin_serves_each_pipelines_picture_and_nothing_else() -> None:
    from fastapi.testclient import TestClient

    sys.path.insert(0, str(config.ROOT / "plugins"))
    from lineage_pictures import PipelineLineagePlugin, app

    assert PipelineLineagePlugin.fastapi_apps[0]["url_prefix"] == "/pipeline-lineage"
    client = TestClient(app)
    for name in pipeline_names():
        svg = client.get(f"/{name}.svg")
        assert svg.status_code == 200 and svg.headers["content-type"] == "image/svg+xml"
        for step in pipeline_flow(load_pipeline(name)).steps:
            assert f">{step.file.name}</text>" in svg.text
        assert_no_secret(svg.text, f"the {name} picture")
        assert "<svg" in client.get(f"/{name}").text
    assert client.get("/..%2F.env.svg").status_code == 404
    assert client.get("/nope.svg").status_code == 404


def test_retries_back_off_exponentially(bag: DagBag) -> None:
    task = bag.dags["replicate"].tasks[0]
    assert task.retries >= 1
    assert task.retry_exponential_backoff >= 2


@pytest.mark.slow
@pytest.mark.parametrize(("exit_code", "expected"), [(2, AirflowFailException), (3, AirflowException)])
def test_runner_exit_code_decides_whether_airflow_retries(monkeypatch: pytest.MonkeyPatch, exit_code: int,
                                                          expected: type) -> None:
    """A real spark-submit of the runner: an invalid pipeline (2, not retried), or a target
    whose port nothing listens on (3, retried). The task's error is the runner's own cause."""
    pipeline = INVALID if exit_code == 2 else "marts"
    monkeypatch.setenv("MYSQL_APP_PORT", "1")
    task = RunnerSubmitOperator(task_id="run", pipeline=str(pipeline))
    with pytest.raises(expected) as raised:
        task.execute(context={})
    assert isinstance(raised.value, AirflowFailException) == (exit_code == 2)
    if exit_code == 2:
        assert str(raised.value).startswith(f"{INVALID.relative_to(ROOT)}/"), raised.value
        assert str(raised.value).endswith("nothing was run"), raised.value
    else:
        assert "127.0.0.1:1" in str(raised.value) or "localhost:1" in str(raised.value), raised.value


def test_a_runner_that_never_reports_is_airflows_own_error_and_retried(tmp_path: Path) -> None:
    """spark-submit of something that dies before the runner could report (killed, say)."""
    app = tmp_path / "dies.py"
    app.write_text("import os, signal\nos.kill(os.getpid(), signal.SIGKILL)\n")
    task = RunnerSubmitOperator(task_id="run", pipeline="x")
    task.application = str(app)
    with pytest.raises(AirflowException) as raised:
        task.execute(context={})
    assert not isinstance(raised.value, AirflowFailException)


@pytest.mark.parametrize(("schedule", "reason"), [
    ("assets", "no other pipeline writes the tables it reads"),
    ("every tuesday", "every tuesday"),
])
def test_an_unusable_schedule_is_a_clear_error_not_a_broken_dag_folder(tmp_path: Path, schedule: str,
                                                                       reason: str) -> None:
    import pipelines

    from runner.model.pipeline import load_pipeline

    directory = tmp_path / "orphan"
    directory.mkdir()
    (directory / "pipeline.toml").write_text(
        f'schedule = "{schedule}"\nsource = "mysql"\ntables = ["nobody_writes_this"]\ntarget = "mysql"\n')
    (directory / "010_copy.sql").write_text("select * from nobody_writes_this\n")
    with pytest.raises(Exception, match=reason):
        pipelines.pipeline_dag(pipeline_flow(load_pipeline(directory)), producers={})
    fallback = pipelines.unscheduled_dag("orphan", "the reason")
    assert fallback.timetable.can_be_scheduled is False
    assert "the reason" in fallback.doc_md
