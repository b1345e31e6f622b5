import { z } from 'zod';
import type {
  ActionInput,
  ActionResult,
  Notification,
  NotificationKind,
  NotifyResult,
} from '../domain/activity-contract.js';
import { peopleInRoles, type Contacts } from '../domain/contacts.js';
import { severitySchema } from '../domain/severity.js';
import { activityError, parseActivityArgs, redact } from './common.js';
import { RecentKeys } from './http.js';
import {
  deliver,
  describeTarget,
  planDeliveries,
  secretsOf,
  type DeliveryContext,
} from './notify-delivery.js';
import { DRILL_PREFIX, logLine, workflowLink, type OutgoingMessage } from './notify-message.js';

export interface NotifyDeps {
  /** The escalation contacts, or a loader called on every notification (so edits apply without restart). */
  contacts: Contacts | (() => Promise<Contacts>);
  /** Where Slack webhook URLs and webhook tokens are looked up, by the names the contacts give. */
  env: NodeJS.ProcessEnv;
  temporalUiUrl: string;
  namespace: string;
  fetch?: typeof fetch;
  /** Receives the log target's lines and one line per failed delivery; default: stdout. */
  logger?: (line: string) => void;
  /** Per HTTP attempt; default 5 s. */
  timeoutMs?: number;
  /** Attempts per delivery (default 3) and the first backoff, doubled each retry (default 250 ms). */
  retry?: { attempts?: number; backoffMs?: number };
}

/** `delivered`/`failed` count deliveries, one per distinct target; `failures` describes each failure. */
export interface NotifyOutcome extends NotifyResult {
  failures: string[];
}

const NOTIFICATION_KINDS = [
  'opened',
  'escalated',
  'approval-needed',
  'approval-reminder',
  'approval-withdrawn',
  'stuck',
  'resolved',
  'cancelled',
  'report-reminder',
  'report-overdue',
  'follow-up-overdue',
] as const satisfies readonly NotificationKind[];

const notificationSchema = z.object({
  kind: z.enum(NOTIFICATION_KINDS),
  workflowId: z.string().min(1),
  title: z.string().min(1),
  severity: severitySchema,
  roles: z.array(z.string()),
  text: z.string(),
  waitingFor: z.string().optional(),
  command: z.string().optional(),
  step: z.string().min(1).max(200).optional(),
  drill: z.object({ notify: z.boolean() }).optional(),
  idempotencyKey: z.string().min(1).max(300).optional(),
});

// Strict: an unknown key (a typo) is an error, not an argument silently left out.
const notifyTeamArgs = z.strictObject({
  roles: z.array(z.string().min(1)).min(1),
  message: z.string().min(1).max(2_000),
  severity: severitySchema.optional(),
});

/** Argument schema of the notifyTeam action: what it parses and what `runbook lint` checks. */
export const notifyActionArgs = { notifyTeam: notifyTeamArgs } as const;

