-- The two roles and the database (docs/deployment.md, "Database roles"), run once as postgres:
--
--   psql -h db.internal -U postgres -v ON_ERROR_STOP=1 \
--        -v owner_password="$OWNER_PASSWORD" -v service_password="$SERVICE_PASSWORD" \
--        -f deploy/postgresql/roles.sql
--
-- The owner (securegather_owner) owns the database and its public schema and runs migrate; the
-- runtime role (securegather) owns nothing, and `manage.py grant_runtime_role securegather`,
-- run as the owner after every migrate, gives it what serving needs. -v owner=, -v runtime= and
-- -v database= choose other names.
\if :{?owner}
\else
  \set owner securegather_owner
\endif
\if :{?runtime}
\else
  \set runtime securegather
\endif
\if :{?database}
\else
  \set database securegather
\endif

CREATE ROLE :"owner" LOGIN PASSWORD :'owner_password';
CREATE ROLE :"runtime" LOGIN PASSWORD :'service_password';
CREATE DATABASE :"database" OWNER :"owner";
REVOKE ALL ON DATABASE :"database" FROM PUBLIC;
GRANT CONNECT ON DATABASE :"database" TO :"runtime";

-- On PostgreSQL 14 and earlier public belongs to postgres and every role may create in it; from
-- 15 on it belongs to the database's owner already and PUBLIC may not create there, and these
-- two statements change nothing.
\connect :"database"
ALTER SCHEMA public OWNER TO :"owner";
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
