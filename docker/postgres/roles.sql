-- Least privilege for nftwatch. Run once, by the superuser, when the data directory is created
-- (see init-roles.sh, which passes the passwords as psql variables).
--
--   nftwatch_owner  owns the database and schema; only migrations connect as it.
--   nftwatch_app    what every service uses: reads and writes rows, never changes the schema.
-- Neither is a superuser, neither can create roles or databases.

\set ON_ERROR_STOP on

CREATE ROLE nftwatch_owner LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION
    PASSWORD :'owner_password';
CREATE ROLE nftwatch_app LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOINHERIT
    PASSWORD :'app_password';

CREATE DATABASE nftwatch OWNER nftwatch_owner;
REVOKE ALL ON DATABASE nftwatch FROM PUBLIC;
GRANT CONNECT, TEMPORARY ON DATABASE nftwatch TO nftwatch_app;

\connect nftwatch

-- pgvector is not a trusted extension: the superuser creates it here, so the first migration's
-- CREATE EXTENSION IF NOT EXISTS finds it and needs no privilege
CREATE EXTENSION IF NOT EXISTS vector;

ALTER SCHEMA public OWNER TO nftwatch_owner;
REVOKE ALL ON SCHEMA public FROM PUBLIC;
GRANT USAGE ON SCHEMA public TO nftwatch_app;

-- whatever the owner's migrations create later is usable by the app, for rows only
ALTER DEFAULT PRIVILEGES FOR ROLE nftwatch_owner IN SCHEMA public
    GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO nftwatch_app;
ALTER DEFAULT PRIVILEGES FOR ROLE nftwatch_owner IN SCHEMA public
    GRANT USAGE, SELECT, UPDATE ON SEQUENCES TO nftwatch_app;
ALTER DEFAULT PRIVILEGES FOR ROLE nftwatch_owner IN SCHEMA public
    GRANT EXECUTE ON FUNCTIONS TO nftwatch_app;
