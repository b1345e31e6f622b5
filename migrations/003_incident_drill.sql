-- Drill incidents (`incidentctl drill`): rehearsals on the sandbox or a staging cluster. Marked so that
-- reports and dashboards can leave them out (WHERE NOT drill) or study them on their own.

ALTER TABLE incidents ADD COLUMN drill boolean NOT NULL DEFAULT false;

CREATE INDEX incidents_drill_opened_at ON incidents (drill, opened_at);
