-- Up Migration
-- Partition upkeep that workers can run at any time (advisory-locked, idempotent):
--  * a month's partition is created ahead of time; rows that already landed in the default
--    partition for that month are moved into it first (attaching a range that the default
--    partition still holds rows for would fail, and with it every later migration);
--  * partitions wholly older than a retention period are dropped;
--  * finished, published working state older than the retention period is pruned.

-- The column a partitioned table is partitioned by (received_at, decided_at, at, ...).
CREATE OR REPLACE FUNCTION arbiter.partition_column(parent text) RETURNS text
LANGUAGE sql STABLE AS $$
  SELECT (regexp_match(pg_get_partkeydef(('arbiter.' || parent)::regclass), '\((\w+)\)'))[1]
$$;

CREATE OR REPLACE FUNCTION arbiter.ensure_partition(parent text, month date) RETURNS boolean
LANGUAGE plpgsql AS $$
DECLARE
  first date := date_trunc('month', month)::date;
  next date := (date_trunc('month', month) + interval '1 month')::date;
  part text := parent || '_' || to_char(first, 'YYYY_MM');
  col text := arbiter.partition_column(parent);
BEGIN
  IF to_regclass('arbiter.' || part) IS NOT NULL THEN
    RETURN false;
  END IF;
  IF to_regclass('arbiter.' || parent || '_default') IS NULL THEN
    EXECUTE format('CREATE TABLE arbiter.%I PARTITION OF arbiter.%I DEFAULT', parent || '_default', parent);
  END IF;
  -- Built standalone, filled from the default partition, then attached (indexes follow on attach).
  EXECUTE format('CREATE TABLE arbiter.%I (LIKE arbiter.%I INCLUDING DEFAULTS INCLUDING CONSTRAINTS)', part, parent);
  EXECUTE format('WITH moved AS (DELETE FROM arbiter.%I WHERE %I >= %L AND %I < %L RETURNING *) INSERT INTO arbiter.%I SELECT * FROM moved',
                 parent || '_default', col, first, col, next, part);
  EXECUTE format('ALTER TABLE arbiter.%I ATTACH PARTITION arbiter.%I FOR VALUES FROM (%L) TO (%L)', parent, part, first, next);
  RETURN true;
END $$;

CREATE OR REPLACE FUNCTION arbiter.partitioned_tables() RETURNS text[]
LANGUAGE sql IMMUTABLE AS $$
  SELECT ARRAY['requests', 'decisions', 'executions', 'lock_events', 'observations', 'inconsistencies']
$$;

-- Replaces 0001's version: same signature, now moving rows out of the default partition.
CREATE OR REPLACE FUNCTION arbiter.ensure_partitions(months_ahead integer DEFAULT 2) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
  parent text;
BEGIN
  -- Two workers (or a worker and a migration) never reshape partitions at once.
  PERFORM pg_advisory_xact_lock(hashtext('arbiter.partition_upkeep'));
  FOREACH parent IN ARRAY arbiter.partitioned_tables() LOOP
    FOR i IN 0..months_ahead LOOP
      PERFORM arbiter.ensure_partition(parent, (date_trunc('month', now()) + make_interval(months => i))::date);
    END LOOP;
  END LOOP;
END $$;

-- Drops monthly partitions that end before now() - keep; returns the names dropped.
CREATE OR REPLACE FUNCTION arbiter.drop_old_partitions(keep interval) RETURNS text[]
LANGUAGE plpgsql AS $$
DECLARE
  parent text;
  r record;
  dropped text[] := '{}';
  cutoff date := (now() - keep)::date;
BEGIN
  PERFORM pg_advisory_xact_lock(hashtext('arbiter.partition_upkeep'));
  FOREACH parent IN ARRAY arbiter.partitioned_tables() LOOP
    FOR r IN
      SELECT c.relname
        FROM pg_inherits i
        JOIN pg_class c ON c.oid = i.inhrelid
        JOIN pg_class p ON p.oid = i.inhparent
        JOIN pg_namespace n ON n.oid = p.relnamespace
       WHERE n.nspname = 'arbiter' AND p.relname = parent AND c.relname ~ ('^' || parent || '_\d{4}_\d{2}$')
    LOOP
      -- The partition's month is in its name; it ends a month after it starts.
      IF (to_date(right(r.relname, 7), 'YYYY_MM') + interval '1 month')::date <= cutoff THEN
        EXECUTE format('DROP TABLE arbiter.%I', r.relname);
        dropped := dropped || r.relname;
      END IF;
    END LOOP;
    EXECUTE format('DELETE FROM arbiter.%I WHERE %I < %L', parent || '_default', arbiter.partition_column(parent), cutoff);
  END LOOP;
  RETURN dropped;
END $$;

-- Forgets finished, published requests older than keep (their audit rows stay until their partitions go).
CREATE OR REPLACE FUNCTION arbiter.prune_request_state(keep interval) RETURNS bigint
LANGUAGE sql AS $$
  WITH gone AS (
    DELETE FROM arbiter.request_state WHERE final AND outcome_published AND finished_at < now() - keep RETURNING 1
  ) SELECT count(*) FROM gone
$$;
