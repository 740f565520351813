-- Airflow's metadata database and its owner, beside the application's. Run as a superuser,
-- connected to the `postgres` database, by psql with the values from .env read through
-- `\getenv` (never a command line). Idempotent.
\getenv airflow_db AIRFLOW_DB
\getenv airflow_user AIRFLOW_DB_USER
\getenv airflow_password AIRFLOW_DB_PASSWORD

select format('create role %I login password %L', :'airflow_user', :'airflow_password')
where not exists (select 1 from pg_roles where rolname = :'airflow_user')
\gexec
select format('alter role %I login password %L', :'airflow_user', :'airflow_password')
\gexec
select format('create database %I owner %I', :'airflow_db', :'airflow_user')
where not exists (select 1 from pg_database where datname = :'airflow_db')
\gexec
