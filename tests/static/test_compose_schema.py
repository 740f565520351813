"""docker-compose.yml is valid Compose: it matches the Compose Specification's JSON schema.

check-jsonschema ships the schema (`vendor.compose-spec`), so the check needs no network.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from deployment import COMPOSE_FILE, ROOT


def check_jsonschema(path: Path) -> subprocess.CompletedProcess:
    """Validate `path` against the bundled Compose Specification schema."""
    return subprocess.run(
        [sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.compose-spec", str(path)],
        capture_output=True, text=True, cwd=ROOT, timeout=120)


def test_compose_file_matches_the_compose_specification():
    result = check_jsonschema(COMPOSE_FILE)
    assert result.returncode == 0, f"{COMPOSE_FILE.name}: {result.stdout}{result.stderr}"


def test_schema_check_rejects_a_misspelled_service_key(tmp_path):
    # The check above would pass vacuously if the schema accepted anything.
    bad = tmp_path / "docker-compose.yml"
    bad.write_text("services:\n  db:\n    image: postgres:17\n    helthcheck:\n      test: [CMD, true]\n")
    result = check_jsonschema(bad)
    assert result.returncode == 1
    assert "helthcheck" in result.stdout
