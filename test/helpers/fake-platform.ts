import { ApplicationFailure } from '@temporalio/activity';
import type {
  ActionInput,
  ActionResult,
  LedgerEvent,
  Notification,
  NotifyResult,
  ProbeInput,
} from '../../src/domain/activity-contract.js';
import type { Finding, FindingStatus } from '../../src/domain/findings.js';
import type { Alert } from '../../src/domain/alerts.js';
import { runbookActivities } from '../../src/activities/runbooks.js';
import { contactsFile, runbooksDir } from './paths.js';

const PROBES = [
  'k8sPods',
  'k8sPodUsage',
  'k8sLogs',
  'k8sRolloutStatus',
  'k8sHpa',
  'k8sSecretKey',
  'postgresPing',
  'postgresConnections',
  'postgresLongQueries',
  'escalationRate',
  'kafkaCluster',
  'kafkaConsumerLag',
  'httpHealth',
  'channelMetrics',
  'webhookCheck',
  'statusPage',
  'gmailWatch',
];
const ACTIONS = [
  'rolloutRestart',
  'restartStatefulSetPod',
  'scaleDeployment',
  'raiseHpaMax',
  'killIdleConnections',
  'renewGmailWatch',
  'notifyTeam',
];

type ActionBehaviour = (input: ActionInput, attempt: number) => ActionResult | Promise<ActionResult>;

/**
 * Activity fakes with the real names and signatures, for workflow-logic tests only: probe results come
 * from a table the test controls, actions run test-given behaviour, and every call is recorded.
 */
export class FakePlatform {
  /** Status of each probe id; probes not listed report ok. */
  status: Record<string, FindingStatus> = {};
  metrics: Record<string, Finding['metrics']> = {};
  probeCalls: ProbeInput[] = [];
  actionCalls: { name: string; input: ActionInput; attempt: number }[] = [];
  notifications: Notification[] = [];
  monitorAlerts: Alert[] = [];
  ledger: LedgerEvent[] = [];
  /**
   * Runs before a ledger write is kept: may wait (a slow database) or throw (a failed write, not kept).
   * None by default: every write succeeds at once.
   */
  onLedgerWrite?: (event: LedgerEvent) => void | Promise<void>;
  /** The contacts file the incidents load (the project's own unless a test writes another). */
  contactsFile = contactsFile;
  private behaviour: Record<string, ActionBehaviour> = {};
  private applied = new Set<string>();

  /** What an action does; by default it succeeds and changes nothing in the probe table. */
  onAction(name: string, behaviour: ActionBehaviour): this {
    this.behaviour[name] = behaviour;
    return this;
  }

  /** An action that heals probes when it runs (once per idempotency key, like the real ones). */
  heals(name: string, probes: Record<string, FindingStatus>): this {
    return this.onAction(name, () => {
      Object.assign(this.status, probes);
      return { changed: true, summary: `${name} done` };
    });
  }

  actionsNamed(name: string) {
    return this.actionCalls.filter((c) => c.name === name);
  }

  /** Distinct idempotency keys an action ran with: how many times it really acted. */
  timesActed(name: string): number {
    return new Set(this.actionsNamed(name).map((c) => c.input.idempotencyKey)).size;
  }

  sent(kind: Notification['kind']) {
    return this.notifications.filter((n) => n.kind === kind);
  }

  activities(): Record<string, (...args: never[]) => Promise<unknown>> {
    const acts: Record<string, (input: never) => Promise<unknown>> = {};
    for (const name of PROBES) {
      acts[name] = async (input: ProbeInput): Promise<Finding> => {
        this.probeCalls.push(input);
        const status = this.status[input.probeId] ?? 'ok';
        return {
          probe: input.probeId,
          status,
          summary: `${input.probeId} is ${status}`,
          metrics: this.metrics[input.probeId] ?? {},
          evidence: [],
          at: new Date().toISOString(),
        };
      };
    }
    for (const name of ACTIONS) {
      acts[name] = async (input: ActionInput): Promise<ActionResult> => {
        const attempt =
          this.actionCalls.filter((c) => c.name === name && c.input.idempotencyKey === input.idempotencyKey)
            .length + 1;
        this.actionCalls.push({ name, input, attempt });
        const behaviour = this.behaviour[name];
        if (this.applied.has(input.idempotencyKey)) return { changed: false, summary: 'already done' };
        const result = behaviour
          ? await behaviour(input, attempt)
          : { changed: true, summary: `${name} done` };
        this.applied.add(input.idempotencyKey);
        return result;
      };
    }
    const { loadRunbook } = runbookActivities({ runbooksDir, contactsFile: this.contactsFile });
    return {
      ...acts,
      loadRunbook,
      notify: async (n: Notification): Promise<NotifyResult> => {
        this.notifications.push(n);
        return { delivered: n.roles.length, failed: 0 };
      },
      deliverMonitorAlerts: async ({ alerts }: { alerts: Alert[] }) => {
        this.monitorAlerts.push(...alerts);
        return [];
      },
      recordIncidentEvent: async (e: LedgerEvent) => {
        await this.onLedgerWrite?.(e);
        if (!this.ledger.some((x) => x.eventId === e.eventId)) this.ledger.push(e);
      },
    };
  }
}

export function retryableError(message: string): Error {
  return ApplicationFailure.retryable(message, 'ServerError');
}

export function forbiddenError(message: string): Error {
  // Retryable by itself: only the step's retry policy (nonRetryableErrorTypes) stops the retries.
  return ApplicationFailure.retryable(message, 'ForbiddenError');
}
