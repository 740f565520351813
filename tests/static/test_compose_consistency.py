"""docker-compose.yml agrees with the project: .env, the files it names, the docs' graph and ports.

No Docker engine runs here, so these checks are what stands between a typo and a deployment
that fails after a twenty-minute build.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from deployment import ROOT, copy_sources, strings, variables

# What compose may override of .env inside its network: where things are, nothing else.
HOST_KEYS = {"POSTGRESQL_APP_HOST", "MYSQL_APP_HOST", "KAFKA_BOOTSTRAP_SERVERS", "SPARK_MASTER_URL"}
# Where each stateful service keeps what must survive `docker compose down`.
STATE = {
    "postgresql": "/var/lib/postgresql/data",
    "mysql": "/var/lib/mysql",
    "kafka": "/var/lib/kafka/data",
}
PROJECT_IN_IMAGE = "/opt/platform/"
MEMORY_BUDGET_GIB = 12  # the long-running containers' limits, on a 16 GB laptop
UNITS = {"b": 1, "k": 1024, "m": 1024 ** 2, "g": 1024 ** 3}


def edges(services: dict[str, dict[str, Any]]) -> set[tuple[str, str, str]]:
    """(dependency, dependent, condition) for every depends_on entry."""
    found = set()
    for name, service in services.items():
        depends_on = service.get("depends_on", {})
        if isinstance(depends_on, list):
            depends_on = {dep: {"condition": "service_started"} for dep in depends_on}
        for dep, spec in depends_on.items():
            found.add((dep, name, (spec or {}).get("condition", "service_started")))
    return found


def env_files(service: dict[str, Any]) -> list[str]:
    files = service.get("env_file", [])
    files = [files] if isinstance(files, (str, dict)) else files
    return [f["path"] if isinstance(f, dict) else f for f in files]


def environment(service: dict[str, Any]) -> dict[str, Any]:
    env = service.get("environment", {})
    if isinstance(env, list):
        env = dict(item.split("=", 1) if "=" in item else (item, None) for item in env)
    return env


def mounts(service: dict[str, Any]) -> list[tuple[str, str]]:
    """(source, target) of each volume entry; a source starting with . or / is a bind mount."""
    found = []
    for volume in service.get("volumes", []):
        if isinstance(volume, dict):
            found.append((volume.get("source", ""), volume["target"]))
        else:
            source, _, rest = volume.partition(":")
            found.append((source, rest.split(":")[0]) if rest else ("", source))
    return found


def memory_bytes(limit: Any) -> int:
    if isinstance(limit, int):
        return limit
    match = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([bkmg])?b?", str(limit).strip().lower())
    assert match, f"unreadable memory limit {limit!r}"
    return int(float(match.group(1)) * UNITS[match.group(2) or "b"])


def host_ports(service: dict[str, Any], interpolate) -> list[int]:
    ports = []
    for entry in service.get("ports", []):
        if isinstance(entry, dict):
            if entry.get("published"):
                ports.append(int(interpolate(str(entry["published"]))))
            continue
        parts = interpolate(str(entry)).split("/")[0].split(":")
        if len(parts) >= 2:
            ports.append(int(parts[-2]))
    return ports


def project_image(service: dict[str, Any]) -> bool:
    """True for the images that hold the project at /opt/platform (built with `COPY . .`)."""
    build = service.get("build")
    if not build:
        return False
    dockerfile = ROOT / build["context"] / build.get("dockerfile", "Dockerfile")
    return any(source == "." for _, source in copy_sources(dockerfile))


def command_strings(service: dict[str, Any]) -> list[tuple[str, str]]:
    """The strings a container executes: command, entrypoint, healthcheck, *_CMD settings."""
    def joined(value: Any) -> list[str]:
        return [" ".join(value)] if isinstance(value, list) else [value] if isinstance(value, str) else []

    found = [(key, text) for key in ("command", "entrypoint") for text in joined(service.get(key))]
    found.extend(("healthcheck.test", text) for text in joined(service.get("healthcheck", {}).get("test")))
    found.extend((f"environment.{k}", v) for k, v in environment(service).items()
                 if k.endswith("_CMD") and isinstance(v, str))
    return found


def test_every_variable_in_compose_is_defined_in_env(compose, dotenv):
    undefined = sorted({f"${{{name}}} at {path}" for path, text in strings(compose)
                        for name in variables(text) if name not in dotenv})
    assert not undefined, f"docker-compose.yml uses variables .env does not define: {undefined}"


def test_compose_overrides_only_host_names(services, dotenv):
    overridden = {f"{name}: {key}" for name, service in services.items() if ".env" in env_files(service)
                  for key in environment(service) if key in dotenv and key not in HOST_KEYS}
    assert not overridden, f"compose overrides .env keys other than host names: {sorted(overridden)}"


def test_host_overrides_name_services(services, interpolate):
    for name, service in services.items():
        for key, value in environment(service).items():
            if key not in HOST_KEYS:
                continue
            host = re.sub(r"^[a-z]+://", "", interpolate(str(value))).split(":")[0]
            assert host in services, f"{name}: {key}={value} names no service"


def test_services_that_read_env_get_the_env_file(services, dotenv):
    for name, service in services.items():
        uses_env_in_container = any(re.search(rf"\$\$\{{?{key}\b", text)
                                    for _, text in strings(service) for key in dotenv)
        runs_init_sql = any(src.startswith("./docker/") and src.endswith("init.sh") for src, _ in mounts(service))
        if project_image(service) or uses_env_in_container or runs_init_sql:
            assert ".env" in env_files(service), f"{name} reads the configuration but has no env_file: .env"


def test_build_contexts_and_dockerfiles_exist(services):
    for name, service in services.items():
        if "build" not in service:
            continue
        context = ROOT / service["build"]["context"]
        assert context.is_dir(), f"{name}: build context {context} does not exist"
        dockerfile = context / service["build"].get("dockerfile", "Dockerfile")
        assert dockerfile.is_file(), f"{name}: Dockerfile {dockerfile} does not exist"


def test_files_copied_into_images_exist_and_are_not_dockerignored(services):
    ignored = {line.strip().rstrip("/") for line in (ROOT / ".dockerignore").read_text().splitlines()
               if line.strip() and not line.startswith("#")}
    for service in services.values():
        if "build" not in service:
            continue
        context = ROOT / service["build"]["context"]
        dockerfile = context / service["build"].get("dockerfile", "Dockerfile")
        for line, source in copy_sources(dockerfile):
            where = f"{dockerfile.relative_to(ROOT)}:{line}"
            assert (context / source).exists(), f"{where}: COPY source {source} is not in the build context"
            assert source.rstrip("/") not in ignored, f"{where}: COPY source {source} is in .dockerignore"


def test_bind_mounted_files_exist(services):
    for name, service in services.items():
        for source, target in mounts(service):
            if source.startswith((".", "/")):
                assert (ROOT / source).exists(), f"{name}: bind mount source {source} (for {target}) does not exist"


def test_project_files_that_containers_run_exist(services):
    for name, service in services.items():
        if not project_image(service):
            continue
        for where, text in command_strings(service):
            for path in re.findall(rf"{re.escape(PROJECT_IN_IMAGE)}(\S+)", text):
                assert (ROOT / path).exists(), f"{name}.{where}: {PROJECT_IN_IMAGE}{path} is not in the project"
            for path in re.findall(r"(?<![/\w])((?:\w+/)+\w+\.(?:py|sh))\b", text):
                assert (ROOT / path).exists(), f"{name}.{where}: {path} is not in the project"
            for module in re.findall(r"-m\s+([\w.]+)", text) if "python" in text else []:
                base = ROOT / module.replace(".", "/")
                assert base.with_suffix(".py").exists() or (base / "__main__.py").exists(), \
                    f"{name}.{where}: module {module} is not in the project"


def test_init_wrappers_run_every_shared_sql_file(services):
    for name, service in services.items():
        for source, target in mounts(service):
            if not (source.startswith("./docker/") and target.startswith("/docker-entrypoint-initdb.d/")):
                continue
            wrapper = ROOT / source
            text = wrapper.read_text()
            sql_dir = re.search(r"^SQL_DIR=(\S+)$", text, re.M)
            assert sql_dir, f"{source}: no SQL_DIR=... line"
            shared = wrapper.parent / "init"
            assert (f"./{shared.relative_to(ROOT)}", sql_dir.group(1)) in mounts(service), \
                f"{name}: {shared.relative_to(ROOT)} is not mounted at {sql_dir.group(1)}, where {source} reads it"
            missing = [sql.name for sql in sorted(shared.glob("*.sql")) if sql.name not in text]
            assert not missing, f"{source} does not run {missing} of {shared.relative_to(ROOT)}"


def test_depends_on_names_existing_services(services):
    unknown = sorted(f"{dependent} -> {dep}" for dep, dependent, _ in edges(services) if dep not in services)
    assert not unknown, f"depends_on names services that do not exist: {unknown}"


def test_depends_on_graph_is_acyclic(services):
    waiting = {name: {dep for dep, dependent, _ in edges(services) if dependent == name} for name in services}
    while ready := [name for name, deps in waiting.items() if not deps]:
        for name in ready:
            del waiting[name]
        for deps in waiting.values():
            deps.difference_update(ready)
    assert not waiting, f"depends_on has a cycle among {sorted(waiting)}"


def test_depends_on_graph_matches_the_diagram(services, diagram):
    in_compose, in_diagram = edges(services), diagram.edges
    assert in_compose == in_diagram, (
        f"docker-compose.yml and the diagram in {diagram.path.name} differ:\n"
        f"  only in compose: {sorted(in_compose - in_diagram)}\n"
        f"  only in the diagram: {sorted(in_diagram - in_compose)}")


def test_diagram_shows_every_service(services, diagram):
    assert sorted(diagram.nodes.values()) == sorted(services)


def test_every_service_declares_its_restart_policy(services):
    for name, service in services.items():
        assert service.get("restart") in ("no", "always", "on-failure", "unless-stopped"), (
            f'{name}: restart must be "no" (a one-shot job, quoted so YAML keeps it a string) '
            f"or a policy for a long-running service, not {service.get('restart')!r}")


def test_every_long_running_service_has_a_healthcheck(services, one_shot):
    for name, service in services.items():
        if name in one_shot:
            continue
        healthcheck = service.get("healthcheck", {})
        assert healthcheck.get("test") and not healthcheck.get("disable"), f"{name} runs long but has no healthcheck"
        assert healthcheck["test"] != ["NONE"], f"{name}: healthcheck disabled"


def test_dependents_wait_until_healthy_or_completed(services, one_shot):
    for dep, dependent, condition in edges(services):
        expected = "service_completed_successfully" if dep in one_shot else "service_healthy"
        assert condition == expected, f"{dependent} waits for {dep} with {condition}; use {expected}"


def test_every_service_has_a_memory_limit(services):
    for name, service in services.items():
        limit = service.get("deploy", {}).get("resources", {}).get("limits", {}).get("memory")
        assert limit, f"{name} has no deploy.resources.limits.memory"


def test_long_running_services_fit_the_memory_budget(services, one_shot):
    total = sum(memory_bytes(s["deploy"]["resources"]["limits"]["memory"])
                for name, s in services.items() if name not in one_shot)
    assert total <= MEMORY_BUDGET_GIB * UNITS["g"], \
        f"memory limits of the long-running services add up to {total / UNITS['g']:.2f} GiB > {MEMORY_BUDGET_GIB} GiB"


def test_published_ports_match_the_docs_table(services, interpolate, ports_table):
    path, table = ports_table
    published = {name: host_ports(service, interpolate) for name, service in services.items()}
    published = {name: ports for name, ports in published.items() if ports}
    assert published == table, (
        f"host ports in docker-compose.yml {published} differ from the table in {path.name} {table}")


def test_state_lives_on_declared_named_volumes(services, compose):
    declared = set(compose.get("volumes") or {})
    for name, target in STATE.items():
        sources = [source for source, mounted in mounts(services[name]) if mounted == target]
        assert sources, f"{name}: nothing is mounted at {target}; its data would die with the container"
        assert sources[0] in declared, f"{name}: {target} is on {sources[0]!r}, not a declared named volume"


def test_every_named_volume_is_declared(services, compose):
    declared = set(compose.get("volumes") or {})
    for name, service in services.items():
        for source, target in mounts(service):
            if source and not source.startswith((".", "/")):
                assert source in declared, f"{name}: volume {source} (at {target}) is not declared under volumes:"


def test_no_airflow_connection_pastes_a_value_of_env_into_its_text(services):
    # Compose substitutes ${VAR} raw: a password with `"` or `\\` would break the JSON or the URI.
    for name, service in services.items():
        for key, value in environment(service).items():
            assert not (key.startswith("AIRFLOW_CONN_") and "${" in str(value)), (
                f"{name}: {key} pastes .env values into a connection; docker/airflow/settings.py builds them")


def test_long_running_airflow_services_build_their_connections_in_the_entrypoint(services, one_shot):
    airflow = [name for name, s in services.items() if "AIRFLOW__CORE__EXECUTOR" in environment(s)]
    assert airflow, "no Airflow service in docker-compose.yml"
    for name in airflow:
        if name in one_shot:
            continue
        entrypoint = services[name].get("entrypoint")
        assert entrypoint == ["/bin/bash", f"{PROJECT_IN_IMAGE}docker/airflow/entrypoint.sh"], (
            f"{name}: entrypoint {entrypoint!r} does not export the connections")
    script = (ROOT / "docker/airflow/entrypoint.sh").read_text()
    assert "settings.py connections" in script and 'exec /entrypoint "$@"' in script


def test_every_port_is_published_on_loopback_by_default(services, interpolate):
    for name, service in services.items():
        for entry in service.get("ports", []):
            published = interpolate(str(entry))
            assert published.startswith("127.0.0.1:"), (
                f"{name}: port {entry!r} is published on every interface; "
                "publish it on ${BIND_HOST:-127.0.0.1}:")


def test_airflow_runs_the_project_dags_unpaused(services):
    airflow = {name: environment(s) for name, s in services.items() if "AIRFLOW__CORE__EXECUTOR" in environment(s)}
    assert airflow, "no Airflow service in docker-compose.yml"
    for name, env in airflow.items():
        assert str(env.get("AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION")).lower() == "false", name
        folder = Path(env["AIRFLOW__CORE__DAGS_FOLDER"])
        assert (ROOT / folder.relative_to(PROJECT_IN_IMAGE)).is_dir(), f"{name}: DAGs folder {folder}"
