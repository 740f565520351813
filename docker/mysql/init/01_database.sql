-- Database, user and grants of the application. Run as root with the session variables
-- @app_db, @app_user and @app_password set first (the caller feeds them on stdin, never on a
-- command line). Idempotent: MySQL 8 and MariaDB both accept it.
-- The database name as an identifier: a backtick inside it is doubled.
set @app_db_quoted = concat('`', replace(@app_db, '`', '``'), '`');
set @sql = concat('create database if not exists ', @app_db_quoted,
                  ' character set utf8mb4 collate utf8mb4_unicode_ci');
prepare statement from @sql; execute statement; deallocate prepare statement;

set @sql = concat('create user if not exists ', quote(@app_user), '@''%'' identified by ', quote(@app_password));
prepare statement from @sql; execute statement; deallocate prepare statement;

set @sql = concat('alter user ', quote(@app_user), '@''%'' identified by ', quote(@app_password));
prepare statement from @sql; execute statement; deallocate prepare statement;

-- All privileges on its own database: create, alter, drop and rename tables (atomic swaps).
set @sql = concat('grant all privileges on ', @app_db_quoted, '.* to ', quote(@app_user), '@''%''');
prepare statement from @sql; execute statement; deallocate prepare statement;

flush privileges;
