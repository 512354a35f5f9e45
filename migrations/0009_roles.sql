-- Up Migration
-- Least privilege in PostgreSQL (docs/SECURITY.md): one role per component.
--
--   arbiter_migrator  owns the schema arbiter and everything in it (DDL). NOLOGIN: the login that
--                     runs `arbiter migrate` is a superuser or a member of it
--                     (GRANT arbiter_migrator TO deployer).
--   arbiter_worker    what a worker does and nothing else: appends to the audit tables (requests,
--                     decisions, executions, lock_events, observations, inconsistencies, dead
--                     letters) — never UPDATE or DELETE there — and reads/writes its working state
--                     (request_state, resource_state, locks, observed_state, the plan tables).
--                     Partition upkeep through SECURITY DEFINER functions; dropping old audit
--                     partitions (retention) is left to the migrator.
--   arbiter_locks     the lock API (LockStore: `arbiter lock`, the SDK's ArbiterLocks): leases
--                     in arbiter.locks and appending their events to arbiter.lock_events.
--   arbiter_analyst   the analyst views only (0008).
--
-- Every role is created NOLOGIN: the operator gives LOGIN and a password to a role, or — better —
-- creates a login user per deployment that is a member of it (CREATE ROLE arbiter_worker_prod
-- LOGIN PASSWORD '…' IN ROLE arbiter_worker). Roles belong to the server, grants to each database:
-- several databases on one server run this at once, so a role is created only if missing, and a
-- concurrent creation of the same role is the same outcome.

DO $$
DECLARE
  r text;
BEGIN
  FOREACH r IN ARRAY ARRAY['arbiter_migrator', 'arbiter_worker', 'arbiter_locks', 'arbiter_analyst'] LOOP
    BEGIN
      IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = r) THEN
        EXECUTE format('CREATE ROLE %I NOLOGIN', r);
      END IF;
    EXCEPTION WHEN duplicate_object OR unique_violation THEN
      NULL;
    END;
  END LOOP;
  -- A new schema owner needs CREATE on the database (checked for a migrating login that is not a superuser).
  EXECUTE format('GRANT CREATE ON DATABASE %I TO arbiter_migrator', current_database());
  -- A migrating login that is not a superuser must be able to act as the owner it hands objects to.
  IF NOT pg_has_role(current_user, 'arbiter_migrator', 'USAGE') THEN
    BEGIN
      EXECUTE format('GRANT arbiter_migrator TO %I', current_user);
    EXCEPTION WHEN duplicate_object OR unique_violation THEN
      NULL;
    END;
  END IF;
END $$;

-- The migrator owns the schema and every table, view, sequence and function in it, so that the
-- SECURITY DEFINER functions below run as a non-superuser that can do exactly the schema's DDL.
ALTER SCHEMA arbiter OWNER TO arbiter_migrator;
DO $$
DECLARE
  o record;
BEGIN
  FOR o IN
    SELECT c.oid, c.relkind, c.relname
      FROM pg_class c
     WHERE c.relnamespace = 'arbiter'::regnamespace
       AND c.relkind IN ('r', 'p', 'v', 'm', 'S')
       -- A sequence owned by a column (serial, identity) follows its table.
       AND NOT (c.relkind = 'S' AND EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype IN ('a', 'i')))
  LOOP
    EXECUTE format('ALTER %s arbiter.%I OWNER TO arbiter_migrator',
                   CASE o.relkind WHEN 'v' THEN 'VIEW' WHEN 'm' THEN 'MATERIALIZED VIEW' WHEN 'S' THEN 'SEQUENCE' ELSE 'TABLE' END,
                   o.relname);
  END LOOP;
  FOR o IN SELECT p.oid FROM pg_proc p WHERE p.pronamespace = 'arbiter'::regnamespace LOOP
    EXECUTE format('ALTER ROUTINE %s OWNER TO arbiter_migrator', o.oid::regprocedure);
  END LOOP;
END $$;

