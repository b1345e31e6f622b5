import type { IncidentTrigger } from '../../domain/commands.js';
import type { IncidentSnapshot, IncidentState } from '../../domain/incident.js';

export interface IncidentWorkflowInput {
  trigger: IncidentTrigger;
  /** History length at which the incident continues as new, keeping its state; default 8,000 events. */
  historyLimit?: number;
  /** Set only by continue-as-new: everything the incident knew so far. */
  carried?: {
    state: IncidentState;
    snapshot: IncidentSnapshot;
    ledgerSeq: number;
    ackEscalations: number;
    stuckEscalated: boolean;
  };
}

export interface IncidentOutcome {
  incidentId: string;
  severity: IncidentState['severity'];
  resolvedBy: string;
  resolvedAt: string;
  timeToAcknowledgeMs?: number;
  timeToResolveMs: number;
  postIncidentWorkflowId?: string;
}
