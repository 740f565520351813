"""The Airflow UI in a real browser: headless Chromium (Debian's `chromium` and `chromium-driver`)
logs in as the admin of `.env`, sees one DAG per sql/ directory, and sees each DAG's docs draw its
lineage picture (served by plugins/lineage_pictures.py) with every file, source and target in it.

The browser is driven through chromedriver's W3C WebDriver HTTP API by the small client below,
so nothing beyond requests is needed. Screenshots are kept in test-artifacts/.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from base64 import b64decode
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from test_airflow import Airflow, airflow, wait_for  # noqa: F401  (the fixture is shared)

from runner import config
from runner.model.flow import pipeline_flow
from runner.model.pipeline import load_pipeline, pipeline_names

pytestmark = pytest.mark.integration

ARTIFACTS = config.ROOT / "test-artifacts"
ELEMENT = "element-6066-11e4-a52e-4f735466cecf"  # the W3C key of an element reference


class Browser:
    """One headless Chromium session behind chromedriver, spoken to over WebDriver's HTTP API."""

    def __init__(self, driver: str) -> None:
        self.driver = driver
        capabilities = {"browserName": "chrome", "goog:chromeOptions": {
            "binary": shutil.which("chromium") or "/usr/bin/chromium",
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     "--window-size=1400,1000"]}}
        session = requests.post(f"{driver}/session", json={"capabilities": {"alwaysMatch": capabilities}}, timeout=120)
        assert session.ok, f"chromedriver could not start chromium: {session.text[:500]}"
        self.url = f"{driver}/session/{session.json()['value']['sessionId']}"

    def command(self, method: str, path: str, body: dict | None = None) -> Any:
        response = requests.request(method, f"{self.url}{path}", json=body, timeout=120)
        value = response.json().get("value")
        assert response.ok, f"WebDriver {method} {path}: {value}"
        return value

    def open(self, url: str) -> None:
        self.command("POST", "/url", {"url": url})

    def find(self, css: str) -> str | None:
        found = self.command("POST", "/elements", {"using": "css selector", "value": css})
        return found[0][ELEMENT] if found else None

    def type(self, css: str, text: str) -> None:
        element = wait_for(f"{css} on {self.current_url()}", lambda: self.find(css), 60)
        self.command("POST", f"/element/{element}/value", {"text": text})

    def click(self, css: str) -> None:
        element = wait_for(f"{css} on {self.current_url()}", lambda: self.find(css), 60)
        self.command("POST", f"/element/{element}/click", {})

    def script(self, source: str, *args: Any) -> Any:
        """Run JavaScript in the page and return its result."""
        return self.command("POST", "/execute/sync", {"script": source, "args": list(args)})


    def text(self) -> str:
        body = self.find("body")
        return self.command("GET", f"/element/{body}/text") if body else ""

    def current_url(self) -> str:
        return self.command("GET", "/url")

    def screenshot(self, path: Path) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b64decode(self.command("GET", "/screenshot")))
        return path

    def quit(self) -> None:
        requests.delete(self.url, timeout=30)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    chromedriver = shutil.which("chromedriver")
    assert chromedriver, "chromedriver is missing: `local/install.sh test` installs chromium and chromium-driver"
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    driver = subprocess.Popen([chromedriver, f"--port={port}"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        url = f"http://127.0.0.1:{port}"
        wait_for("chromedriver", lambda: _answers(f"{url}/status"), 30, every=0.5)
        session = Browser(url)
        try:
            yield session
        finally:
            session.quit()
    finally:
        driver.terminate()
        driver.wait(timeout=30)


def _answers(url: str) -> bool:
    try:
        return requests.get(url, timeout=2).ok
    except requests.RequestException:
        return False


def test_admin_logs_in_and_sees_every_pipeline_dag(airflow: Airflow, browser: Browser) -> None:
    browser.open(f"{airflow.url}/")
    wait_for("the login form", lambda: browser.find("input[name=username]"), 60,
             lambda: f"page {browser.current_url()} shows: {browser.text()[:300]!r}")
    browser.type("input[name=username]", config.env("AIRFLOW_ADMIN_USER"))
    browser.type("input[name=password]", config.env("AIRFLOW_ADMIN_PASSWORD"))
    browser.click("button[type=submit]")
    wait_for("the UI after login", lambda: "/auth/login" not in browser.current_url(), 60,
             lambda: f"still on {browser.current_url()}: {browser.text()[:300]!r}")

    browser.open(f"{airflow.url}/dags")
    names = pipeline_names()

    def every_dag_listed() -> bool:
        return all(browser.find(f'a[href$="/dags/{name}"]') for name in names)

    wait_for(f"the DAG list to show {', '.join(names)}", every_dag_listed, 90,
             lambda: f"{browser.current_url()} shows: {browser.text()[:500]!r}", every=1)
    time.sleep(1)  # let the list finish painting before the picture is taken
    shot = browser.screenshot(ARTIFACTS / "airflow-ui-dags.png")
    assert shot.stat().st_size > 10_000
    text = browser.text()
    for name in names:
        assert name in text


@pytest.mark.parametrize("name", pipeline_names())
def test_dag_docs_draw_the_lineage_picture_with_the_pipelines_nodes(airflow: Airflow, browser: Browser,
                                                                   name: str) -> None:
    flow = pipeline_flow(load_pipeline(name))
    browser.open(f"{airflow.url}/dags/{name}")
    browser.click('button[aria-label="Dag Docs"]')
    first = flow.steps[0].file.name
    wait_for(f"the {name} documentation", lambda: first in browser.text(), 30,
             lambda: f"{browser.current_url()} shows: {browser.text()[:300]!r}")

    # The picture is drawn: its <img> loaded an SVG (naturalWidth is 0 for a broken image).
    image = f'img[src$="/pipeline-lineage/{name}.svg"]'
    wait_for(f"the {name} lineage picture to load", lambda: browser.script(
        "const i = document.querySelector(arguments[0]); return !!i && i.complete && i.naturalWidth > 100;",
        image), 30, lambda: f"no loaded {image} on {browser.current_url()}")
    time.sleep(1)
    browser.screenshot(ARTIFACTS / f"airflow-ui-{name}-docs.png")
    shown = browser.script("const i = document.querySelector(arguments[0]); const r = i.getBoundingClientRect();"
                           "return [r.width, r.height];", image)
    assert shown[0] > 200 and shown[1] > 30, f"the {name} picture is drawn {shown[0]}x{shown[1]} px"

    # Airflow caps a docs image at 300 px, so it links to the full-size page: an inline <svg> whose
    # boxes are the pipeline's files, sources and targets.
    link = f'a[href$="/pipeline-lineage/{name}"] {image}'
    assert browser.find(link), f"the {name} picture is not a link to its full size ({link})"
    browser.open(f"{airflow.url}/pipeline-lineage/{name}")
    drawn = wait_for(f"the {name} lineage page", lambda: browser.script(
        "return Array.from(document.querySelectorAll('svg g.node')).map(g => g.getAttribute('data-node'));"), 30)
    browser.screenshot(ARTIFACTS / f"airflow-ui-{name}-lineage.png")
    nodes = {step.file.name for step in flow.steps}
    nodes |= {read.label for step in flow.steps for read in step.reads if read.kind != "view"}
    nodes |= {f"{connection}.{table}" for connection, table in flow.writes()}
    assert not nodes - set(drawn), f"the {name} picture lacks {sorted(nodes - set(drawn))}"
