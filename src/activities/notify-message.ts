import type { NotificationKind } from '../domain/activity-contract.js';
import type { Severity } from '../domain/severity.js';

/** One message as it goes out to every target; `recipients` are the people it is meant for. */
export interface OutgoingMessage {
  kind: NotificationKind | 'team-message';
  workflowId: string;
  title: string;
  severity?: Severity;
  text: string;
  roles: string[];
  waitingFor?: string;
  command?: string;
  /** The step an approval message is about (Approve and Reject buttons in Slack). */
  step?: string;
  /** The incident workflow in the Temporal UI. */
  link: string;
  /** A drill's message (the title already says DRILL). */
  drill?: boolean;
  /** One notification, however often it is retried (see Notification.idempotencyKey). */
  idempotencyKey?: string;
}

export function workflowLink(temporalUiUrl: string, namespace: string, workflowId: string): string {
  const base = temporalUiUrl.replace(/\/+$/, '');
  return `${base}/namespaces/${encodeURIComponent(namespace)}/workflows/${encodeURIComponent(workflowId)}`;
}

const truncate = (text: string, max: number) => (text.length > max ? `${text.slice(0, max - 1)}…` : text);

/** Slack mrkdwn treats &, < and > as control characters. */
const escapeMrkdwn = (text: string) =>
  text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

interface SlackText {
  type: 'plain_text' | 'mrkdwn';
  text: string;
}
export type SlackBlock =
  | { type: 'header'; text: SlackText }
  | { type: 'section'; text?: SlackText; fields?: SlackText[] }
  | {
      type: 'actions';
      elements: {
        type: 'button';
        text: SlackText;
        action_id: string;
        url?: string;
        value?: string;
        style?: 'primary' | 'danger';
      }[];
    }
  | { type: 'context'; elements: SlackText[] };

export interface SlackMessage {
  text: string;
  blocks: SlackBlock[];
}

const heading = (m: OutgoingMessage) => (m.severity ? `${m.severity} · ${m.title}` : m.title);

/** A Block Kit message: what happened, how bad, what the incident waits for, a link, the exact command. */
export function slackMessage(m: OutgoingMessage, recipients: string[]): SlackMessage {
  const mrkdwn = (text: string): SlackText => ({ type: 'mrkdwn', text });
  const fields = [
    ...(m.severity ? [mrkdwn(`*Severity*\n${m.severity}`)] : []),
    mrkdwn(`*Event*\n${m.kind}`),
    ...(m.waitingFor ? [mrkdwn(`*Waiting for*\n${escapeMrkdwn(truncate(m.waitingFor, 1_900))}`)] : []),
    mrkdwn(`*For*\n${escapeMrkdwn(truncate(recipients.join(', '), 1_900))}`),
  ];
  const blocks: SlackBlock[] = [
    { type: 'header', text: { type: 'plain_text', text: truncate(heading(m), 150) } },
    { type: 'section', text: mrkdwn(escapeMrkdwn(truncate(m.text, 2_900))) },
    { type: 'section', fields },
  ];
  if (m.command) {
    blocks.push({
      type: 'section',
      text: mrkdwn(`*Run:*\n\`\`\`${escapeMrkdwn(truncate(m.command, 2_800))}\`\`\``),
    });
  }
  // Answered at the receiver's POST /slack/interactions (src/starters/slack-interactions.ts).
  const decide =
    m.step && (m.kind === 'approval-needed' || m.kind === 'approval-reminder')
      ? (['approve', 'reject'] as const).map((decision) => ({
          type: 'button' as const,
          text: { type: 'plain_text' as const, text: decision === 'approve' ? 'Approve' : 'Reject' },
          action_id: `incident-${decision}`,
          value: JSON.stringify({ workflowId: m.workflowId, step: m.step }),
          style: decision === 'approve' ? ('primary' as const) : ('danger' as const),
        }))
      : [];
  blocks.push(
    {
      type: 'actions',
      elements: [
        ...decide,
        {
          type: 'button',
          text: { type: 'plain_text', text: 'Open in Temporal UI' },
          url: m.link,
          action_id: 'open-workflow',
        },
      ],
    },
    { type: 'context', elements: [mrkdwn(`Workflow <${m.link}|${escapeMrkdwn(m.workflowId)}>`)] },
  );
  return { text: truncate(`${heading(m)}: ${m.text}`, 3_000), blocks };
}

/** The body of a generic JSON webhook target. */
export function webhookPayload(m: OutgoingMessage, recipients: string[], sentAt: string) {
  return {
    kind: m.kind,
    workflowId: m.workflowId,
    title: m.title,
    severity: m.severity ?? null,
    text: m.text,
    waitingFor: m.waitingFor ?? null,
    command: m.command ?? null,
    link: m.link,
    roles: m.roles,
    recipients,
    sentAt,
    ...(m.drill ? { drill: true } : {}),
    ...(m.idempotencyKey ? { idempotencyKey: m.idempotencyKey } : {}),
  };
}

/** The prefix every drill notification's title carries. */
export const DRILL_PREFIX = '[DRILL] ';

/**
 * The log target's one structured line (the caller redacts it). `sent: false` marks a drill notification
 * that was only logged, not delivered to its recipients.
 */
export function logLine(
  m: OutgoingMessage,
  recipients: string[],
  at: string,
  extra: { sent?: false } = {},
): string {
  return JSON.stringify({
    level: 'info',
    event: 'notification',
    ...(m.drill ? { drill: true } : {}),
    ...extra,
    at,
    kind: m.kind,
    severity: m.severity,
    workflowId: m.workflowId,
    title: m.title,
    text: m.text,
    waitingFor: m.waitingFor,
    command: m.command,
    link: m.link,
    recipients,
  });
}
