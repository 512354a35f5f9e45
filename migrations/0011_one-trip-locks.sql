-- A lease is taken in one round trip. LockStore.acquire used to run six statements (BEGIN, ensure
-- the row, SELECT … FOR UPDATE, UPDATE, the event, COMMIT): at ~10,000 executions in a storm those
-- round trips were a large share of each execution's cost. The function runs the same steps, in
-- the same order, inside the caller's statement: each step still sees the latest committed row
-- (READ COMMITTED), the row lock is held to the end, and every outcome writes its lock event.
CREATE FUNCTION arbiter.acquire_lock(p_arn text, p_owner text, p_agent text, p_ttl_ms integer)
RETURNS TABLE (
  acquired          boolean,
  fencing_token     bigint,
  expires_at        timestamptz,
  -- Who holds it, when not acquired.
  holder_owner      text,
  holder_agent      text,
  holder_token      bigint,
  holder_expires_at timestamptz,
  -- The lease found expired unreleased and taken over (its expiry is recorded), when there was one.
  expired_owner     text,
  expired_agent     text,
  expired_token     bigint,
  expired_at        timestamptz
)
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  cur record;
  new_token bigint;
  new_expiry timestamptz;
BEGIN
  INSERT INTO arbiter.locks (resource_arn) VALUES (p_arn) ON CONFLICT DO NOTHING;
  SELECT l.owner, l.agent_id, l.fencing_token, l.expires_at, coalesce(l.expires_at <= now(), false) AS expired,
         round(EXTRACT(EPOCH FROM (l.expires_at - l.renewed_at)) * 1000)::int AS ttl_ms
    INTO cur
    FROM arbiter.locks l WHERE l.resource_arn = p_arn FOR UPDATE;
  IF cur.owner IS NOT NULL AND NOT cur.expired AND cur.owner <> p_owner THEN
    INSERT INTO arbiter.lock_events (resource_arn, event, owner, agent_id, fencing_token, holder_owner, holder_agent, ttl_ms)
    VALUES (p_arn, 'acquire_failed', p_owner, p_agent, cur.fencing_token, cur.owner, cur.agent_id, p_ttl_ms);
    RETURN QUERY SELECT false, NULL::bigint, NULL::timestamptz, cur.owner, cur.agent_id, cur.fencing_token, cur.expires_at,
                        NULL::text, NULL::text, NULL::bigint, NULL::timestamptz;
    RETURN;
  END IF;
  IF cur.owner IS NOT NULL AND cur.expired THEN
    INSERT INTO arbiter.lock_events (resource_arn, event, owner, agent_id, fencing_token, ttl_ms, detail)
    VALUES (p_arn, 'expired', cur.owner, cur.agent_id, cur.fencing_token, cur.ttl_ms, 'expired unreleased; found at acquire');
  END IF;
  UPDATE arbiter.locks l
     SET owner = p_owner, agent_id = p_agent, fencing_token = l.fencing_token + 1,
         acquired_at = now(), renewed_at = now(), expires_at = now() + make_interval(secs => p_ttl_ms::double precision / 1000)
   WHERE l.resource_arn = p_arn
   RETURNING l.fencing_token, l.expires_at INTO new_token, new_expiry;
  INSERT INTO arbiter.lock_events (resource_arn, event, owner, agent_id, fencing_token, ttl_ms)
  VALUES (p_arn, 'acquired', p_owner, p_agent, new_token, p_ttl_ms);
  IF cur.owner IS NOT NULL AND cur.expired THEN
    RETURN QUERY SELECT true, new_token, new_expiry, NULL::text, NULL::text, NULL::bigint, NULL::timestamptz,
                        cur.owner, cur.agent_id, cur.fencing_token, cur.expires_at;
  ELSE
    RETURN QUERY SELECT true, new_token, new_expiry, NULL::text, NULL::text, NULL::bigint, NULL::timestamptz,
                        NULL::text, NULL::text, NULL::bigint, NULL::timestamptz;
  END IF;
END;
$$;
ALTER FUNCTION arbiter.acquire_lock(text, text, text, integer) OWNER TO arbiter_migrator;
-- Runs with the caller's rights: only who may already write locks and lock_events may call it.
REVOKE EXECUTE ON FUNCTION arbiter.acquire_lock(text, text, text, integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION arbiter.acquire_lock(text, text, text, integer) TO arbiter_worker, arbiter_locks;
