"""One `.env` reader: runner.config, local/lib.sh and docker compose read the same values.

The expected values follow Docker's documented env-file rules (docs.docker.com, "Syntax for
environment files in Docker Compose", and the Compose Specification's interpolation chapter);
they were also checked once against compose-go's own dotenv parser (v2.16.2), which docker
compose uses.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from runner import config
from runner.config import ConfigError, parse_dotenv, read_dotenv

ROOT = Path(__file__).resolve().parents[2]
TRICKY = ROOT / "tests" / "fixtures" / "dotenv" / "tricky.env"
ENVIRONMENT = {"ENV_WINS": "from-env"}  # set in the environment of every reader below

# tests/fixtures/dotenv/tricky.env as compose reads it with ENVIRONMENT set.
EXPECTED = {
    "EXPORTED": "yes",
    "SPACED": "around equals",
    "INLINE": "3",
    "HASH_IN_VALUE": "a#b",
    "EMPTY": "",
    "LEADING_HASH": "# compose keeps this: the value starts at its first non-blank character",
    "TRAILING": "value",
    "SINGLE": '$HOME ${HOME} "literal" \\n # not a comment',
    "SINGLE_ESCAPED": "it's",
    "DOUBLE": 'tab\there "quoted" \\ back $ $dollar # not a comment',
    "DOUBLE_HASH": "a",
    "HOST": "db.example",
    "PORT": "5432",
    "URL": "postgresql://db.example:5432/x",
    "BARE": "db.example/5432",
    "DEFAULTED": "fallback",
    "DEFAULT_OF_SET": "db.example",
    "EMPTY_DEFAULTED": "fallback",
    "EMPTY_KEPT": "",
    "ALTERNATIVE": "set",
    "NESTED": "db.example:5432",
    "SINGLE_NOT_EXPANDED": "${HOST}",
    "DOLLAR_ALONE": "cost$ 5$",
    "PASSWORD": "p\\a'ss\"w$rd#1@host/x",
    "QUOTED_PASSWORD": "p\\a'ss\"w$rd #1@host/x",
    "LITERAL_PASSWORD": 'p\\a"ss$w rd#1@/x',
    "ENV_WINS": "from-file",  # the file's own value; every reader's effective value is from-env
    "REFERS_TO_ENV": "from-env-suffix",  # expansion looks at the environment first
    "MULTI": "line one\nline two",
}
EFFECTIVE = {**EXPECTED, **ENVIRONMENT}

# (line, value) pairs from Docker's page on the env-file syntax.
DOCUMENTED = [
    ("VAR=VAL", "VAL"),
    ('VAR="VAL"', "VAL"),
    ("VAR='VAL'", "VAL"),
    ("VAR=VAL # comment", "VAL"),
    ("VAR=VAL# not a comment", "VAL# not a comment"),
    ('VAR="VAL # not a comment"', "VAL # not a comment"),
    ('VAR="VAL" # comment', "VAL"),
    ("VAR='$OTHER'", "$OTHER"),
    ("VAR='${OTHER}'", "${OTHER}"),
    ("VAR='Let\\'s go!'", "Let's go!"),
    ('VAR="{\\"hello\\": \\"json\\"}"', '{"hello": "json"}'),
    ('VAR="some\\tvalue"', "some\tvalue"),
    ("VAR='some\\tvalue'", "some\\tvalue"),
    ("VAR=some\\tvalue", "some\\tvalue"),
    ("VAR=${OTHER}", "other"),
    ("VAR=$OTHER", "other"),
    ("VAR=${UNSET:-default}", "default"),
    ("VAR=${EMPTY:-default}", "default"),
    ("VAR=${EMPTY-default}", ""),
    ("VAR=${OTHER:+replacement}", "replacement"),
    ("VAR=${UNSET:+replacement}", ""),
    ("VAR=${UNSET:-${OTHER:-default}}", "other"),
    ("VAR=$$OTHER", "$OTHER"),
]


def environment(**extra: str) -> dict[str, str]:
    """The test's environment without any key of the tricky file, plus ENVIRONMENT."""
    env = {key: value for key, value in os.environ.items() if key not in EXPECTED}
    return {**env, **ENVIRONMENT, "PLATFORM_ENV_FILE": str(TRICKY), **extra}


