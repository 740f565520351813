"""Airflow in compose is configured with real options, and its settings helper behaves.

Airflow ignores an `AIRFLOW__SECTION__KEY` it does not know, so a typo silently leaves the
default in place (paused DAGs, the wrong executor); the pinned Airflow in the virtual
environment says which options exist.
"""

from __future__ import annotations

import importlib.util
import json
import shlex
import subprocess
from urllib.parse import unquote, urlsplit

import pytest
from deployment import ROOT

SETTINGS = ROOT / "docker" / "airflow" / "settings.py"


def load_settings():
    """docker/airflow/settings.py as a module (it is a script in the image, not a package)."""
    spec = importlib.util.spec_from_file_location("airflow_compose_settings", SETTINGS)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def airflow_options(services) -> dict[str, tuple[str, str]]:
    """Every `AIRFLOW__SECTION__KEY[_CMD]` in compose -> (section, key), by variable name."""
    found = {}
    for service in services.values():
        for name in service.get("environment") or {}:
            if name.startswith("AIRFLOW__"):
                section, _, key = name[len("AIRFLOW__"):].lower().partition("__")
                found[name] = (section, key)
    return found


def test_every_airflow_setting_in_compose_is_an_option_of_the_pinned_airflow(services):
    from airflow.configuration import conf

    known = conf.configuration_description
    for name, (section, key) in airflow_options(services).items():
        option = key.removesuffix("_cmd") if name.endswith("_CMD") else key
        options = known.get(section, {}).get("options", {})
        assert option in options, f"{name}: Airflow has no option [{section}] {option}"


def test_commands_are_used_only_for_options_airflow_runs_commands_for(services):
    from airflow.configuration import conf

    for name, (section, key) in airflow_options(services).items():
        if name.endswith("_CMD"):
            assert (section, key.removesuffix("_cmd")) in conf.sensitive_config_values, \
                f"{name}: Airflow ignores _CMD for a non-sensitive option; set the value itself"


def test_airflow_commands_call_the_settings_helper_it_ships(services):
    settings = load_settings()
    for service in services.values():
        for name, value in (service.get("environment") or {}).items():
            if name.startswith("AIRFLOW__") and name.endswith("_CMD"):
                words = shlex.split(value)
                assert words[:2] == ["python", "/opt/platform/docker/airflow/settings.py"], name
                if words[2] == "secret":
                    made = words[3].rsplit("/", 1)[-1]
                    assert made in settings.GENERATED, f"{name}: airflow-init makes no {words[3]}"


def test_metadata_url_quotes_the_password(monkeypatch):
    settings = load_settings()
    for key, value in {"AIRFLOW_DB_USER": "airflow_user", "AIRFLOW_DB_PASSWORD": "p@ss:w/rd#1",
                       "POSTGRESQL_APP_HOST": "postgresql", "POSTGRESQL_APP_PORT": "5432",
                       "AIRFLOW_DB": "airflow_db"}.items():
        monkeypatch.setenv(key, value)
    url = urlsplit(settings.metadata_url())
    assert (url.scheme, url.hostname, url.port, url.path) == ("postgresql+psycopg2", "postgresql", 5432, "/airflow_db")
    assert (unquote(url.username), unquote(url.password)) == ("airflow_user", "p@ss:w/rd#1")


def test_init_keeps_the_secrets_and_rewrites_the_admin_password(tmp_path, monkeypatch):
    settings = load_settings()
    monkeypatch.setenv("AIRFLOW_ADMIN_USER", "admin")
    monkeypatch.setenv("AIRFLOW_ADMIN_PASSWORD", "first")
    settings.init(tmp_path)
    secrets = {name: (tmp_path / name).read_text() for name in settings.GENERATED}
    monkeypatch.setenv("AIRFLOW_ADMIN_PASSWORD", "second")
    settings.init(tmp_path)
    assert {name: (tmp_path / name).read_text() for name in settings.GENERATED} == secrets
    assert json.loads((tmp_path / "passwords.json").read_text()) == {"admin": "second"}
    assert len(secrets["jwt_secret"]) >= 64  # HS512
    assert oct((tmp_path / "jwt_secret").stat().st_mode & 0o777) == "0o600"


def test_secret_of_a_missing_file_names_the_file(tmp_path):
    settings = load_settings()
    with pytest.raises(SystemExit, match="jwt_secret.*airflow-init"):
        settings.secret(tmp_path / "jwt_secret")


# Every character issue 13 names, and the ones a shell, compose or a URI would also eat.
HOSTILE_PASSWORD = "p\\a'ss\"w$rd#1@h/x%41 ${HOME}`id`"


def platform_environment(password: str) -> dict[str, str]:
    return {"SPARK_MASTER_URL": "spark://spark-master:7077",
            "POSTGRESQL_APP_HOST": "postgresql", "POSTGRESQL_APP_PORT": "5432",
            "POSTGRESQL_APP_DB": "postgres_finals_db", "POSTGRESQL_APP_SCHEMA": "postgres_finals_schema",
            "POSTGRESQL_APP_USER": "finals_user", "POSTGRESQL_APP_PASSWORD": password,
            "MYSQL_APP_HOST": "mysql", "MYSQL_APP_PORT": "3306", "MYSQL_APP_DB": "mysql_finals_db",
            "MYSQL_APP_USER": "finals_user", "MYSQL_APP_PASSWORD": password}


def test_airflow_reads_every_character_of_the_passwords_back(monkeypatch):
    from airflow.secrets.environment_variables import EnvironmentVariablesBackend

    for key, value in load_settings().connections(platform_environment(HOSTILE_PASSWORD)).items():
        monkeypatch.setenv(key, value)
    backend = EnvironmentVariablesBackend()  # how Airflow reads AIRFLOW_CONN_* itself
    for conn_id, host, port in (("postgresql", "postgresql", 5432), ("mysql", "mysql", 3306)):
        connection = backend.get_connection(conn_id)
        assert (connection.host, connection.port, connection.login) == (host, port, "finals_user")
        assert connection.password == HOSTILE_PASSWORD, conn_id
    assert backend.get_connection("spark_default").host == "spark://spark-master:7077"


def test_the_entrypoints_export_lines_give_the_values_unchanged():
    # As docker/airflow/entrypoint.sh does: eval the `connections` output in bash, then compare
    # what the process that Airflow becomes would see. The password travels in the environment.
    script = (f'eval "$(python3 {SETTINGS} connections)"; '
              'python3 -c \'import json, os; print(json.dumps({k: v for k, v in os.environ.items() '
              'if k.startswith("AIRFLOW_CONN_")}))\'')
    env = {"PATH": "/usr/bin:/bin", **platform_environment(HOSTILE_PASSWORD)}
    result = subprocess.run(["bash", "-c", script], env=env, capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == load_settings().connections(env)
    assert json.loads(json.loads(result.stdout)["AIRFLOW_CONN_MYSQL"])["password"] == HOSTILE_PASSWORD
