-- Run as a superuser after `arbiter migrate` has created the roles (docker-compose.yml's
-- db-logins). One login per component, each a member of the role that holds its rights
-- (docs/SECURITY.md#postgresql-roles). Idempotent. Set passwords where authentication is not
-- trust: ALTER ROLE arbiter_compose_worker PASSWORD '…'.
SELECT 'CREATE ROLE arbiter_compose_worker LOGIN IN ROLE arbiter_worker'
 WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'arbiter_compose_worker') \gexec
-- For lock-API agents (the SDK's ArbiterLocks, `arbiter lock`).
SELECT 'CREATE ROLE arbiter_compose_locks LOGIN IN ROLE arbiter_locks'
 WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'arbiter_compose_locks') \gexec
