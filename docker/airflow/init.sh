#!/usr/bin/env bash
# airflow-init (one-shot, on every `docker compose up`): the secrets every Airflow component
# shares and the admin's password file from .env, then the metadata database migrated.
# Airflow's own entrypoint waits until PostgreSQL accepts the metadata URL before migrating.
# Idempotent: the secrets are made once; migrating a current database changes nothing.
set -euo pipefail
python /opt/platform/docker/airflow/settings.py init /opt/airflow/secrets
exec /entrypoint airflow db migrate
