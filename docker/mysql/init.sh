#!/usr/bin/env bash
# Initializes a new MySQL volume with the init SQL shared with the native path, run the way
# local/initdb.sh runs it: the mysql client as root over the Unix socket, fed on stdin with the
# session variables @app_db, @app_user and @app_password (from .env through compose's env_file)
# followed by the file, so no value reaches a command line.
# The mysql image runs this once, on an empty data volume, from /docker-entrypoint-initdb.d;
# MYSQL_ROOT_PASSWORD is the random one the image's entrypoint exported for its own use.
set -euo pipefail
SQL_DIR=/opt/platform/docker/mysql/init

# A value as a MySQL string built from its UTF-8 bytes in hex: no character of it (\, ', ", $, ...)
# is ever interpreted, whatever the server's sql_mode (a quoted literal turned `pa\ss` into `pass`).
sql_text() { printf "convert(x'%s' using utf8mb4)" "$(printf '%s' "$1" | od -An -v -tx1 | tr -d ' \n')"; }
mysql_root() {
  mysql --defaults-extra-file=<(printf '[client]\nuser=root\npassword="%s"\n' "$MYSQL_ROOT_PASSWORD") \
    --protocol=socket "$@"
}

{ echo "set @app_db = $(sql_text "$MYSQL_APP_DB"), @app_user = $(sql_text "$MYSQL_APP_USER"),"
  echo "    @app_password = $(sql_text "$MYSQL_APP_PASSWORD");"
  cat "$SQL_DIR/01_database.sql"; } | mysql_root
echo "mysql: $MYSQL_APP_DB ready for $MYSQL_APP_USER"
