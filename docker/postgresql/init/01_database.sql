-- Role and database of the application. Run as a superuser, connected to the `postgres`
-- database, by psql with the variables app_user, app_password and app_db set from .env
-- (`\getenv`, so the password never reaches a command line). Idempotent.
\getenv app_user POSTGRESQL_APP_USER
\getenv app_password POSTGRESQL_APP_PASSWORD
\getenv app_db POSTGRESQL_APP_DB

select format('create role %I login password %L', :'app_user', :'app_password')
where not exists (select 1 from pg_roles where rolname = :'app_user')
\gexec
select format('alter role %I login password %L', :'app_user', :'app_password')
\gexec
select format('create database %I owner %I', :'app_db', :'app_user')
where not exists (select 1 from pg_database where datname = :'app_db')
\gexec