/** Sends incident notifications to the people behind roles: Slack, JSON webhooks and the log. */
export function notifyActivities(deps: NotifyDeps) {
  const log = deps.logger ?? ((line: string) => process.stdout.write(`${line}\n`));
  const source = deps.contacts;
  const loadContacts = typeof source === 'function' ? source : async () => source;
  const sentTeamMessages = new RecentKeys<ActionResult>();
  // Deliveries done per notification key and target, so a retried notify sends only what failed before.
  const deliveredBefore = new RecentKeys<true>(10_000);

  const safeLog = (line: string, secrets: readonly string[]) => {
    try {
      log(redact(line, secrets));
    } catch {
      // A broken logger must not turn a delivery report into a failed incident.
    }
  };

  async function send(
    message: OutgoingMessage,
    contacts: Contacts,
    failures: string[],
  ): Promise<NotifyOutcome> {
    const secrets = secretsOf(contacts, deps.env);
    const clean = (text: string) => redact(text, secrets);
    const safe: OutgoingMessage = {
      ...message,
      title: clean(message.title),
      text: clean(message.text),
      ...(message.waitingFor !== undefined ? { waitingFor: clean(message.waitingFor) } : {}),
      ...(message.command !== undefined ? { command: clean(message.command) } : {}),
    };
    const ctx: DeliveryContext = {
      env: deps.env,
      fetch: deps.fetch ?? fetch,
      log,
      timeoutMs: deps.timeoutMs ?? 5_000,
      attempts: Math.max(1, deps.retry?.attempts ?? 3),
      backoffMs: deps.retry?.backoffMs ?? 250,
      secrets,
    };
    const deliveries = planDeliveries(contacts, peopleInRoles(contacts, message.roles));
    if (deliveries.length === 0 && failures.length === 0) failures.push('no recipients for the given roles');
    const doneKey = (d: (typeof deliveries)[number]) =>
      message.idempotencyKey ? `${message.idempotencyKey}|${describeTarget(d.target)}` : undefined;
    const outcomes = await Promise.all(
      deliveries.map(async (d) => {
        const key = doneKey(d);
        if (key && deliveredBefore.get(key)) return { ok: true } as const;
        const outcome = await deliver(ctx, d, safe);
        if (key && outcome.ok) deliveredBefore.set(key, true);
        return outcome;
      }),
    );
    let delivered = 0;
    outcomes.forEach((outcome, i) => {
      const d = deliveries[i];
      if (!d) return;
      if (outcome.ok) {
        delivered++;
        return;
      }
      failures.push(clean(`${describeTarget(d.target)} for ${d.recipients.join(', ')}: ${outcome.error}`));
    });
    for (const failure of failures) {
      safeLog(
        JSON.stringify({
          level: 'warn',
          event: 'notification-failed',
          kind: message.kind,
          workflowId: message.workflowId,
          error: failure,
        }),
        secrets,
      );
    }
    return { delivered, failed: failures.length, failures };
  }

  /**
   * A drill message whose drill was started without --notify: one log line with the people it would have
   * reached (`sent: false`), nothing delivered.
   */
  function logOnly(message: OutgoingMessage, contacts: Contacts): string[] {
    const people = peopleInRoles(contacts, message.roles);
    safeLog(
      logLine(message, people, new Date().toISOString(), { sent: false }),
      secretsOf(contacts, deps.env),
    );
    return people;
  }

  /** Resolves contacts and unknown roles; a problem here is a failed delivery, never an exception. */
  async function prepare(roles: string[]): Promise<{ contacts?: Contacts; failures: string[] }> {
    let contacts: Contacts;
    try {
      contacts = await loadContacts();
    } catch (error) {
      const reason = redact(error instanceof Error ? error.message : String(error));
      return { failures: [`cannot load the contacts: ${reason}`] };
    }
    const failures = roles.filter((r) => !contacts.roles[r]).map((r) => `role "${r}" is not in the contacts`);
    return { contacts, failures };
  }

  return {
    /** Delivers one incident notification; delivery problems are counted and described, never thrown. */
    async notify(n: Notification): Promise<NotifyOutcome> {
      const parsed = notificationSchema.safeParse(n);
      if (!parsed.success) {
        const problems = parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ');
        const failure = `invalid notification: ${problems}`;
        safeLog(JSON.stringify({ level: 'warn', event: 'notification-failed', error: failure }), []);
        return { delivered: 0, failed: 1, failures: [failure] };
      }
      const note = parsed.data;
      const { contacts, failures } = await prepare(note.roles);
      if (!contacts) {
        safeLog(JSON.stringify({ level: 'warn', event: 'notification-failed', error: failures[0] }), []);
        return { delivered: 0, failed: failures.length, failures };
      }
      const link = workflowLink(deps.temporalUiUrl, deps.namespace, note.workflowId);
      const { drill, ...fields } = note;
      if (!drill) return send({ ...fields, link }, contacts, failures);
      // A drill: marked in every message; sent to people only when the drill was started with --notify.
      const message: OutgoingMessage = {
        ...fields,
        title: `${DRILL_PREFIX}${fields.title}`,
        link,
        drill: true,
      };
      if (drill.notify) return send(message, contacts, failures);
      logOnly(message, contacts);
      return { delivered: 0, failed: failures.length, failures };
    },

    /** Runbook action: tells the people in `roles` something (e.g. to expect more escalations). */
    async notifyTeam(input: ActionInput): Promise<ActionResult> {
      const args = parseActivityArgs(notifyActionArgs.notifyTeam, input.args ?? {}, 'notifyTeam');
      const earlier = sentTeamMessages.get(input.idempotencyKey);
      if (earlier) return { changed: false, summary: `already sent: ${earlier.summary}` };
      const { contacts, failures } = await prepare(args.roles);
      if (!contacts) throw activityError('UnavailableError', `notifyTeam: ${failures.join('; ')}`);
      if (failures.length > 0) throw activityError('BadRequestError', `notifyTeam: ${failures.join('; ')}`);
      const message: OutgoingMessage = {
        kind: 'team-message',
        workflowId: input.incidentId,
        title: `${input.drill ? DRILL_PREFIX : ''}Incident ${input.incidentId}`,
        ...(args.severity ? { severity: args.severity } : {}),
        text: args.message,
        roles: args.roles,
        link: workflowLink(deps.temporalUiUrl, deps.namespace, input.incidentId),
        ...(input.drill ? { drill: true } : {}),
      };
      if (input.drill && !input.drill.notify) {
        const people = logOnly(message, contacts);
        const outcome: ActionResult = {
          changed: true,
          summary: `drill: logged, not sent; would have told ${args.roles.join(', ')} (${people.join(', ')})`,
        };
        sentTeamMessages.set(input.idempotencyKey, outcome);
        return outcome;
      }
      const result = await send(message, contacts, []);
      const people = peopleInRoles(contacts, args.roles);
      if (result.delivered === 0) {
        throw activityError(
          'UnavailableError',
          `notifyTeam: no message reached ${args.roles.join(', ')}: ${result.failures.join('; ')}`,
          secretsOf(contacts, deps.env),
        );
      }
      const failed = result.failed > 0 ? `; ${result.failed} failed: ${result.failures.join('; ')}` : '';
      const outcome: ActionResult = {
        changed: true,
        summary: `told ${args.roles.join(', ')} (${people.join(', ')}): ${result.delivered} delivered${failed}`,
      };
      sentTeamMessages.set(input.idempotencyKey, outcome);
      return outcome;
    },
  };
}
