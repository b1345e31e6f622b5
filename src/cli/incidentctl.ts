import { Console } from 'node:console';
import { Command, CommanderError, Option } from 'commander';
import { DEFAULT_SCOPE } from '../domain/alerts.js';
import {
  acknowledgeArgs,
  addFollowUpArgs,
  addNoteArgs,
  approveArgs,
  completeFollowUpArgs,
  completeTaskArgs,
  escalateArgs,
  cancelArgs,
  markRunbookUpdatedArgs,
  rejectArgs,
  resolveArgs,
  submitReportArgs,
} from '../domain/commands.js';
import { incidentActions, postIncidentActions } from '../workflows/api.js';
import { sendUpdate } from './actions.js';
import { CliContext, globalOptionsSchema, type CliDeps } from './context.js';
import { declareIncident } from './declare.js';
import { drillCommand, type DrillCommandOptions } from './drill-command.js';
import { classifyError, ExitCode, refused, usageError } from './errors.js';
import { listCommand, showCommand, type ListCommandOptions, type ShowCommandOptions } from './read.js';
import { initKeys } from './keys.js';
import { lintRunbooks } from './runbook-lint.js';
import { readIncidentStatus } from './status.js';
import { applySchedulesCommand, type ApplyCommandOptions } from './schedules.js';
import { resolveIncident, resolvePostIncident } from './target.js';

export type { CliDeps } from './context.js';

type ContextOf = (cmd: Command) => CliContext;

