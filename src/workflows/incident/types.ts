import type { LedgerEvent } from '../../domain/activity-contract.js';
import type { IncidentTrigger } from '../../domain/commands.js';
import type { IncidentSnapshot, IncidentState } from '../../domain/incident.js';

export interface IncidentWorkflowInput {
  trigger: IncidentTrigger;
  /** History length at which the incident continues as new, keeping its state; default 8,000 events. */
  historyLimit?: number;
  /**
   * The ledger occurrence this run belongs to. Absent: the first run id of the workflow. Set when a firing
   * alert after resolution opens the next occurrence in the same workflow id, and carried over continue-as-new.
   */
  occurrence?: string;
  /** Set only by continue-as-new: everything the incident knew so far. */
  carried?: {
    state: IncidentState;
    snapshot: IncidentSnapshot;
    ledgerSeq: number;
    ackEscalations: number;
    stuckEscalated: boolean;
    /** Ledger events the previous run could not write before it continued as new. */
    unwrittenLedgerEvents?: LedgerEvent[];
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
  /** Set when a person cancelled the incident (`cancel`): it ended without being resolved. */
  cancelled?: { by: string; reason: string };
  /** Ledger events still unwritten when the run ended (the ledger database was down); also in the timeline. */
  unwrittenLedgerEvents?: LedgerEvent[];
}
