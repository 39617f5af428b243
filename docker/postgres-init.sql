-- Roles of the ledger, run once by the postgres image when it creates its data directory
-- (mounted in /docker-entrypoint-initdb.d; psql runs it as POSTGRES_USER in POSTGRES_DB, with
-- ON_ERROR_STOP). Passwords come from the container's environment (docker/.env), never from
-- this file. tests/unit/streams/test_docker.py runs it on a scratch database, in a transaction
-- it rolls back.
--
--   postgres       the superuser (POSTGRES_PASSWORD): the database administrator only
--   minhu_worker   the workers (MINHU_LEDGER): creates the ledger's tables and owns them, so it
--                  alone may write them
--   minhu_analyst  read-only (`minhu report|export|replay --ledger`): SELECT on the ledger's
--                  tables, and every session read-only
--
-- The ledger holds personal data in clear: nobody else may even connect.

\getenv worker_password LEDGER_WORKER_PASSWORD
\getenv analyst_password LEDGER_ANALYST_PASSWORD
\if :{?worker_password}
\else
  \set worker_password ''
\endif
\if :{?analyst_password}
\else
  \set analyst_password ''
\endif
SELECT length(:'worker_password') < 16 AS weak_worker,
       length(:'analyst_password') < 16 AS weak_analyst \gset
\if :weak_worker
  DO $$ BEGIN RAISE EXCEPTION 'LEDGER_WORKER_PASSWORD: not set, or shorter than 16'; END $$;
\endif
\if :weak_analyst
  DO $$ BEGIN RAISE EXCEPTION 'LEDGER_ANALYST_PASSWORD: not set, or shorter than 16'; END $$;
\endif

CREATE ROLE minhu_worker LOGIN PASSWORD :'worker_password';
CREATE ROLE minhu_analyst LOGIN PASSWORD :'analyst_password';
ALTER ROLE minhu_analyst SET default_transaction_read_only = on;

REVOKE ALL ON DATABASE :"DBNAME" FROM PUBLIC;
GRANT CONNECT, TEMPORARY ON DATABASE :"DBNAME" TO minhu_worker;
GRANT CONNECT ON DATABASE :"DBNAME" TO minhu_analyst;

REVOKE ALL ON SCHEMA public FROM PUBLIC;
GRANT USAGE, CREATE ON SCHEMA public TO minhu_worker;
GRANT USAGE ON SCHEMA public TO minhu_analyst;

-- Tables the worker creates later are readable by the analysts, and by nobody else.
ALTER DEFAULT PRIVILEGES FOR ROLE minhu_worker IN SCHEMA public
  GRANT SELECT ON TABLES TO minhu_analyst;
ALTER DEFAULT PRIVILEGES FOR ROLE minhu_worker IN SCHEMA public
  GRANT SELECT ON SEQUENCES TO minhu_analyst;
