#!/usr/bin/env bash
# Starts, stops and reports the platform's services on loopback, each with a PID file and a
# log under .state:  local/services.sh start|stop|status [service...]
# Services: postgresql mysql kafka spark-master spark-worker (in start order).
source "$(dirname "$0")/lib.sh"

ALL=(postgresql mysql kafka spark-master spark-worker)

# --- PostgreSQL --------------------------------------------------------------------------
start_postgresql() {
  local data; data="$(pg_data)"
  if [ ! -e "$data/PG_VERSION" ]; then
    if ! setpriv --reuid=postgres --regid=postgres --init-groups -- test -w "$STATE"; then
      # The postgres user cannot reach this checkout (e.g. under /root): keep the data where it can.
      local elsewhere; elsewhere="/var/lib/postgresql/platform-$(echo "$ROOT" | sha256sum | cut -c1-12)"
      if [ -e "$elsewhere" ]; then
        # This checkout's state is new, so a cluster there was left by an earlier checkout at this path.
        say "postgresql: removing $elsewhere, left by an earlier checkout at $ROOT"
        rm -rf "$elsewhere"
      fi
      mkdir -p "$elsewhere"; chown postgres:postgres "$elsewhere"
      rm -rf "$data"; ln -sfn "$elsewhere" "$data"
    else
      mkdir -p "$data"; chown postgres:postgres "$data"
    fi
    say "postgresql: creating the cluster in .state/postgres"
    as_postgres initdb -D "$(readlink -f "$data")" -U postgres --auth-local=peer \
      --auth-host=scram-sha-256 --encoding=UTF8 --locale=C.UTF-8 >> "$LOGS/postgresql.log" 2>&1 \
      || { tail -n 20 "$LOGS/postgresql.log" >&2; die "postgresql: initdb failed in $(readlink -f "$data")"; }
  fi
  start_service postgresql "$POSTGRESQL_APP_HOST" "$POSTGRESQL_APP_PORT" \
    setpriv --reuid=postgres --regid=postgres --init-groups -- "$(pg_bin)/postgres" \
      -D "$(readlink -f "$data")" -c listen_addresses="$POSTGRESQL_APP_HOST" -c port="$POSTGRESQL_APP_PORT" \
      -c unix_socket_directories="$(readlink -f "$data")" -c max_connections=200 \
      -c shared_buffers=256MB -c fsync=on -c logging_collector=off
  wait_for postgresql "$POSTGRESQL_APP_HOST" "$POSTGRESQL_APP_PORT" 60 \
    "$(pg_bin)/pg_isready" -q -h "$POSTGRESQL_APP_HOST" -p "$POSTGRESQL_APP_PORT"
}

# --- MySQL (MariaDB natively) ------------------------------------------------------------
start_mysql() {
  local data="$STATE/mysql/data"
  if [ ! -d "$data/mysql" ]; then
    mkdir -p "$data"
    say "mysql: creating the data directory in .state/mysql"
    mariadb-install-db --no-defaults --datadir="$data" --user=root \
      --auth-root-authentication-method=socket --skip-test-db >> "$LOGS/mysql.log" 2>&1
  fi
  # The buffer pool holds a x100 shop twice (404 MB, and its staged copy while an overwrite
  # swaps): at 512 MB InnoDB evicted and flushed pages mid-load (replicate x100: MariaDB
  # 24-27 CPU-s at 512 MB, 19 at 2 GB). Its pages are only taken as they are used.
  start_service mysql "$MYSQL_APP_HOST" "$MYSQL_APP_PORT" \
    mariadbd --no-defaults --datadir="$data" --user=root --socket="$(mysql_socket)" \
      --port="$MYSQL_APP_PORT" --bind-address="$MYSQL_APP_HOST" --skip-name-resolve \
      --character-set-server=utf8mb4 --collation-server=utf8mb4_unicode_ci \
      --innodb-buffer-pool-size=2G --max-connections=300 --max-allowed-packet=256M
  wait_for mysql "$MYSQL_APP_HOST" "$MYSQL_APP_PORT" 60 \
    mariadb-admin --no-defaults --socket="$(mysql_socket)" -uroot ping
}

