/**
 * One open incident per (runbook, scope): the workflow id is derived from both, so a repeated alert
 * finds the same workflow. Characters outside [a-z0-9-] are replaced so the id is safe in URLs and shells.
 */
export function incidentWorkflowId(runbookId: string, scope: string): string {
  const safe = (s: string) => s.toLowerCase().replace(/[^a-z0-9-]+/g, '-');
  return `incident-${safe(runbookId)}--${safe(scope)}`;
}

/** The post-incident workflow of one incident run; the same key may open again later, so the id carries when. */
export function postIncidentWorkflowId(incidentId: string, openedAt: string): string {
  return `post-${incidentId}--${openedAt.replace(/[-:]|\.\d+/g, '')}`;
}