function incidentCommands(program: Command, context: ContextOf): void {
  const act = (cmd: Command, ref: string) => ({ ctx: context(cmd), target: resolveIncident(ref) });
  const report = (ctx: CliContext, workflowId: string, verdict: string) =>
    ctx.out(`${workflowId}: ${verdict}`);

  program
    .command('declare')
    .description('open an incident by hand (or join the open one of that runbook and scope)')
    .argument('<runbook>', 'runbook id, e.g. all-channels-down')
    .option('--scope <namespace>', 'Kubernetes namespace the incident is about', DEFAULT_SCOPE)
    .addOption(
      new Option('--severity <severity>', 'severity (default: the runbook’s)').choices(['P1', 'P2', 'P3']),
    )
    .option('--title <title>', 'title (default: the runbook’s)')
    .action(
      async (runbook: string, o: { scope: string; severity?: string; title?: string }, cmd: Command) => {
        const ctx = context(cmd);
        const d = await declareIncident(ctx, { runbook, ...o });
        ctx.out(
          d.opened
            ? `declared ${d.workflowId} (runbook ${d.runbook.id}, ${o.severity ?? d.runbook.severity.default}); follow it with: incidentctl show ${d.workflowId}`
            : `${d.workflowId} was already open; your declaration joined it: incidentctl show ${d.workflowId}`,
        );
      },
    );

  program
    .command('ack')
    .description('acknowledge an incident (stops the acknowledgement escalations)')
    .argument('<incident>', 'incident id or <runbook>[/<scope>]')
    .action(async (ref: string, _o: unknown, cmd: Command) => {
      const { ctx, target } = act(cmd, ref);
      const verdict = await sendUpdate(ctx, target, incidentActions.acknowledge, acknowledgeArgs, {
        by: ctx.identity,
      });
      report(ctx, target.workflowId, verdict);
    });

  program
    .command('approve')
    .description('approve a step that waits for approval; it runs at once')
    .argument('<incident>', 'incident id or <runbook>[/<scope>]')
    .argument('<step>', 'step id (see incidentctl show)')
    .option('--reason <text>', 'why (kept in the timeline)')
    .action(async (ref: string, step: string, o: { reason?: string }, cmd: Command) => {
      const { ctx, target } = act(cmd, ref);
      const verdict = await sendUpdate(ctx, target, incidentActions.approve, approveArgs, {
        step,
        by: ctx.identity,
        ...(o.reason !== undefined ? { reason: o.reason } : {}),
      });
      report(ctx, target.workflowId, verdict);
    });

  program
    .command('reject')
    .description('reject a step that waits for approval; it will not run')
    .argument('<incident>', 'incident id or <runbook>[/<scope>]')
    .argument('<step>', 'step id')
    .requiredOption('--reason <text>', 'why not')
    .action(async (ref: string, step: string, o: { reason: string }, cmd: Command) => {
      const { ctx, target } = act(cmd, ref);
      const verdict = await sendUpdate(ctx, target, incidentActions.reject, rejectArgs, {
        step,
        by: ctx.identity,
        reason: o.reason,
      });
      report(ctx, target.workflowId, verdict);
    });

  program
    .command('resolve')
    .description('resolve an incident by hand (P1/P2 then start the post-incident report)')
    .argument('<incident>', 'incident id or <runbook>[/<scope>]')
    .option('--summary <text>', 'what fixed it')
    .option(
      '--new-failure-mode',
      'the runbook lacks this failure mode: the post-incident work requires a runbook update',
    )
    .action(async (ref: string, o: { summary?: string; newFailureMode?: boolean }, cmd: Command) => {
      const { ctx, target } = act(cmd, ref);
      const verdict = await sendUpdate(ctx, target, incidentActions.resolve, resolveArgs, {
        by: ctx.identity,
        ...(o.summary !== undefined ? { summary: o.summary } : {}),
        ...(o.newFailureMode ? { newFailureMode: true } : {}),
      });
      report(ctx, target.workflowId, verdict);
    });

  program
    .command('escalate')
    .description('escalate to the next level of the runbook’s escalation chain')
    .argument('<incident>', 'incident id or <runbook>[/<scope>]')
    .requiredOption('--reason <text>', 'why')
    .action(async (ref: string, o: { reason: string }, cmd: Command) => {
      const { ctx, target } = act(cmd, ref);
      const verdict = await sendUpdate(ctx, target, incidentActions.escalate, escalateArgs, {
        by: ctx.identity,
        reason: o.reason,
      });
      report(ctx, target.workflowId, verdict);
    });

  program
    .command('cancel')
    .description(
      'cancel an incident that should not exist (wrong cluster, a test): it ends without resolving',
    )
    .argument('<incident>', 'incident id or <runbook>[/<scope>]')
    .requiredOption('--reason <text>', 'why it is cancelled (kept in the timeline and the ledger)')
    .action(async (ref: string, o: { reason: string }, cmd: Command) => {
      const { ctx, target } = act(cmd, ref);
      const verdict = await sendUpdate(ctx, target, incidentActions.cancel, cancelArgs, {
        by: ctx.identity,
        reason: o.reason,
      });
      report(ctx, target.workflowId, verdict);
    });

  program
    .command('note')
    .description('add a note to the timeline')
    .argument('<incident>', 'incident id or <runbook>[/<scope>]')
    .argument('<text...>', 'the note (several words are joined with spaces)')
    .action(async (ref: string, words: string[], _o: unknown, cmd: Command) => {
      const { ctx, target } = act(cmd, ref);
      const verdict = await sendUpdate(ctx, target, incidentActions.addNote, addNoteArgs, {
        by: ctx.identity,
        text: words.join(' '),
      });
      report(ctx, target.workflowId, verdict);
    });

  program
    .command('task')
    .description('manual tasks of an incident')
    .command('done')
    .description('mark a manual task done')
    .argument('<incident>', 'incident id or <runbook>[/<scope>]')
    .argument('<task>', 'task id (see incidentctl show)')
    .action(async (ref: string, task: string, _o: unknown, cmd: Command) => {
      const { ctx, target } = act(cmd, ref);
      const verdict = await sendUpdate(ctx, target, incidentActions.completeTask, completeTaskArgs, {
        task,
        by: ctx.identity,
      });
      report(ctx, target.workflowId, verdict);
    });
}

/** The person acting, or undefined where the command does not require one. */
function knownIdentity(ctx: CliContext): string | undefined {
  try {
    return ctx.identity;
  } catch {
    return undefined;
  }
}

