#!/usr/bin/env bash
# `make up`: install what is missing, start every service on loopback, wait until each answers,
# initialize both databases and the Kafka topic. Idempotent; a second run changes nothing.
# The install first: on a fresh machine it brings the python3 that lib.sh reads .env with.
bash "$(dirname "$0")/install.sh" "$@" || exit
source "$(dirname "$0")/lib.sh"
"$ROOT/local/services.sh" start
"$ROOT/local/initdb.sh"
"$PY" "$ROOT/local/kafka_admin.py" create-topic
say "platform up in ${SECONDS}s: PostgreSQL $POSTGRESQL_APP_HOST:$POSTGRESQL_APP_PORT, MySQL $MYSQL_APP_HOST:$MYSQL_APP_PORT, Kafka $KAFKA_BOOTSTRAP_SERVERS, Spark spark://localhost:$SPARK_MASTER_PORT (UI http://localhost:$SPARK_MASTER_WEBUI_PORT)"
