/**
 * The incident runs this receiver has delivered to, most recent last, at most `capacity` of them. It lets the
 * receiver tell from signalWithStart's answer alone (the run it signalled) whether an incident was already
 * open, without asking Temporal again.
 */
export class KnownRuns {
  private readonly runs = new Map<string, string>();

  constructor(private readonly capacity = 10_000) {}

  /** Records the delivery; true when this replica had already delivered to this very run. */
  delivered(workflowId: string, runId: string): boolean {
    const known = this.runs.get(workflowId) === runId;
    this.runs.delete(workflowId);
    this.runs.set(workflowId, runId);
    if (this.runs.size > this.capacity) {
      const oldest = this.runs.keys().next();
      if (!oldest.done) this.runs.delete(oldest.value);
    }
    return known;
  }
}