function postIncidentCommands(program: Command, context: ContextOf): void {
  const post = async (cmd: Command, ref: string) => {
    const ctx = context(cmd);
    const target = await resolvePostIncident(ref, (id) => readIncidentStatus(ctx, id));
    return { ctx, target };
  };
  const postRef = [
    '<report>',
    'post-incident id, or the incident (id or <runbook>[/<scope>]) it belongs to',
  ] as const;

  const reportCmd = program
    .command('report')
    .description('the post-incident report of a resolved P1/P2 incident');
  reportCmd
    .command('submit')
    .description('submit the report (root cause, optional link to the write-up)')
    .argument(...postRef)
    .requiredOption('--root-cause <text>', 'the root cause')
    .option('--link <url>', 'link to the full write-up')
    .option(
      '--no-follow-ups',
      'say that no follow-up is needed (without it the work stays open until a follow-up is added and done)',
    )
    .action(
      async (ref: string, o: { rootCause: string; link?: string; followUps: boolean }, cmd: Command) => {
        const { ctx, target } = await post(cmd, ref);
        const verdict = await sendUpdate(ctx, target, postIncidentActions.submitReport, submitReportArgs, {
          by: ctx.identity,
          rootCause: o.rootCause,
          ...(o.link !== undefined ? { link: o.link } : {}),
          ...(o.followUps === false ? { noFollowUps: true } : {}),
        });
        ctx.out(`${target.workflowId}: ${verdict}`);
      },
    );
  reportCmd
    .command('runbook-updated')
    .description('record that the runbook was updated for a new failure mode')
    .argument(...postRef)
    .requiredOption('--ref <ref>', 'where: commit, pull request or document')
    .action(async (ref: string, o: { ref: string }, cmd: Command) => {
      const { ctx, target } = await post(cmd, ref);
      const verdict = await sendUpdate(
        ctx,
        target,
        postIncidentActions.markRunbookUpdated,
        markRunbookUpdatedArgs,
        {
          by: ctx.identity,
          ref: o.ref,
        },
      );
      ctx.out(`${target.workflowId}: ${verdict}`);
    });

  const followup = program.command('followup').description('follow-up tickets of a post-incident report');
  followup
    .command('add')
    .description('add a follow-up; prints its id (FU-n)')
    .argument(...postRef)
    .requiredOption('--title <text>', 'what must be done')
    .requiredOption('--owner <name>', 'who does it')
    .option('--due <iso>', 'deadline, ISO 8601 with offset, e.g. 2026-12-01T17:00:00Z')
    .action(async (ref: string, o: { title: string; owner: string; due?: string }, cmd: Command) => {
      const { ctx, target } = await post(cmd, ref);
      // Who added it, when known (for the timeline and the ledger); the owner is who does it.
      const by = knownIdentity(ctx);
      const id = await sendUpdate(ctx, target, postIncidentActions.addFollowUp, addFollowUpArgs, {
        title: o.title,
        owner: o.owner,
        ...(o.due !== undefined ? { dueAt: o.due } : {}),
        ...(by !== undefined ? { by } : {}),
      });
      ctx.out(`${target.workflowId}: follow-up ${id} added`);
    });
  followup
    .command('done')
    .description('mark a follow-up done')
    .argument(...postRef)
    .argument('<follow-up>', 'follow-up id, e.g. FU-1')
    .action(async (ref: string, id: string, _o: unknown, cmd: Command) => {
      const { ctx, target } = await post(cmd, ref);
      const verdict = await sendUpdate(
        ctx,
        target,
        postIncidentActions.completeFollowUp,
        completeFollowUpArgs,
        {
          id,
          by: ctx.identity,
        },
      );
      ctx.out(`${target.workflowId}: ${verdict}`);
    });
}

