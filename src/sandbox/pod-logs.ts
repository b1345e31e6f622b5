import { appendFile, mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

// What the platform's containers print, as files kwok serves for `kubectl logs` (the CRI log format: time,
// stream, "F", text). Every pod of a workload starts with its workload's healthy log; a scenario appends
// failure lines to the log of the pods it breaks, and the pods that replace them start clean again.

export type Workload = 'fte-api' | 'fte-message-processor' | 'postgres' | 'kafka';
export const WORKLOADS: readonly Workload[] = ['fte-api', 'fte-message-processor', 'postgres', 'kafka'];

const HEALTHY: Record<Workload, (i: number) => string> = {
  'fte-api': (i) =>
    [
      `INFO:     10.244.0.${(i % 200) + 2}:51${i % 100} - "GET /health HTTP/1.1" 200 OK`,
      `INFO:     webhook gmail: notification received historyId=${880000 + i}`,
      `INFO:     10.244.1.${(i % 200) + 2}:41${i % 100} - "POST /webhooks/whatsapp HTTP/1.1" 200 OK`,
      `INFO:     10.244.2.${(i % 200) + 2}:31${i % 100} - "POST /support/submit HTTP/1.1" 200 OK`,
    ][i % 4] ?? '',
  'fte-message-processor': (i) =>
    `INFO processed message channel=${['email', 'whatsapp', 'web_form'][i % 3]} ticket=T-${10400 + i} latency_ms=${1500 + (i % 7) * 130}`,
  postgres: (i) =>
    i % 2 === 0
      ? 'LOG:  checkpoint starting: time'
      : `LOG:  checkpoint complete: wrote ${20 + (i % 30)} buffers (0.1%); 0 WAL file(s) added`,
  kafka: (i) =>
    `INFO [LocalLog partition=fte-messages-${i % 3}, dir=/var/lib/kafka/data] Rolled new log segment (kafka.log.LocalLog)`,
};

/** Lines a broken container prints, by what broke. */
export const FAILURE_LINES = {
  apiCrash: [
    'ERROR:    Traceback (most recent call last):',
    'ERROR:    RuntimeError: worker process died during startup (exit code 3)',
    'ERROR:    Application startup failed. Exiting.',
  ],
  postgresCrash: [
    'FATAL:  could not open file "global/pg_filenode.map": No such file or directory',
    'LOG:  database system is shut down',
  ],
  kafkaCrash: [
    'ERROR Fatal error during broker startup. Prepare to shutdown (kafka.server.BrokerServer)',
    'ERROR Exiting Kafka due to fatal exception (kafka.Kafka$)',
  ],
  processorStuck: [
    'ERROR whatsapp: Twilio webhook signature validation failed for 57 requests',
    'ERROR consumer stalled: no progress on partition fte-messages-1 for 300 s',
  ],
} as const;

/** A line in the CRI log format kwok reads. */
export function criLine(text: string, at = new Date(), stream: 'stdout' | 'stderr' = 'stdout'): string {
  return `${at.toISOString().replace('Z', '000000Z')} ${stream} F ${text}\n`;
}

/** The log files of one namespace: one healthy file per workload, one file per broken pod. */
export class PodLogFiles {
  constructor(readonly dir: string) {}

  workloadFile(workload: Workload): string {
    return join(this.dir, `${workload}.log`);
  }

  podFile(pod: string): string {
    return join(this.dir, 'pods', `${pod}.log`);
  }

  /** Writes each workload's healthy log (40 lines ending now). */
  async writeHealthy(now = Date.now()): Promise<void> {
    await mkdir(join(this.dir, 'pods'), { recursive: true });
    for (const workload of WORKLOADS) {
      const lines = Array.from({ length: 40 }, (_, i) =>
        criLine(HEALTHY[workload](i), new Date(now - (40 - i) * 15_000)),
      );
      await writeFile(this.workloadFile(workload), lines.join(''));
    }
  }

  /** Starts a broken pod's own log: its workload's healthy lines, then what it printed when it broke. */
  async breakPod(
    pod: string,
    workload: Workload,
    lines: readonly string[],
    now = Date.now(),
  ): Promise<string> {
    const file = this.podFile(pod);
    const healthy = Array.from({ length: 20 }, (_, i) =>
      criLine(HEALTHY[workload](i), new Date(now - (21 - i) * 15_000)),
    );
    await writeFile(file, healthy.join(''));
    await appendFile(file, lines.map((l) => criLine(l, new Date(now), 'stderr')).join(''));
    return file;
  }
}
