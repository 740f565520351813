#!/usr/bin/env bash
# Every long-running Airflow container starts here: its connections (AIRFLOW_CONN_*) built from
# .env by settings.py, which quotes any password correctly (compose would paste it raw into the
# JSON), then the image's own entrypoint with the service's command.
set -euo pipefail
connections="$(python /opt/platform/docker/airflow/settings.py connections)"
eval "$connections"
exec /entrypoint "$@"
