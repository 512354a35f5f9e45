-- Run as a superuser before the first `arbiter migrate` (docker-compose.yml's db-init; a DBA does
-- the same by hand elsewhere). The migrating login may create roles and owns the database:
-- migration 0009 then makes it a member of arbiter_migrator, the owner of the schema
-- (docs/SECURITY.md#giving-roles-a-login). Idempotent. Set a password where authentication is not
-- trust: ALTER ROLE arbiter_deploy PASSWORD '…'.
SELECT 'CREATE ROLE arbiter_deploy LOGIN CREATEROLE CREATEDB'
 WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'arbiter_deploy') \gexec
SELECT 'CREATE DATABASE arbiter OWNER arbiter_deploy'
 WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'arbiter') \gexec
ALTER DATABASE arbiter OWNER TO arbiter_deploy;
-- A database migrated earlier by another login: its schema belongs to arbiter_migrator already.
SELECT 'GRANT arbiter_migrator TO arbiter_deploy'
 WHERE EXISTS (SELECT FROM pg_roles WHERE rolname = 'arbiter_migrator') \gexec
