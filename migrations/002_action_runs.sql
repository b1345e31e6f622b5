-- Actions that must not repeat (e.g. terminating idle connections) remember their idempotency key here,
-- in our own database, so a retry after a worker restart finds the earlier result instead of acting again.

CREATE TABLE action_runs (
  idempotency_key text PRIMARY KEY,
  action text NOT NULL,
  incident_id text,
  step_id text,
  started_at timestamptz NOT NULL DEFAULT now(),
  finished_at timestamptz,
  changed boolean,
  summary text
);
