#!/usr/bin/env bash
# Initializes a new PostgreSQL volume with the init SQL shared with the native path, run the way
# local/initdb.sh runs it: psql as the superuser over the Unix socket, the values read by the SQL
# itself from the environment (`\getenv`, compose's env_file: .env), never from a command line.
# The postgres image runs this once, on an empty data volume, from /docker-entrypoint-initdb.d.
set -euo pipefail
SQL_DIR=/opt/platform/docker/postgresql/init

psql_superuser() { psql -X -q -v ON_ERROR_STOP=1 --no-password --username "$POSTGRES_USER" "$@"; }

psql_superuser --dbname postgres -f "$SQL_DIR/01_database.sql"
psql_superuser --dbname "$POSTGRESQL_APP_DB" -f "$SQL_DIR/02_schema.sql"

psql_superuser --dbname postgres -f "$SQL_DIR/03_airflow_metadata.sql"
echo "postgresql: $POSTGRESQL_APP_DB.$POSTGRESQL_APP_SCHEMA ready for $POSTGRESQL_APP_USER; Airflow metadata in $AIRFLOW_DB"
