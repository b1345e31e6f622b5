-- The incident ledger: one row per incident occurrence and an append-only list of its events.
-- An occurrence is the first run id of the incident workflow: the same incident id (runbook + scope)
-- opens again as a new occurrence after it was resolved.

CREATE TABLE incidents (
  incident_id text NOT NULL,
  occurrence text NOT NULL,
  runbook text,
  title text,
  scope text,
  team text,
  source text,
  -- The current severity; it is only ever raised, and 'P1' < 'P2' < 'P3' sorts the way LEAST() needs.
  severity text CHECK (severity IN ('P1', 'P2', 'P3')),
  initial_severity text CHECK (initial_severity IN ('P1', 'P2', 'P3')),
  opened_at timestamptz,
  acknowledged_at timestamptz,
  acknowledged_by text,
  resolved_at timestamptz,
  resolved_by text,
  resolution_summary text,
  escalations integer NOT NULL DEFAULT 0,
  last_escalated_to text,
  report_submitted_at timestamptz,
  report_submitted_by text,
  follow_ups_open integer NOT NULL DEFAULT 0,
  event_count integer NOT NULL DEFAULT 0,
  last_event_at timestamptz,
  time_to_acknowledge_ms bigint GENERATED ALWAYS AS (
    (EXTRACT(EPOCH FROM (acknowledged_at - opened_at)) * 1000)::bigint
  ) STORED,
  time_to_resolve_ms bigint GENERATED ALWAYS AS (
    (EXTRACT(EPOCH FROM (resolved_at - opened_at)) * 1000)::bigint
  ) STORED,
  status text GENERATED ALWAYS AS (
    CASE
      WHEN resolved_at IS NOT NULL THEN 'resolved'
      WHEN acknowledged_at IS NOT NULL THEN 'acknowledged'
      ELSE 'open'
    END
  ) STORED,
  PRIMARY KEY (incident_id, occurrence)
);

CREATE INDEX incidents_opened_at ON incidents (opened_at);
CREATE INDEX incidents_severity_opened_at ON incidents (severity, opened_at);

CREATE TABLE incident_events (
  event_id text PRIMARY KEY,
  incident_id text NOT NULL,
  occurrence text NOT NULL,
  type text NOT NULL,
  at timestamptz NOT NULL,
  by text,
  data jsonb NOT NULL DEFAULT '{}'::jsonb,
  recorded_at timestamptz NOT NULL DEFAULT now(),
  FOREIGN KEY (incident_id, occurrence) REFERENCES incidents (incident_id, occurrence)
);

CREATE INDEX incident_events_incident ON incident_events (incident_id, occurrence, at);

-- Events are history: nothing rewrites or removes them.
CREATE FUNCTION incident_events_append_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'incident_events is append-only (% refused)', TG_OP
    USING ERRCODE = 'insufficient_privilege';
END;
$$;

CREATE TRIGGER incident_events_append_only
  BEFORE UPDATE OR DELETE ON incident_events
  FOR EACH ROW EXECUTE FUNCTION incident_events_append_only();
