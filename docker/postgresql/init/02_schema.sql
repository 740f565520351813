-- The shop's source tables. Run by psql connected to the application database as a
-- superuser; creates only what is missing, so it can run on every start.
\getenv app_user POSTGRESQL_APP_USER
\getenv app_schema POSTGRESQL_APP_SCHEMA

select format('create schema if not exists %I authorization %I', :'app_schema', :'app_user')
\gexec
select format('set search_path to %I', :'app_schema')
\gexec

create table if not exists product_categories (
    category_id        serial primary key,
    name               varchar(100) not null,
    parent_category_id integer references product_categories (category_id)
);

create table if not exists users (
    user_id           serial primary key,
    first_name        varchar(100) not null,
    last_name         varchar(100) not null,
    email             varchar(255) not null unique,
    phone             varchar(50),
    registration_date timestamp not null,
    loyalty_status    varchar(10) check (loyalty_status in ('Gold', 'Silver', 'Bronze'))
);

create table if not exists products (
    product_id     serial primary key,
    name           varchar(255) not null,
    description    varchar(1000),
    category_id    integer references product_categories (category_id),
    price          numeric(10, 2) not null check (price >= 0),
    stock_quantity integer not null check (stock_quantity >= 0),
    creation_date  timestamp not null
);

create table if not exists orders (
    order_id      serial primary key,
    user_id       integer not null references users (user_id),
    order_date    timestamp not null,
    total_amount  numeric(10, 2) not null,
    status        varchar(20) not null,
    delivery_date timestamp
);

create table if not exists order_details (
    order_detail_id serial primary key,
    order_id        integer not null references orders (order_id),
    product_id      integer not null references products (product_id),
    quantity        integer not null check (quantity > 0),
    price_per_unit  numeric(10, 2) not null,
    total_price     numeric(10, 2) not null
);

create index if not exists orders_user_id_idx on orders (user_id);
create index if not exists order_details_order_id_idx on order_details (order_id);
create index if not exists order_details_product_id_idx on order_details (product_id);

-- Upgrade from the release before topic ids: the stream made stream_dead_letters (its first
-- run creates it from sql/stream/030) without payload_bytes and kafka_topic_id, keyed by the
-- topic's name. Its rows keep their text; the incarnation they came from is unknown, so their
-- id says so, with a digest of the topic's name that keeps rows of two topics apart.
do $$
declare
    old_key name;
begin
    if to_regclass('stream_dead_letters') is null or exists (
        select from information_schema.columns where table_schema = current_schema()
        and table_name = 'stream_dead_letters' and column_name = 'kafka_topic_id') then
        return;
    end if;
    select conname into old_key from pg_constraint
    where conrelid = 'stream_dead_letters'::regclass and contype = 'p';
    alter table stream_dead_letters add column if not exists payload_bytes bytea,
        add column kafka_topic_id varchar(36);
    update stream_dead_letters set kafka_topic_id = 'unknown-' || left(md5(kafka_topic), 28);
    if old_key is not null then
        execute format('alter table stream_dead_letters drop constraint %I', old_key);
    end if;
    alter table stream_dead_letters alter column kafka_topic_id set not null,
        add primary key (kafka_topic_id, kafka_partition, kafka_offset);
    raise notice 'stream_dead_letters: brought up to date (payload_bytes, kafka_topic_id; keyed by topic id)';
end
$$;

-- The app user owns what it works with: tables, their sequences, and anything it creates.
select format('alter table %I.%I owner to %I', schemaname, tablename, :'app_user')
from pg_tables where schemaname = :'app_schema' and tableowner <> :'app_user'
\gexec
select format('alter sequence %I.%I owner to %I', sequence_schema, sequence_name, :'app_user')
from information_schema.sequences s
join pg_class c on c.relname = s.sequence_name
where sequence_schema = :'app_schema' and pg_get_userbyid(c.relowner) <> :'app_user'
\gexec
select format('grant all on schema %I to %I', :'app_schema', :'app_user')
\gexec
