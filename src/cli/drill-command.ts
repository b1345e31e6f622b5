import { WorkflowNotFoundError } from '@temporalio/common';
import { z } from 'zod';
import { loadRunbookDir } from '../activities/runbooks.js';
import { DEFAULT_SCOPE } from '../domain/alerts.js';
import { addNoteArgs, approveArgs, completeTaskArgs } from '../domain/commands.js';
import { parseDuration } from '../domain/duration.js';
import type { Severity } from '../domain/severity.js';
import {
  scenarioInfo,
  scenarioNames,
  scenarioNameSchema,
  type ScenarioInfo,
  type ScenarioName,
} from '../sandbox/scenarios.js';
import { incidentActions, IncidentDrill, IncidentRunbook } from '../workflows/api.js';
import { sendUpdate } from './actions.js';
import type { CliContext } from './context.js';
import { DEFAULT_RECEIVER_URL, receiverClient, receiverToken } from './drill-alert.js';
import { drillExitCodes, renderDrillReport } from './drill-report.js';
import { runDrill, type DrillIo, type DrillPlan } from './drill.js';
import { CliError, usageError } from './errors.js';
import { DEFAULT_SANDBOX_URL, SandboxControl } from './sandbox-control.js';
import { readIncidentStatus } from './status.js';
import type { Target } from './target.js';

// Wires `incidentctl drill` to the outside world: options, the sandbox control API, the receiver, Temporal.

export interface DrillCommandOptions {
  via?: string;
  approveAs?: string;
  completeTasksAs?: string;
  notify?: boolean;
  scope?: string;
  timeout?: string;
  /** --sandbox URL, or false for --no-sandbox. */
  sandbox?: string | boolean;
  allowNamespace?: string;
  receiver?: string;
  alertAfter?: string;
  json?: boolean;
}

const NAMESPACE = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;
const person = (flag: string) =>
  z.string().trim().min(1, `${flag} must name a person`).max(100, `${flag}: at most 100 characters`);

const optionsSchema = z.object({
  via: z
    .enum(['alertmanager', 'monitors'], { error: '--via is alertmanager or monitors' })
    .default('alertmanager'),
  approveAs: person('--approve-as').optional(),
  completeTasksAs: person('--complete-tasks-as').optional(),
  notify: z.boolean().default(false),
  scope: z
    .string()
    .regex(NAMESPACE, '--scope must be a Kubernetes namespace name (lower-case letters, digits, dashes)')
    .default(DEFAULT_SCOPE),
  timeout: z
    .string()
    .default('15m')
    .transform((text, c) => {
      const ms = parseDuration(text);
      if (ms === undefined || ms < 10_000 || ms > 24 * 3_600_000) {
        c.addIssue({
          code: 'custom',
          message: `--timeout "${text}" must be a duration from 10s to 24h, like 15m`,
        });
        return z.NEVER;
      }
      return ms;
    }),
  sandbox: z.union([z.string().min(1), z.boolean()]).optional(),
  allowNamespace: z.string().optional(),
  receiver: z.string().optional(),
  alertAfter: z
    .string()
    .optional()
    .transform((text, c) => {
      if (text === undefined) return undefined;
      const ms = parseDuration(text);
      if (ms === undefined || ms > 3_600_000) {
        c.addIssue({
          code: 'custom',
          message: `--alert-after "${text}" must be a duration up to 1h, like 90s`,
        });
        return z.NEVER;
      }
      return ms;
    }),
  json: z.boolean().default(false),
});

const SANDBOX_OFF = /^(off|false|0|no)$/i;

/** The runbook's default severity, for the alert's severity label; P1 (critical) when it cannot be read. */
async function severityOf(ctx: CliContext, runbookId: string | null): Promise<Severity> {
  if (!runbookId) return 'P1';
  try {
    const { runbooksDir, contactsFile } = ctx.paths;
    const { runbooks } = await loadRunbookDir(runbooksDir, contactsFile);
    return runbooks.find((r) => r.runbook.id === runbookId)?.runbook.severity.default ?? 'P1';
  } catch {
    return 'P1';
  }
}

function temporalIo(ctx: CliContext): DrillIo['temporal'] {
  const incident = (workflowId: string): Target => ({ kind: 'incident', workflowId, ref: workflowId });
  const describe = async (workflowId: string) => {
    const client = await ctx.client();
    try {
      const d = await client.workflow.getHandle(workflowId).describe();
      return { status: d.status.name, startTime: d.startTime };
    } catch (error) {
      if (error instanceof WorkflowNotFoundError) return undefined;
      throw error;
    }
  };
  return {
    execution: describe,
    status: (id) => readIncidentStatus(ctx, id),
    approve: (id, step, by, reason) =>
      sendUpdate(ctx, incident(id), incidentActions.approve, approveArgs, { step, by, reason }),
    completeTask: (id, task, by) =>
      sendUpdate(ctx, incident(id), incidentActions.completeTask, completeTaskArgs, { task, by }),
    note: (id, by, text) => sendUpdate(ctx, incident(id), incidentActions.addNote, addNoteArgs, { by, text }),
    async waitClosed(id, ms) {
      const until = Date.now() + ms;
      for (;;) {
        const run = await describe(id).catch(() => undefined);
        if (run && run.status !== 'RUNNING') return true;
        if (Date.now() >= until) return false;
        await new Promise((r) => setTimeout(r, 500));
      }
    },
    async openedSince(scope, since) {
      const client = await ctx.client();
      const found: { workflowId: string; runbook?: string; drill?: boolean }[] = [];
      const query = `WorkflowType = 'incidentWorkflow' AND StartTime >= '${since.toISOString()}'`;
      for await (const w of client.workflow.list({ query, pageSize: 100 })) {
        if (!w.workflowId.endsWith(`--${scope}`)) continue;
        const runbook = w.typedSearchAttributes.get(IncidentRunbook);
        const drill = w.typedSearchAttributes.get(IncidentDrill) === true;
        found.push({ workflowId: w.workflowId, ...(runbook ? { runbook } : {}), drill });
        if (found.length >= 100) break;
      }
      return found;
    },
  };
}