def exported_by_bash(script: str, env: dict[str, str]) -> dict[str, str]:
    """The values of the tricky file's keys after running `script` in bash (NUL-separated, so
    newlines and any other character come back unchanged)."""
    keys = " ".join(EXPECTED)
    dump = f'for key in {keys}; do printf "%s\\0%s\\0" "$key" "${{!key-<unset>}}"; done'
    result = subprocess.run(["bash", "-c", f"{script}\n{dump}"], cwd=ROOT, env=env,
                            capture_output=True, check=False)
    assert result.returncode == 0, result.stderr.decode()
    fields = result.stdout.decode().split("\0")[:-1]
    return dict(zip(fields[::2], fields[1::2]))


@pytest.mark.parametrize(("line", "value"), DOCUMENTED, ids=[line for line, _ in DOCUMENTED])
def test_each_documented_compose_example_reads_as_documented(line, value):
    assert parse_dotenv(line, environ={"OTHER": "other", "EMPTY": ""})["VAR"] == value


def test_the_tricky_file_reads_as_compose_reads_it():
    assert read_dotenv(TRICKY, environ=ENVIRONMENT) == EXPECTED


def test_runner_config_reads_the_tricky_file_with_the_environment_winning(monkeypatch):
    for key in EXPECTED:
        monkeypatch.delenv(key, raising=False)
    for key, value in ENVIRONMENT.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setattr(config, "ENV_FILE", TRICKY)
    assert config.all_values() == EFFECTIVE
    assert config.env("INLINE") == "3"
    assert config.env("ENV_WINS") == "from-env"


def test_lib_sh_exports_the_same_values_as_runner_config():
    assert exported_by_bash("source local/lib.sh", environment()) == EFFECTIVE


def test_config_runs_as_a_script_on_the_standard_library_alone():
    # -S: no site-packages, as on a fresh machine before the virtual environment exists.
    python = shutil.which("python3", path="/usr/bin:/bin") or sys.executable
    script = f'eval "$({python} -S runner/config.py --export)"'
    assert exported_by_bash(script, environment()) == EFFECTIVE


def test_a_variable_set_in_the_environment_wins_in_lib_sh():
    values = exported_by_bash("source local/lib.sh", environment(HOST="from-env", INLINE="4"))
    assert (values["HOST"], values["INLINE"], values["URL"]) == \
        ("from-env", "4", "postgresql://from-env:5432/x")


def test_a_malformed_line_names_the_file_and_line():
    with pytest.raises(ConfigError, match=r"^x\.env:3: expected KEY=value.*'NOT A LINE'"):
        parse_dotenv("A=1\n# ok\nNOT A LINE\n", environ={}, source="x.env")


def test_an_unterminated_quote_names_the_line_it_starts_on():
    with pytest.raises(ConfigError, match=r"^x\.env:2: .*no closing \""):
        parse_dotenv('A=1\nB="open\nC=3\n', environ={}, source="x.env")


def test_a_required_variable_names_itself():
    with pytest.raises(ConfigError, match=r"^x\.env:1: PASSWORD is required: set it in \.env"):
        parse_dotenv("URL=${PASSWORD:?set it in .env}", environ={}, source="x.env")


def test_lib_sh_stops_with_the_readers_message_on_a_malformed_file(tmp_path):
    broken = tmp_path / "broken.env"
    broken.write_text("GOOD=1\nBAD LINE\n")
    result = subprocess.run(["bash", "-c", "source local/lib.sh; echo reached"], cwd=ROOT,
                            env=environment(PLATFORM_ENV_FILE=str(broken)), capture_output=True, text=True)
    assert (result.returncode, result.stdout) == (2, "")
    assert "broken.env:2: expected KEY=value" in result.stderr


def test_a_missing_key_is_a_config_error_naming_it_with_exit_code_2(monkeypatch):
    monkeypatch.delenv("NOT_IN_ENV_FILE", raising=False)
    expected = r"^NOT_IN_ENV_FILE is not set: add it to .*\.env or the environment"
    with pytest.raises(ConfigError, match=expected) as error:
        config.env("NOT_IN_ENV_FILE")
    assert error.value.exit_code == 2


def test_the_shipped_env_file_reads_without_the_environment():
    values = read_dotenv(ROOT / ".env", environ={})
    assert values["KAFKA_TOPIC_PARTITIONS"] == "3"
    assert values["SPARK_MASTER_URL"] == "local[*]"
