#!/usr/bin/env bash
# `make down`: stop exactly the processes `make up` / `make airflow` started (by PID file); data stays.
source "$(dirname "$0")/lib.sh"
[ -x "$ROOT/local/airflow.sh" ] && [ -f "$PIDS/airflow.pid" ] && bash "$ROOT/local/airflow.sh" stop
"$ROOT/local/services.sh" stop
