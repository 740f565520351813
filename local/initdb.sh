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

# A value as a MySQL string built from its UTF-8 bytes in hex: no character of it (\, ', ", $, ...)
# is ever interpreted, whatever the server's sql_mode (a quoted literal turned `pa\ss` into `pass`).
sql_text() { printf "convert(x'%s' using utf8mb4)" "$(printf '%s' "$1" | od -An -v -tx1 | tr -d ' \n')"; }

init_mysql() {
  { echo "set @app_db = $(sql_text "$MYSQL_APP_DB"), @app_user = $(sql_text "$MYSQL_APP_USER"),"
    echo "    @app_password = $(sql_text "$MYSQL_APP_PASSWORD");"
    cat "$ROOT/docker/mysql/init/01_database.sql"; } | mysql_root
  drop_open_mysql_accounts
  echo "mysql: $MYSQL_APP_DB ready for $MYSQL_APP_USER"
}

# MariaDB's install may leave anonymous accounts (''@localhost) or accounts without a password,
# which anyone on the machine could log in with: drop them. Roles and locked accounts (such as
# mariadb.sys) cannot log in and stay; root logs in only through the socket (unix_socket).
drop_open_mysql_accounts() {
  local account
  mysql_root -N -B -e "
    select concat(quote(user), '@', quote(host)) from mysql.global_priv
    where coalesce(json_value(priv, '\$.is_role'), 'false') not in ('true', '1')
      and (user = '' or (coalesce(json_value(priv, '\$.account_locked'), 'false') not in ('true', '1')
                         and coalesce(json_value(priv, '\$.plugin'), 'mysql_native_password')
                             in ('mysql_native_password', 'mysql_old_password')
                         and coalesce(json_value(priv, '\$.authentication_string'), '') = ''
                         and json_value(priv, '\$.auth_or') is null))" |
  while IFS= read -r account; do
    [ -n "$account" ] || continue
    echo "mysql: dropping the account $account, which needs no password"
    mysql_root -e "drop user if exists $account"
  done
}

targets=("$@"); [ ${#targets[@]} -eq 0 ] && targets=(postgresql mysql)
for t in "${targets[@]}"; do "init_$t"; done
