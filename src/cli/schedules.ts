import type { CliContext } from './context.js';

export interface ApplyCommandOptions {
  paused?: boolean;
  idPrefix?: string;
}

/**
 * `schedules apply`: creates or updates the monitor schedules from the MONITOR_* variables. The starter is
 * loaded on demand, so the monitors' code is not needed by the other commands.
 */
export async function applySchedulesCommand(ctx: CliContext, o: ApplyCommandOptions): Promise<void> {
  const [{ loadMonitorConfig }, { applySchedules }] = await Promise.all([
    import('../starters/monitor-config.js'),
    import('../starters/schedules.js'),
  ]);
  const config = loadMonitorConfig(ctx.environment);
  const client = await ctx.client();
  const { taskQueue } = await ctx.settings();
  const applied = await applySchedules(client, config, {
    taskQueue,
    ...(o.paused ? { paused: true } : {}),
    ...(o.idPrefix ? { idPrefix: o.idPrefix } : {}),
  });
  for (const s of applied)
    ctx.out(`${s.outcome} schedule ${s.scheduleId} (${s.workflowType}, scope ${config.scope})`);
}