-- Partition upkeep as the owner, whoever calls it: creating next months' partitions (moving rows out
-- of a default partition) and pruning finished working state. A fixed search_path keeps a caller's
-- objects out of the owner's rights.
ALTER FUNCTION arbiter.ensure_partitions(integer) SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION arbiter.prune_request_state(interval) SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
-- Dropping audit partitions erases the audit trail: the owner's act (retention run as the migrator),
-- not granted to workers. SECURITY DEFINER so that a member of arbiter_migrator can run it.
ALTER FUNCTION arbiter.drop_old_partitions(interval) SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
REVOKE EXECUTE ON FUNCTION
  arbiter.ensure_partitions(integer),
  arbiter.ensure_partition(text, date),
  arbiter.drop_old_partitions(interval),
  arbiter.prune_request_state(interval)
FROM PUBLIC;

-- Defence in depth for the append-only audit trail: whatever the grants say, only the tables'
-- owner (the migrator, the upkeep functions running as it, or a superuser) may UPDATE or DELETE a
-- row of requests, decisions, executions or lock_events. Upkeep moves rows out of a default
-- partition and drops old ones as the owner, so it still works.
CREATE FUNCTION arbiter.refuse_audit_rewrite() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  IF pg_has_role(current_user, (SELECT relowner FROM pg_class WHERE oid = TG_RELID), 'USAGE') THEN
    RETURN CASE TG_OP WHEN 'DELETE' THEN OLD ELSE NEW END;
  END IF;
  RAISE EXCEPTION 'arbiter.% is append-only: % refused for role %', TG_TABLE_NAME, TG_OP, current_user
    USING ERRCODE = 'insufficient_privilege';
END $$;
ALTER FUNCTION arbiter.refuse_audit_rewrite() OWNER TO arbiter_migrator;

CREATE TRIGGER append_only BEFORE UPDATE OR DELETE ON arbiter.requests
  FOR EACH ROW EXECUTE FUNCTION arbiter.refuse_audit_rewrite();
CREATE TRIGGER append_only BEFORE UPDATE OR DELETE ON arbiter.decisions
  FOR EACH ROW EXECUTE FUNCTION arbiter.refuse_audit_rewrite();
CREATE TRIGGER append_only BEFORE UPDATE OR DELETE ON arbiter.executions
  FOR EACH ROW EXECUTE FUNCTION arbiter.refuse_audit_rewrite();
CREATE TRIGGER append_only BEFORE UPDATE OR DELETE ON arbiter.lock_events
  FOR EACH ROW EXECUTE FUNCTION arbiter.refuse_audit_rewrite();

-- The worker: exactly the statements of AuditStore, LockStore, PlanStore, DetectionStore, the
-- lock-log exporter and partition upkeep (grep src/ for arbiter.). A table added later is granted
-- by the migration that adds it.
GRANT USAGE ON SCHEMA arbiter TO arbiter_worker;
-- Audit trail: append and read, never UPDATE, DELETE or TRUNCATE.
GRANT SELECT, INSERT ON
  arbiter.requests,
  arbiter.decisions,
  arbiter.executions,
  arbiter.lock_events,
  arbiter.observations,
  arbiter.inconsistencies,
  arbiter.inconsistency_fingerprints,
  arbiter.dead_letters,
  arbiter.plan_events
TO arbiter_worker;
-- Working state: rows are inserted and updated in place (no DELETE: pruning runs as the owner).
GRANT SELECT, INSERT, UPDATE ON
  arbiter.request_state,
  arbiter.resource_state,
  arbiter.locks,
  arbiter.observed_state,
  arbiter.plans,
  arbiter.plan_steps,
  arbiter.plan_outbox
TO arbiter_worker;
GRANT USAGE ON SEQUENCE arbiter.plan_outbox_id_seq TO arbiter_worker;
GRANT EXECUTE ON FUNCTION arbiter.ensure_partitions(integer), arbiter.prune_request_state(interval) TO arbiter_worker;

-- The lock API: leases and their events, nothing else.
GRANT USAGE ON SCHEMA arbiter TO arbiter_locks;
GRANT SELECT, INSERT, UPDATE ON arbiter.locks TO arbiter_locks;
GRANT INSERT ON arbiter.lock_events TO arbiter_locks;
-- What the reaper's INSERT … RETURNING reads back; not the log's details.
GRANT SELECT (resource_arn, owner, agent_id, fencing_token) ON arbiter.lock_events TO arbiter_locks;
