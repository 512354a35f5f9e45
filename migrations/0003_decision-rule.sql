-- Up Migration
-- Each decision records the rule of the pipeline that produced it (validate, coalesce, budget, ...),
-- so an analyst can tell a budget rejection decided at once from one that gave up waiting.
ALTER TABLE arbiter.decisions ADD COLUMN rule text;
ALTER TABLE arbiter.request_state ADD COLUMN rule text;
