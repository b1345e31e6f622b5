import { z } from 'zod';

// The sandbox's fault scenarios: each breaks the platform the way one procedure of the seed runbook describes,
// through the interfaces production uses, and is repaired only by what that procedure does. `GET /scenarios`
// serves this table; `incidentctl drill` reads it to know what to expect.

export const scenarioNames = [
  'api-down',
  'postgres-down',
  'kafka-down',
  'whatsapp-down',
  'twilio-outage',
  'gmail-watch-expired',
  'agent-latency',
  'openai-degraded',
  'escalation-spike',
  'db-connections-exhausted',
  'healthy',
] as const;
export const scenarioNameSchema = z.enum(scenarioNames);
export type ScenarioName = z.infer<typeof scenarioNameSchema>;

export const scenarioInfoSchema = z.object({
  name: scenarioNameSchema,
  /** The seed runbook's section; null for `healthy`. */
  procedure: z.number().int().min(1).max(6).nullable(),
  /** The runbook that should answer it; null for `healthy`. */
  runbook: z.string().nullable(),
  /** The alert Prometheus would raise for it (what `incidentctl drill --via alertmanager` sends). */
  alertname: z.string().nullable(),
  breaks: z.string(),
  repairedBy: z.string(),
  /** Runbook steps that repair it; empty when only people and upstream recovery can. */
  steps: z.array(z.string()),
  /** Manual tasks a person must finish before the platform recovers (vendor incidents, reviews). */
  tasks: z.array(z.string()),
  /** True when the sandbox recovers it only when told (`POST /scenarios/<name>/recover` or `healthy`). */
  recoversWhenTold: z.boolean(),
  /**
   * How long after the fault the Prometheus rule fires (its `for:` plus an evaluation): a drill sends the
   * alert no sooner, since the runbook acts on what that time makes true.
   */
  alertAfterSeconds: z.number().int().min(0).default(0),
});
export type ScenarioInfo = z.infer<typeof scenarioInfoSchema>;

type Entry = Omit<z.input<typeof scenarioInfoSchema>, 'name'>;

const entries: Record<ScenarioName, Entry> = {
  'api-down': {
    procedure: 1,
    runbook: 'all-channels-down',
    alertname: 'FTEAllChannelsDown',
    breaks: 'the fte-api pods crash-loop; its health check answers 503',
    repairedBy: 'a rollout restart of deployment fte-api (new pods)',
    steps: ['restart-api'],
    tasks: [],
    recoversWhenTold: false,
  },
  'postgres-down': {
    procedure: 1,
    runbook: 'all-channels-down',
    alertname: 'FTEAllChannelsDown',
    breaks: 'pod postgres-0 crash-loops and the platform database refuses connections',
    repairedBy: 'restarting pod postgres-0 (the StatefulSet recreates it)',
    steps: ['restart-postgres'],
    tasks: [],
    recoversWhenTold: false,
  },
  'kafka-down': {
    procedure: 1,
    runbook: 'all-channels-down',
    alertname: 'FTEAllChannelsDown',
    breaks: 'pod kafka-0 crash-loops and the broker refuses connections',
    repairedBy: 'restarting pod kafka-0 (consumers reconnect by themselves)',
    steps: ['restart-kafka'],
    tasks: [],
    recoversWhenTold: false,
  },
  'whatsapp-down': {
    procedure: 2,
    runbook: 'whatsapp-channel-down',
    alertname: 'FTEWhatsAppChannelDown',
    breaks: 'the WhatsApp webhook fails, the channel error rate is high, the processor pods are stuck',
    repairedBy: 'a rollout restart of deployment fte-message-processor',
    steps: ['restart-processor'],
    tasks: [],
    recoversWhenTold: false,
  },
  'twilio-outage': {
    procedure: 2,
    runbook: 'whatsapp-channel-down',
    alertname: 'FTEWhatsAppChannelDown',
    breaks: "Twilio's status page says major outage and the WhatsApp webhook fails",
    repairedBy:
      'nothing automatic: the channel team follows the Twilio incident; resolves when Twilio recovers',
    steps: [],
    tasks: ['twilio-outage'],
    recoversWhenTold: true,
  },
  'gmail-watch-expired': {
    procedure: 3,
    runbook: 'gmail-channel-down',
    alertname: 'FTEGmailChannelDown',
    breaks: 'the Gmail watch has expired; the email channel receives nothing',
    repairedBy: 'renewing the Gmail watch (7 more days)',
    steps: ['renew-watch'],
    tasks: [],
    recoversWhenTold: false,
  },
  'agent-latency': {
    procedure: 4,
    runbook: 'high-agent-latency',
    alertname: 'FTEAgentLatencyHigh',
    breaks: 'consumer group fte-message-processor lags on fte-messages and the p95 latency is over 10 s',
    repairedBy: 'scaling fte-message-processor to 5 replicas, whose consumers then drain the lag',
    steps: ['scale-workers'],
    tasks: [],
    recoversWhenTold: false,
  },
  'openai-degraded': {
    procedure: 4,
    runbook: 'high-agent-latency',
    alertname: 'FTEAgentLatencyHigh',
    breaks: "OpenAI's status page says degraded and the agent's p95 latency is over 10 s",
    repairedBy: 'nothing automatic: the AI/ML team waits for OpenAI; resolves when the vendor recovers',
    steps: [],
    tasks: ['openai-slow'],
    recoversWhenTold: true,
  },
  'escalation-spike': {
    procedure: 5,
    runbook: 'high-escalation-rate',
    alertname: 'FTEEscalationRateHigh',
    breaks: 'over 30 % of conversations escalate for more than 10 minutes, one reason dominant',
    repairedBy: 'telling the human team, and the AI/ML review (the rate falls once a prompt fix is in)',
    steps: ['inform-human-team'],
    tasks: ['review-reasons'],
    recoversWhenTold: true,
  },
  'db-connections-exhausted': {
    procedure: 6,
    runbook: 'database-connection-failures',
    alertname: 'FTEDatabaseConnectionFailures',
    breaks: 'idle connections fill the platform database up to its limit; fte-api answers 500',
    repairedBy: 'terminating the idle connections',
    steps: ['kill-idle-connections'],
    tasks: [],
    recoversWhenTold: false,
    // The runbook kills connections idle for over a minute, so they count as leaked only after that.
    alertAfterSeconds: 75,
  },
  healthy: {
    procedure: null,
    runbook: null,
    alertname: null,
    breaks: 'nothing: clears every fault',
    repairedBy: '-',
    steps: [],
    tasks: [],
    recoversWhenTold: false,
  },
};

export function scenarioInfo(name: ScenarioName): ScenarioInfo {
  return scenarioInfoSchema.parse({ name, ...entries[name] });
}

export const scenarioCatalog: ScenarioInfo[] = scenarioNames.map(scenarioInfo);
