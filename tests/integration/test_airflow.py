"""End to end with the real Airflow scheduler, observed only through its REST API.

Airflow is started with `local/airflow.sh start` unless it already runs (and then stopped again
at the end of the session). The DAGs run on the platform's own databases and topic:
`replicate` is triggered through the API and `marts` must follow by itself through the Assets
replicate publishes; `stream` must drain events published here on its own schedule; and a
broken SQL file (in a scratch pipeline directory, removed afterwards) must fail its DAG's task
at once with the runner's file:line message while the tables stay as they were.

Every wait polls with a deadline and fails with the state it saw and the end of the task log.
AIRFLOW_E2E_TIMEOUT (seconds, default 1200) bounds each wait for a DAG run.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any, TypeVar

import pytest
import requests

from runner import config
from runner.model.pipeline import load_pipeline, pipeline_names
from runner.model.validate import validate

pytestmark = pytest.mark.integration

T = TypeVar("T")
RUN_TIMEOUT = float(os.environ.get("AIRFLOW_E2E_TIMEOUT", "1200"))
DAG_TIMEOUT = 300  # a changed sql/ folder shows in Airflow after the next parse of dags/
FINISHED = {"success", "failed"}
MARTS = ("mart_user_activity", "mart_product_sales", "mart_average_check")


def wait_for(what: str, probe: Callable[[], T | None], timeout: float, explain: Callable[[], str] = str,
             every: float = 3.0) -> T:
    """Call `probe` until it returns something truthy; on timeout fail naming `what` and why."""
    deadline = time.monotonic() + timeout
    while True:
        result = probe()
        if result:
            return result
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:.0f}s waiting for {what}. {explain()}")
        time.sleep(every)


class Airflow:
    """A small client of Airflow's REST API v2, authenticated as the admin of `.env`."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.session = requests.Session()
        self._token = ""

    def healthy(self) -> bool:
        try:
            report = requests.get(f"{self.url}/api/v2/monitor/health", timeout=5).json()
        except (requests.RequestException, ValueError):
            return False
        return all((part or {}).get("status") == "healthy" for part in report.values())

    def login(self) -> None:
        response = requests.post(f"{self.url}/auth/token", timeout=30, json={
            "username": config.env("AIRFLOW_ADMIN_USER"), "password": config.env("AIRFLOW_ADMIN_PASSWORD")})
        assert response.status_code == 201, f"login as {config.env('AIRFLOW_ADMIN_USER')} failed: {response.text}"
        self._token = response.json()["access_token"]

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        if not self._token:
            self.login()
        response = self.session.request(method, f"{self.url}/api/v2{path}", timeout=60,
                                        headers={"Authorization": f"Bearer {self._token}"}, **kwargs)
        if response.status_code == 401:  # the token expired during a long wait
            self._token = ""
            return self.call(method, path, **kwargs)
        assert response.ok, f"{method} /api/v2{path}: HTTP {response.status_code} {response.text[:500]}"
        return response.json() if response.content else None

    def dags(self) -> dict[str, dict]:
        return {dag["dag_id"]: dag for dag in self.call("GET", "/dags", params={"limit": 1000})["dags"]}

    def trigger(self, dag_id: str) -> str:
        return self.call("POST", f"/dags/{dag_id}/dagRuns", json={"logical_date": None})["dag_run_id"]

    def runs(self, dag_id: str) -> list[dict]:
        return self.call("GET", f"/dags/{dag_id}/dagRuns", params={"limit": 100, "order_by": "-run_after"})["dag_runs"]

    def run(self, dag_id: str, run_id: str) -> dict:
        return self.call("GET", f"/dags/{dag_id}/dagRuns/{run_id}")

    def task(self, dag_id: str, run_id: str) -> dict:
        return self.call("GET", f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/run")

    def log(self, dag_id: str, run_id: str, try_number: int) -> list[dict]:
        return self.call("GET", f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/run/logs/{try_number}",
                         params={"full_content": "true"})["content"]

    def log_tail(self, dag_id: str, run_id: str, lines: int = 15) -> str:
        """The end of the task's latest log, for failure messages."""
        try:
            task = self.task(dag_id, run_id)
            entries = self.log(dag_id, run_id, max(task.get("try_number") or 1, 1))
        except AssertionError as error:
            return f"(no log: {error})"
        text = [str(entry.get("event", entry)) for entry in entries]
        return f"task {dag_id}.run is {task.get('state')}; its log ends:\n" + "\n".join(text[-lines:])

    def wait_for_run(self, dag_id: str, run_id: str, timeout: float = RUN_TIMEOUT) -> dict:
        def finished() -> dict | None:
            run = self.run(dag_id, run_id)
            return run if run["state"] in FINISHED else None

        return wait_for(f"{dag_id} run {run_id} to finish", finished, timeout,
                        lambda: self.log_tail(dag_id, run_id), every=5)


_started_here: list[bool] = []


@pytest.fixture(scope="module")
def airflow(request: pytest.FixtureRequest) -> Airflow:
    """Airflow's API, with Airflow started by local/airflow.sh if it is not running yet."""
    client = Airflow(f"http://localhost:{config.env('AIRFLOW_PORT')}")
    if not client.healthy() and not _started_here:
        result = subprocess.run(["bash", str(config.ROOT / "local/airflow.sh"), "start"],
                                capture_output=True, text=True, timeout=600)
        assert result.returncode == 0, f"local/airflow.sh start failed:\n{result.stdout}\n{result.stderr}"
        _started_here.append(True)
        request.config.add_cleanup(
            lambda: subprocess.run(["bash", str(config.ROOT / "local/airflow.sh"), "stop"], timeout=120))
    wait_for("Airflow to be healthy", client.healthy, 300)
    wait_for("every sql/ directory to be a DAG", lambda: set(pipeline_names()) <= set(client.dags()), DAG_TIMEOUT,
             lambda: f"DAGs: {sorted(client.dags())}; import errors: {client.call('GET', '/importErrors')}")
    return client


def finished_at(run: dict) -> datetime:
    return datetime.fromisoformat(run["end_date"].replace("Z", "+00:00"))


def test_every_pipeline_is_an_unpaused_dag_without_import_errors(airflow: Airflow) -> None:
    dags = airflow.dags()
    for name in pipeline_names():
        assert dags[name]["is_paused"] is False, f"DAG {name} is paused"
    errors = airflow.call("GET", "/importErrors")["import_errors"]
    assert [error for error in errors if "pipelines.py" in error["filename"]] == []
    assert dags["marts"]["timetable_summary"] == "Asset"


def test_replicate_run_makes_marts_run_by_itself(airflow: Airflow, mysql, pg) -> None:
    run_id = airflow.trigger("replicate")
    run = airflow.wait_for_run("replicate", run_id)
    assert run["state"] == "success", airflow.log_tail("replicate", run_id)

    def marts_run_of_this_replicate() -> str | None:
        events = airflow.call("GET", "/assets/events", params={
            "source_dag_id": "replicate", "source_run_id": run_id, "limit": 100})["asset_events"]
        created = [r["run_id"] for event in events for r in event.get("created_dagruns", []) if r["dag_id"] == "marts"]
        return created[0] if created else None

    marts_run_id = wait_for("replicate's Asset events to create a marts run", marts_run_of_this_replicate, 300,
                            lambda: f"marts runs: {[(r['dag_run_id'], r['state']) for r in airflow.runs('marts')]}")
    marts_run = airflow.wait_for_run("marts", marts_run_id)
    assert marts_run["state"] == "success", airflow.log_tail("marts", marts_run_id)
    assert marts_run["run_type"] == "asset_triggered"

    with mysql.cursor() as cursor:
        cursor.execute("select table_name from information_schema.tables where table_schema = database()")
        tables = {row[0] for row in cursor.fetchall()}
        assert set(MARTS) <= tables, f"missing marts in MySQL: {sorted(set(MARTS) - tables)}"
        cursor.execute("select count(*) from orders")
        replicated_orders = cursor.fetchone()[0]
        cursor.execute("select coalesce(sum(order_count), 0) from mart_user_activity")
        orders_in_mart = cursor.fetchone()[0]
    with pg.cursor() as cursor:
        cursor.execute("select count(*) from orders")
        source_orders = cursor.fetchone()[0]
    assert replicated_orders == source_orders, "MySQL orders differ from PostgreSQL orders after replicate"
    assert orders_in_mart == replicated_orders


def test_stream_drains_new_events_on_its_own_schedule(airflow: Airflow, pg) -> None:
    from kafka import KafkaProducer

    marker = uuid.uuid4().hex[:12]
    emails = [f"airflow-e2e-{marker}-{number}@example.com" for number in range(3)]
    producer = KafkaProducer(bootstrap_servers=config.env("KAFKA_BOOTSTRAP_SERVERS"))
    for number, email in enumerate(emails):
        event = {"first_name": "Airflow", "last_name": f"Test{number}", "email": email, "phone": "+1 555 0100",
                 "registration_date": "2026-01-02T03:04:05", "loyalty_status": "Silver"}
        producer.send(config.env("KAFKA_TOPIC_NAME"), json.dumps(event).encode())
    producer.flush(timeout=30)
    producer.close()
    published = datetime.now(UTC)

    def arrived() -> bool:
        with pg.cursor() as cursor:
            cursor.execute("select count(*) from users where email = any(%s)", (emails,))
            found = cursor.fetchone()[0]
        pg.rollback()
        return found == len(emails)

    def recent_stream_runs() -> str:
        return f"stream runs: {[(r['dag_run_id'], r['run_type'], r['state']) for r in airflow.runs('stream')[:5]]}"

    try:
        wait_for(f"stream to load the {len(emails)} users published at {published:%H:%M:%S}", arrived,
                 RUN_TIMEOUT, recent_stream_runs, every=5)

        def finished_runs() -> list[dict]:  # the run that loaded them finishes just after its publish
            return [r for r in airflow.runs("stream") if r["state"] == "success" and r["end_date"]
                    and finished_at(r) >= published]

        runs = wait_for("the stream run that loaded them to finish", finished_runs, 300, recent_stream_runs)
        assert all(r["run_type"] == "scheduled" for r in runs), "stream ran other than on its schedule"
    finally:
        with pg.cursor() as cursor:
            cursor.execute("delete from users where email = any(%s)", (emails,))
        pg.commit()


@pytest.fixture
def broken_pipeline(mysql) -> Iterator[str]:
    """A scratch pipeline whose second file has a syntax error; its first file would overwrite
    the probe table airflow_e2e_probe, which holds one known row."""
    name = "airflow_e2e_broken"
    directory = config.ROOT / "sql" / name
    with mysql.cursor() as cursor:
        cursor.execute("drop table if exists airflow_e2e_probe")
        cursor.execute("create table airflow_e2e_probe (id int primary key, note varchar(20))")
        cursor.execute("insert into airflow_e2e_probe values (1, 'as it was')")
    mysql.commit()
    directory.mkdir()
    try:
        (directory / "pipeline.toml").write_text(
            'description = "Scratch pipeline of tests/integration/test_airflow.py: a broken file"\n'
            'schedule = "none"\nsource = "mysql"\ntables = ["airflow_e2e_probe"]\ntarget = "mysql"\n')
        (directory / "010_airflow_e2e_probe.sql").write_text(
            "select\n    id,\n    cast('overwritten' as varchar(20)) as note\nfrom airflow_e2e_probe\n")
        (directory / "020_broken.sql").write_text(
            "-- mode: check\n\nselect\n    id,\n    (note\nfrom airflow_e2e_probe\n")
        yield name
    finally:
        shutil.rmtree(directory, ignore_errors=True)
        with mysql.cursor() as cursor:
            cursor.execute("drop table if exists airflow_e2e_probe")
        mysql.commit()


def test_broken_sql_fails_the_task_at_once_with_file_and_line(airflow: Airflow, broken_pipeline: str, mysql) -> None:
    name = broken_pipeline
    # What the run reports before its session starts (the fast path), at the same file:line as
    # Spark's parser gives `runner validate`.
    problems = [str(problem) for problem in validate(load_pipeline(name), strict=False)]
    strict = [str(problem) for problem in validate(load_pipeline(name))]
    assert problems and problems[0].startswith(f"sql/{name}/020_broken.sql:"), problems
    assert [p.split(": ")[0] for p in strict] == [p.split(": ")[0] for p in problems], (strict, problems)
    try:
        wait_for(f"DAG {name} to appear", lambda: name in airflow.dags(), DAG_TIMEOUT)
        run_id = airflow.trigger(name)
        run = airflow.wait_for_run(name, run_id)
        task = airflow.task(name, run_id)
        assert run["state"] == "failed"
        assert (task["state"], task["try_number"]) == ("failed", 1), "invalid SQL must not be retried"

        log = airflow.log(name, run_id, 1)
        events = [str(entry.get("event", "")) for entry in log]
        assert any(problems[0] in event for event in events), airflow.log_tail(name, run_id)
        failure = [entry for entry in log if entry.get("error_detail")][-1]
        assert failure["error_detail"][0]["exc_value"].startswith(problems[0])
        last_words = [event for event in events if not event.startswith("::")][-1]
        assert last_words == "Task failed with exception"

        with mysql.cursor() as cursor:
            cursor.execute("select id, note from airflow_e2e_probe")
            assert cursor.fetchall() == ((1, "as it was"),)
    finally:
        shutil.rmtree(config.ROOT / "sql" / name, ignore_errors=True)
        if name in airflow.dags():
            airflow.call("DELETE", f"/dags/{name}")