function readCommands(program: Command, context: ContextOf): void {
  program
    .command('list')
    .description('open incidents (or --reports: post-incident reports), from the search attributes')
    .option(
      '--status <status>',
      'Investigating, AwaitingApproval, Remediating, Verifying, Monitoring, Escalated, Resolved, Cancelled',
    )
    .option('--severity <severity>', 'P1, P2 or P3')
    .option('--runbook <id>', 'runbook id')
    .option('--open', 'only open ones (the default)')
    .option('--all', 'open and closed')
    .option('--reports', 'post-incident reports instead of incidents')
    .option('--overdue', 'only reports past their deadline (implies --reports)')
    .option('--limit <n>', 'at most this many rows', '100')
    .option('--json', 'machine-readable output')
    .action(async (o: ListCommandOptions, cmd: Command) => listCommand(context(cmd), o));

  program
    .command('show')
    .description('an incident’s state: what it waits for, the commands to act, findings, steps, timeline')
    .argument('<incident>', 'incident id, <runbook>[/<scope>], or a post-incident id (post-…)')
    .option('--timeline <n>', 'last n timeline entries (0: all)', '30')
    .option('--json', 'machine-readable output (the whole status query)')
    .action(async (ref: string, o: ShowCommandOptions, cmd: Command) => showCommand(context(cmd), ref, o));
}

function drillCommands(program: Command, context: ContextOf): void {
  program
    .command('drill')
    .description(
      'rehearse a procedure: break the sandbox, let the product detect and handle it, follow it live, report',
    )
    .argument('<scenario>', 'a sandbox scenario, e.g. api-down (see docs/drills.md)')
    .addOption(
      new Option('--via <source>', 'how the incident is detected')
        .choices(['alertmanager', 'monitors'])
        .default('alertmanager'),
    )
    .option(
      '--approve-as <person>',
      'approve the scenario’s remedy steps as this person (else a person must)',
    )
    .option(
      '--complete-tasks-as <person>',
      'complete the scenario’s manual tasks as this person (else a person must)',
    )
    .option(
      '--notify',
      'let the drill’s notifications (marked DRILL) reach the contacts; otherwise only logged',
    )
    .option('--scope <namespace>', 'the namespace the drill targets', DEFAULT_SCOPE)
    .option('--timeout <duration>', 'give up after this long, e.g. 15m', '15m')
    .option('--sandbox <url>', 'sandbox control API (default: $SANDBOX_CONTROL_URL or http://127.0.0.1:8090)')
    .option('--no-sandbox', 'no sandbox (also SANDBOX=off): apply no fault, drill a broken staging namespace')
    .option(
      '--allow-namespace <namespace>',
      'without a sandbox: the namespace the drill may act on (= --scope)',
    )
    .option(
      '--receiver <url>',
      'Alertmanager webhook of the receiver (default: $RECEIVER_URL or http://127.0.0.1:8088/webhooks/alertmanager)',
    )
    .option(
      '--alert-after <duration>',
      'with --via alertmanager: wait this long after the fault before alerting (the rule’s for:)',
    )
    .option('--json', 'the report as JSON on stdout (live progress goes to stderr)')
    .action(async (scenario: string, o: DrillCommandOptions, cmd: Command) =>
      drillCommand(context(cmd), scenario, o),
    );
}

function adminCommands(program: Command, context: ContextOf): void {
  program
    .command('runbook')
    .description('runbook files')
    .command('lint')
    .description('validate the runbooks and the contacts file; prints file:line for each problem')
    .argument('[dir]', 'runbook folder (default: $RUNBOOKS_DIR or ./runbooks)')
    .option('--contacts <file>', 'contacts file (default: $CONTACTS_FILE or ./config/contacts.yaml)')
    .action(async (dir: string | undefined, o: { contacts?: string }, cmd: Command) => {
      const ctx = context(cmd);
      const paths = ctx.paths;
      const code = await lintRunbooks(
        dir ?? paths.runbooksDir,
        o.contacts ?? paths.contactsFile,
        new Console({ stdout: ctx.stdout, stderr: ctx.stderr }),
      );
      if (code !== 0) throw refused('the runbooks have problems (listed above)');
    });

  program
    .command('keys')
    .description('your signing key: actions you sign are recorded as verified')
    .command('init')
    .description('make a key pair and print the public key line for your entry in the contacts file')
    .option('--out <file>', 'where to write the private key (default: the file --key would read)')
    .option('--force', 'replace an existing key')
    .action((o: { out?: string; force?: boolean }, cmd: Command) => initKeys(context(cmd), o));

  program
    .command('schedules')
    .description('Temporal Schedules of the health monitors and the Gmail watch renewal')
    .command('apply')
    .description('create the schedules, or update the ones that exist (MONITOR_* variables; safe to repeat)')
    .option('--paused', 'create new schedules paused (existing ones keep their state)')
    .option('--id-prefix <prefix>', 'put before every schedule id (to run a second set beside the first)')
    .action(async (o: ApplyCommandOptions, cmd: Command) => applySchedulesCommand(context(cmd), o));
}

