#!/usr/bin/env bash
# `make demo` (after `make up`): the whole flow end to end on the native platform.
# Generates the shop's data, replicates it to MySQL, builds the marts, publishes a burst of
# user-registration events (and a few broken ones) and streams them into PostgreSQL, then shows
# a few rows of each mart and the stream's counts.   DEMO_AIRFLOW=1 also starts Airflow at the end.
source "$(dirname "$0")/lib.sh"
cd "$ROOT"
started=$SECONDS
EVENTS="${DEMO_EVENTS:-1000}"

say "generating the shop's data in PostgreSQL (skipped for tables that already hold rows)"
"$PY" -m datagen.postgres

say "replicating PostgreSQL -> MySQL"
"$PY" -m runner run replicate

say "building the marts in MySQL"
"$PY" -m runner run marts

say "publishing $EVENTS user-registration events and 3 broken ones to Kafka"
"$PY" -m datagen.kafka --count "$EVENTS" --interval 0
"$PY" - <<'PY'
from kafka import KafkaProducer
from runner import config

producer = KafkaProducer(bootstrap_servers=config.env("KAFKA_BOOTSTRAP_SERVERS"), acks="all")
for payload in (b"not json at all", b'{"first_name": "Ann"}',
                b'{"first_name": "Bo", "last_name": "Li", "email": "bo@example.org", "phone": "1",'
                b' "registration_date": "yesterday", "loyalty_status": "Gold"}'):
    producer.send(config.env("KAFKA_TOPIC_NAME"), payload)
producer.flush()
producer.close()
PY

say "streaming the topic into PostgreSQL users (exactly once; broken events go to dead letters)"
"$PY" -m runner run stream

say "a few rows of each mart (MySQL $MYSQL_APP_DB)"
for mart in mart_user_activity mart_product_sales mart_average_check; do
  echo "-- $mart"
  MYSQL_PWD="$MYSQL_APP_PASSWORD" mariadb --no-defaults -h "$MYSQL_APP_HOST" -P "$MYSQL_APP_PORT" \
    -u "$MYSQL_APP_USER" "$MYSQL_APP_DB" --table -e "select * from $mart order by 1, 2 limit 5"
done

say "the stream's results (PostgreSQL $POSTGRESQL_APP_DB.$POSTGRESQL_APP_SCHEMA)"
PGPASSWORD="$POSTGRESQL_APP_PASSWORD" psql -X -h "$POSTGRESQL_APP_HOST" -p "$POSTGRESQL_APP_PORT" \
  -U "$POSTGRESQL_APP_USER" -d "$POSTGRESQL_APP_DB" -c "
  set search_path to $POSTGRESQL_APP_SCHEMA;
  select (select count(*) from users) as users_total,
         (select count(*) from stream_dead_letters) as dead_letters,
         (select coalesce(sum(next_offset), 0) from runner_kafka_offsets where consumer = 'stream') as events_consumed;"

say "demo finished in $((SECONDS - started))s"
if [ "${DEMO_AIRFLOW:-0}" = 1 ]; then
  bash "$ROOT/local/airflow.sh" start
fi
