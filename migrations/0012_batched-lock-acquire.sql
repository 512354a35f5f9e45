-- Leases taken at the same time share one statement: under a storm hundreds of executions take
-- their lease within milliseconds, and each paid a statement and a commit of its own. Each lease is
-- taken exactly as arbiter.acquire_lock takes it (0011), in ARN order: every caller locks rows in
-- one order, so two batches can never wait for each other in a cycle.
CREATE FUNCTION arbiter.acquire_locks(p_arns text[], p_owners text[], p_agents text[], p_ttls_ms integer[])
RETURNS TABLE (
  resource_arn      text,
  acquired          boolean,
  fencing_token     bigint,
  expires_at        timestamptz,
  holder_owner      text,
  holder_agent      text,
  holder_token      bigint,
  holder_expires_at timestamptz,
  expired_owner     text,
  expired_agent     text,
  expired_token     bigint,
  expired_at        timestamptz
)
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  i bigint;
BEGIN
  FOR i IN SELECT t.ord FROM unnest(p_arns) WITH ORDINALITY AS t(arn, ord) ORDER BY t.arn LOOP
    RETURN QUERY SELECT p_arns[i], a.* FROM arbiter.acquire_lock(p_arns[i], p_owners[i], p_agents[i], p_ttls_ms[i]) a;
  END LOOP;
END;
$$;
ALTER FUNCTION arbiter.acquire_locks(text[], text[], text[], integer[]) OWNER TO arbiter_migrator;
REVOKE EXECUTE ON FUNCTION arbiter.acquire_locks(text[], text[], text[], integer[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION arbiter.acquire_locks(text[], text[], text[], integer[]) TO arbiter_worker, arbiter_locks;