/** The incidentctl program; `context` gives each command its CliContext (created on first use). */
export function createProgram(deps: CliDeps, context: ContextOf): Command {
  const program = new Command('incidentctl')
    .description('Operate the incident workflows: declare, list, show, approve, resolve, report.')
    .option('--as <name>', 'who you are (default: your OS user name)')
    .option('--address <host:port>', 'Temporal frontend (default: $TEMPORAL_ADDRESS or 127.0.0.1:7233)')
    .option('--namespace <namespace>', 'Temporal namespace (default: $TEMPORAL_NAMESPACE or default)')
    .option('--connect-timeout <seconds>', 'give up connecting after this long', '5')
    .option(
      '--update-id <id>',
      'id of the action (default: a new one); repeat an action whose answer never came with the id it printed, and it is applied at most once',
    )
    .option(
      '--key <file>',
      'your private key: actions are signed and recorded as verified (default: $INCIDENTCTL_KEY_FILE, else ~/.config/incidentctl/key.pem when it exists)',
    )
    .option('--debug', 'show stack traces of errors')
    .configureOutput({
      writeOut: (s) => deps.stdout.write(s),
      writeErr: (s) => deps.stderr.write(s),
    })
    .exitOverride()
    .showHelpAfterError('(incidentctl --help shows the usage)');
  readCommands(program, context);
  incidentCommands(program, context);
  postIncidentCommands(program, context);
  drillCommands(program, context);
  adminCommands(program, context);
  return program;
}

/** Runs incidentctl with the given arguments (without `node` and the script); resolves to the exit code. */
export async function runIncidentctl(argv: string[], deps: CliDeps): Promise<number> {
  let ctx: CliContext | undefined;
  const context: ContextOf = (cmd) => {
    if (ctx) return ctx;
    const parsed = globalOptionsSchema.safeParse(cmd.optsWithGlobals());
    if (!parsed.success) throw usageError(parsed.error.issues.map((i) => i.message).join('; '));
    ctx = new CliContext(deps, parsed.data);
    return ctx;
  };
  const program = createProgram(deps, context);
  try {
    await program.parseAsync(argv, { from: 'user' });
    return ExitCode.ok;
  } catch (error) {
    if (error instanceof CommanderError) return error.exitCode === 0 ? ExitCode.ok : ExitCode.usage;
    const where = ctx?.where() ?? {
      address: deps.env?.TEMPORAL_ADDRESS ?? process.env.TEMPORAL_ADDRESS ?? '127.0.0.1:7233',
      namespace: deps.env?.TEMPORAL_NAMESPACE ?? process.env.TEMPORAL_NAMESPACE ?? 'default',
    };
    const failure = classifyError(error, where);
    deps.stderr.write(`incidentctl: ${failure.message}\n`);
    if (ctx?.globals.debug ?? argv.includes('--debug')) {
      const stack = (failure.cause instanceof Error ? failure.cause : failure).stack;
      if (stack) deps.stderr.write(`${stack}\n`);
    }
    return failure.exitCode;
  } finally {
    await ctx?.close();
  }
}

/** The `incidentctl` executable (bin/incidentctl.js) calls this. */
export function main(argv: string[] = process.argv.slice(2)): Promise<number> {
  return runIncidentctl(argv, { stdout: process.stdout, stderr: process.stderr });
}