# --- Kafka (KRaft: one combined broker and controller) ------------------------------------
kafka_config() {
  local host port; host="$(host_of "$KAFKA_BOOTSTRAP_SERVERS")"; port="$(port_of "$KAFKA_BOOTSTRAP_SERVERS")"
  cat <<CONF
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@$host:$KAFKA_CONTROLLER_PORT
listeners=PLAINTEXT://$host:$port,CONTROLLER://$host:$KAFKA_CONTROLLER_PORT
advertised.listeners=PLAINTEXT://$host:$port
controller.listener.names=CONTROLLER
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
inter.broker.listener.name=PLAINTEXT
log.dirs=$STATE/kafka/data
num.partitions=$KAFKA_TOPIC_PARTITIONS
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
CONF
}

start_kafka() {
  local dir="$STATE/kafka" host port
  host="$(host_of "$KAFKA_BOOTSTRAP_SERVERS")"; port="$(port_of "$KAFKA_BOOTSTRAP_SERVERS")"
  mkdir -p "$dir/data"
  kafka_config > "$dir/server.properties"
  cp "$ROOT/local/kafka-log4j2.properties" "$dir/log4j2.properties"
  local java=(java -Xms256m -Xmx1g -Dlog4j2.configurationFile="$dir/log4j2.properties" -cp "$STATE/jars/kafka-broker/*")
  if [ ! -f "$dir/data/meta.properties" ]; then
    say "kafka: formatting the KRaft storage in .state/kafka"
    local cluster_id; cluster_id="$("$PY" -c 'import base64, uuid; print(base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("="))')"
    "${java[@]}" kafka.tools.StorageTool format -t "$cluster_id" -c "$dir/server.properties" >> "$LOGS/kafka.log" 2>&1
  fi
  start_service kafka "$host" "$port,$KAFKA_CONTROLLER_PORT" "${java[@]}" kafka.Kafka "$dir/server.properties"
  wait_for kafka "$host" "$port" 90 "$PY" "$ROOT/local/kafka_admin.py" ready
}

# --- Spark standalone master and worker, from the installed pyspark's classes ---------------
spark_home() { "$PY" -c 'import os, pyspark; print(os.path.dirname(pyspark.__file__))'; }

start_spark-master() {
  start_service spark-master localhost "$SPARK_MASTER_PORT,$SPARK_MASTER_WEBUI_PORT" env SPARK_LOCAL_IP=127.0.0.1 \
    "$(spark_home)/bin/spark-class" org.apache.spark.deploy.master.Master \
      --host localhost --port "$SPARK_MASTER_PORT" --webui-port "$SPARK_MASTER_WEBUI_PORT"
  wait_for spark-master localhost "$SPARK_MASTER_WEBUI_PORT" 60 \
    curl -sf --max-time 5 "http://localhost:$SPARK_MASTER_WEBUI_PORT/json/"
}

start_spark-worker() {
  start_service spark-worker localhost "$SPARK_WORKER_WEBUI_PORT" env SPARK_LOCAL_IP=127.0.0.1 \
    "$(spark_home)/bin/spark-class" org.apache.spark.deploy.worker.Worker \
      --host localhost --webui-port "$SPARK_WORKER_WEBUI_PORT" --cores "$(nproc)" --memory 4g \
      "spark://localhost:$SPARK_MASTER_PORT"
  wait_for spark-worker localhost "$SPARK_MASTER_WEBUI_PORT" 60 \
    sh -c "curl -sf --max-time 5 http://localhost:$SPARK_MASTER_WEBUI_PORT/json/ | grep -q '\"state\" *: *\"ALIVE\"'"
}

status() {
  local name
  for name in "${ALL[@]}" airflow; do
    if pid_alive "$name"; then echo "$name: running (pid $(cat "$PIDS/$name.pid"))"
    else echo "$name: stopped"; fi
  done
}

command="${1:-status}"; shift || true
services=("$@"); [ ${#services[@]} -eq 0 ] && services=("${ALL[@]}")
case "$command" in
  start) for s in "${services[@]}"; do "start_$s"; done ;;
  stop) for ((i=${#services[@]}-1; i>=0; i--)); do stop_service "${services[i]}"; done ;;
  status) status ;;
  *) die "usage: local/services.sh start|stop|status [service...]" ;;
esac
