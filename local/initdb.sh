#!/usr/bin/env bash
# Initializes the databases with the init SQL shared with the Docker images (docker/*/init).
# Idempotent: it creates only what is missing.   local/initdb.sh [postgresql] [mysql]
# Environment overrides apply, e.g. POSTGRESQL_APP_SCHEMA=scratch local/initdb.sh postgresql
source "$(dirname "$0")/lib.sh"

init_postgresql() {
  # The values reach psql through its environment (\getenv), never its command line.
  pg_superuser_psql -d postgres < "$ROOT/docker/postgresql/init/01_database.sql"
  pg_superuser_psql -d "$POSTGRESQL_APP_DB" < "$ROOT/docker/postgresql/init/02_schema.sql"
  pg_superuser_psql -d postgres < "$ROOT/docker/postgresql/init/03_airflow_metadata.sql"
  echo "postgresql: $POSTGRESQL_APP_DB.$POSTGRESQL_APP_SCHEMA ready for $POSTGRESQL_APP_USER"
}

sql_quote() { printf "'%s'" "${1//\'/\'\'}"; }

init_mysql() {
  { echo "set @app_db = $(sql_quote "$MYSQL_APP_DB"), @app_user = $(sql_quote "$MYSQL_APP_USER"),"
    echo "    @app_password = $(sql_quote "$MYSQL_APP_PASSWORD");"
    cat "$ROOT/docker/mysql/init/01_database.sql"; } | mysql_root
  echo "mysql: $MYSQL_APP_DB ready for $MYSQL_APP_USER"
}

targets=("$@"); [ ${#targets[@]} -eq 0 ] && targets=(postgresql mysql)
for t in "${targets[@]}"; do "init_$t"; done
