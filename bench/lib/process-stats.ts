import { readFile } from 'node:fs/promises';

// A process's memory and CPU as Linux reports them (/proc/<pid>/status and /proc/<pid>/stat): the figures a
// container's limits and a node's CPU accounting see, threads of the Temporal core included.

/** USER_HZ: the unit of utime/stime; 100 on every Linux this runs on. */
const CLOCK_TICKS_PER_SECOND = 100;

export interface MemorySample {
  /** Resident set size now (VmRSS), bytes. */
  rssBytes: number;
  /** The highest resident set size so far (VmHWM), bytes. */
  peakRssBytes: number;
}

export async function memory(pid: number): Promise<MemorySample> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const kib = (field: string) => {
    const match = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status);
    if (!match?.[1]) throw new Error(`/proc/${pid}/status has no ${field}`);
    return Number(match[1]) * 1024;
  };
  return { rssBytes: kib('VmRSS'), peakRssBytes: kib('VmHWM') };
}

/** User plus system CPU time the process has used so far, in ms. */
export async function cpuTimeMs(pid: number): Promise<number> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
  // The command name (field 2) may hold spaces and parentheses: count the fields after its closing one.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // utime and stime are fields 14 and 15 of the whole line, 12 and 13 after the name (0-based 11, 12).
  const ticks = Number(fields[11]) + Number(fields[12]);
  return (ticks * 1000) / CLOCK_TICKS_PER_SECOND;
}

/** The share of one core the process used over `ms` from now, in percent. */
export async function cpuPercentOver(pid: number, ms: number): Promise<number> {
  const before = await cpuTimeMs(pid);
  const started = performance.now();
  await new Promise((resolve) => setTimeout(resolve, ms));
  const after = await cpuTimeMs(pid);
  return ((after - before) / (performance.now() - started)) * 100;
}

export const mib = (bytes: number) => bytes / 2 ** 20;
