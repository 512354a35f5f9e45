-- Up Migration
-- The inconsistency detector (docs/DETECTION.md): each finding is recorded once, with its evidence,
-- and can be acknowledged or resolved by a person.

ALTER TABLE arbiter.inconsistencies
  ADD COLUMN finding_id       uuid        NOT NULL DEFAULT gen_random_uuid(),
  -- Same kind + same evidence = same fingerprint: a finding is never raised twice.
  ADD COLUMN fingerprint      text,
  -- agents, versions, observation ids, request ids: what the finding rests on.
  ADD COLUMN evidence         jsonb       NOT NULL DEFAULT '{}',
  ADD COLUMN status           text        NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'acknowledged', 'resolved')),
  ADD COLUMN acknowledged_by  text,
  ADD COLUMN acknowledged_at  timestamptz,
  ADD COLUMN resolved_at      timestamptz,
  ADD COLUMN note             text;
CREATE INDEX inconsistencies_finding ON arbiter.inconsistencies (finding_id);
CREATE INDEX inconsistencies_open ON arbiter.inconsistencies (detected_at) WHERE status = 'open';

-- A partitioned table cannot hold a unique key without its partition key: fingerprints live here.
CREATE TABLE arbiter.inconsistency_fingerprints (
  fingerprint  text        PRIMARY KEY,
  finding_id   uuid        NOT NULL,
  at           timestamptz NOT NULL DEFAULT now()
);

-- Observations get an id (evidence names them) and the scope they were keyed by.
ALTER TABLE arbiter.observations
  ADD COLUMN observation_id         uuid  NOT NULL DEFAULT gen_random_uuid(),
  ADD COLUMN scope                  text,
  ADD COLUMN effective_request_ids  text[],
  ADD COLUMN recent_changes         jsonb NOT NULL DEFAULT '[]';

-- The latest observation of each resource (working state): what the detector compares the next one with.
CREATE TABLE arbiter.observed_state (
  resource_arn           text        PRIMARY KEY,
  observation_id         uuid        NOT NULL,
  version                bigint,
  effective_request_ids  text[],
  observed_at            timestamptz NOT NULL
);

