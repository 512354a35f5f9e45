-- A resource's duplicates are found by its ARN: resource_timeline, the requests and decisions views
-- and every `arbiter audit ... --arn` report ask for one ARN (equality), with the time range a
-- filter on that resource's rows. The btree on (resource_arn, received_at) stored each duplicate's
-- ~90-byte ARN at a random place in the tree: ~2.5 µs of PostgreSQL CPU per duplicate, a sixth of
-- what a storm's duplicate cost it. A hash index stores a 4-byte hash per entry: ~0.5 µs (issue 12,
-- sixth pass, docs/BENCHMARKS.md). Building it locks out writes to arbiter.duplicates meanwhile:
-- on the order of a second per million rows on the benchmark machine.
DROP INDEX arbiter.duplicates_resource_time;
CREATE INDEX duplicates_resource ON arbiter.duplicates USING hash (resource_arn);