/** `incidentctl drill <scenario>`: runs the drill, prints the report, and fails unless the drill passed. */
export async function drillCommand(
  ctx: CliContext,
  scenarioArg: string,
  raw: DrillCommandOptions,
): Promise<void> {
  const parsedName = scenarioNameSchema.safeParse(scenarioArg);
  if (!parsedName.success) {
    throw usageError(
      `unknown scenario "${scenarioArg}" (scenarios: ${scenarioNames.filter((n) => n !== 'healthy').join(', ')})`,
    );
  }
  const name: ScenarioName = parsedName.data;
  if (name === 'healthy') {
    throw usageError(
      'healthy is not a drill: it clears every fault (POST /scenarios/healthy on the sandbox)',
    );
  }
  const parsed = optionsSchema.safeParse(raw);
  if (!parsed.success) throw usageError(parsed.error.issues.map((i) => i.message).join('; '));
  const o = parsed.data;
  const env = ctx.environment;

  const sandboxOn = o.sandbox !== false && !SANDBOX_OFF.test(env.SANDBOX ?? '');
  if (!sandboxOn && o.allowNamespace !== o.scope) {
    throw usageError(
      `no sandbox (${o.sandbox === false ? '--no-sandbox' : `SANDBOX=${env.SANDBOX}`}): the drill would act on the real namespace ${o.scope};` +
        ` it runs only with --allow-namespace ${o.scope}`,
    );
  }
  if (o.via === 'monitors' && !o.notify) {
    throw usageError(
      '--via monitors: the monitors cannot tell a drill from a fault, so the incident they open is not marked and its' +
        ' notifications reach the contacts; add --notify to run it that way (or use --via alertmanager)',
    );
  }

  let control: SandboxControl | undefined;
  let scenario: ScenarioInfo = scenarioInfo(name);
  if (sandboxOn) {
    const url = typeof o.sandbox === 'string' ? o.sandbox : env.SANDBOX_CONTROL_URL || DEFAULT_SANDBOX_URL;
    control = new SandboxControl(url);
    // The sandbox's own table says what it breaks and what repairs it.
    const offered = (await control.list()).scenarios.find((s) => s.name === name);
    if (offered) {
      const { active: _active, ...info } = offered;
      scenario = info;
    }
  }
  const receiver =
    o.via === 'alertmanager'
      ? receiverClient(o.receiver ?? env.RECEIVER_URL ?? DEFAULT_RECEIVER_URL, await receiverToken(env))
      : undefined;

  let faultApplied = false;
  const io: DrillIo = {
    ...(control
      ? {
          control: {
            baseUrl: control.baseUrl,
            list: () => (control as SandboxControl).list(),
            apply: async (n) => {
              await (control as SandboxControl).apply(n);
              faultApplied = true;
            },
            recover: (n) => (control as SandboxControl).recover(n),
          },
        }
      : {}),
    ...(receiver ? { receiver } : {}),
    temporal: temporalIo(ctx),
    now: () => new Date(),
    sleep: (ms) => new Promise((r) => setTimeout(r, ms)),
    progress: (line) => (o.json ? ctx.err(line) : ctx.out(line)),
  };
  const plan: DrillPlan = {
    scenario,
    via: o.via,
    scope: o.scope,
    sandbox: sandboxOn,
    notify: o.notify,
    ...(o.approveAs ? { approveAs: o.approveAs } : {}),
    ...(o.completeTasksAs ? { completeTasksAs: o.completeTasksAs } : {}),
    by: ctx.identity,
    severity: await severityOf(ctx, scenario.runbook),
    timeoutMs: o.timeout,
    alertAfterMs: o.alertAfter ?? scenario.alertAfterSeconds * 1000,
  };

  let report;
  try {
    report = await runDrill(plan, io);
  } catch (error) {
    if (faultApplied && control) {
      ctx.err(
        `the fault ${name} is still in force: curl -X POST ${control.baseUrl}/scenarios/healthy clears it`,
      );
    }
    throw error;
  }
  if (o.json) ctx.out(JSON.stringify(report, null, 2));
  else ctx.out(`\n${renderDrillReport(report)}`);
  if (!report.passed) {
    if (control && report.outcome !== 'passed') {
      ctx.err(
        `the platform may still be broken and the incident open: curl -X POST ${control.baseUrl}/scenarios/healthy` +
          (report.incidentId ? `; incidentctl show ${report.incidentId}` : ''),
      );
    }
    throw new CliError(
      drillExitCodes[report.outcome],
      `drill ${name} ${report.outcome}: ${report.reasons.join('; ')}`,
    );
  }
}
