import type { PodCondition } from './pod-health.js';

interface LogLine {
  at: string;
  text: string;
}

type Role = 'api' | 'processor' | 'postgres' | 'kafka' | 'generic';

function roleOf(workload: string): Role {
  if (workload.includes('postgres')) return 'postgres';
  if (workload.includes('kafka')) return 'kafka';
  if (workload.includes('processor')) return 'processor';
  if (workload.includes('api')) return 'api';
  return 'generic';
}

const STARTUP: Record<Role, string[]> = {
  api: [
    'INFO:     Started server process [1]',
    'INFO:     Waiting for application startup.',
    'INFO:     database pool ready (min_size=5, max_size=20)',
    'INFO:     kafka producer connected to kafka:9092',
    'INFO:     Application startup complete.',
    'INFO:     Uvicorn running on http://0.0.0.0:8000 (Press CTRL+C to quit)',
  ],
  processor: [
    'INFO fte-message-processor starting',
    'INFO database pool ready (min_size=5, max_size=20)',
    'INFO consumer group fte-message-processor joined, topics: fte.tickets.incoming',
  ],
  postgres: [
    'LOG:  starting PostgreSQL 16.4 on x86_64-pc-linux-gnu',
    'LOG:  listening on IPv4 address "0.0.0.0", port 5432',
    'LOG:  database system was shut down at 2025-06-01 00:00:00 UTC',
    'LOG:  database system is ready to accept connections',
  ],
  kafka: [
    'INFO [KafkaRaftServer nodeId=0] Kafka Server started (kafka.server.KafkaRaftServer)',
    'INFO [BrokerServer id=0] Transition from STARTING to STARTED (kafka.server.BrokerServer)',
  ],
  generic: ['starting', 'ready'],
};

// Steady-state lines, cycled by index so that a pod's log is the same every time it is generated.
const STEADY: Record<Role, ((i: number) => string)[]> = {
  api: [
    (i) => `INFO:     10.244.0.${(i % 200) + 2}:5${1000 + i} - "GET /health HTTP/1.1" 200 OK`,
    (i) => `INFO:     webhook gmail: notification received historyId=${880000 + i}`,
    (i) => `INFO:     10.244.1.${(i % 200) + 2}:4${1000 + i} - "POST /webhooks/whatsapp HTTP/1.1" 200 OK`,
    (i) => `INFO:     10.244.2.${(i % 200) + 2}:3${1000 + i} - "POST /support/submit HTTP/1.1" 200 OK`,
  ],
  processor: [
    (i) => `INFO processed message channel=email ticket=T-${10400 + i} latency_ms=${1800 + (i % 7) * 130}`,
    (i) => `INFO processed message channel=whatsapp ticket=T-${10400 + i} latency_ms=${1500 + (i % 5) * 170}`,
    (i) => `INFO processed message channel=web_form ticket=T-${10400 + i} latency_ms=${1700 + (i % 3) * 210}`,
  ],
  postgres: [
    () => 'LOG:  checkpoint starting: time',
    (i) => `LOG:  checkpoint complete: wrote ${20 + (i % 30)} buffers (0.1%); 0 WAL file(s) added`,
  ],
  kafka: [
    (i) =>
      `INFO [LocalLog partition=fte.tickets.incoming-${i % 3}, dir=/var/lib/kafka/data] Rolled new log segment (kafka.log.LocalLog)`,
    () =>
      'INFO [GroupCoordinator 0]: Stabilized group fte-message-processor generation 4 (kafka.coordinator.group.GroupCoordinator)',
  ],
  generic: [(i) => `tick ${i}`],
};

const FAILURE: Record<Role, string[]> = {
  api: [
    'ERROR:    Traceback (most recent call last):',
    'ERROR:    asyncpg.exceptions.CannotConnectNowError: the database system is starting up',
    'ERROR:    Application startup failed. Exiting.',
  ],
  processor: [
    'ERROR consumer error: KafkaJSConnectionError: Connection error: connect ECONNREFUSED kafka:9092',
    'ERROR fatal: giving up after 5 reconnect attempts',
  ],
  postgres: [
    'FATAL:  could not open file "global/pg_filenode.map": No such file or directory',
    'LOG:  database system is shut down',
  ],
  kafka: [
    'ERROR Fatal error during broker startup. Prepare to shutdown (kafka.server.BrokerServer)',
    'ERROR Exiting Kafka due to fatal exception (kafka.Kafka$)',
  ],
  generic: ['error: exited with code 1'],
};

const OOM_LINES = ['WARNING memory usage at 98% of the container limit', 'Killed'];

/** The container log of each pod, by pod uid: made up at start, with failure lines for injected faults. */
export class LogBook {
  #lines = new Map<string, LogLine[]>();
  #steadyLines: number;

  constructor(steadyLines = 40) {
    this.#steadyLines = steadyLines;
  }

  start(uid: string, workload: string, at: Date): void {
    const role = roleOf(workload);
    const steady = STEADY[role];
    const lines = [
      ...STARTUP[role],
      ...Array.from({ length: this.#steadyLines }, (_, i) => (steady[i % steady.length] ?? String)(i)),
    ];
    this.#lines.set(
      uid,
      lines.map((text, i) => ({ at: new Date(at.getTime() + i * 1000).toISOString(), text })),
    );
  }

  append(uid: string, texts: string[]): void {
    const lines = this.#lines.get(uid) ?? [];
    for (const text of texts) lines.push({ at: new Date().toISOString(), text });
    this.#lines.set(uid, lines);
  }

  failureLines(workload: string, condition: PodCondition): string[] {
    if (condition === 'OOMKilled') return OOM_LINES;
    if (condition === 'CrashLoopBackOff') return FAILURE[roleOf(workload)];
    return [];
  }

  forget(uid: string): void {
    this.#lines.delete(uid);
  }

  /** The log as the kubelet serves it: the last `tail` lines, optionally with RFC 3339 timestamps. */
  read(uid: string, options: { tail?: number; timestamps?: boolean; limitBytes?: number }): string {
    const all = this.#lines.get(uid) ?? [];
    const lines = options.tail === undefined ? all : options.tail <= 0 ? [] : all.slice(-options.tail);
    const text = lines.map((l) => `${options.timestamps ? `${l.at} ` : ''}${l.text}\n`).join('');
    return options.limitBytes === undefined
      ? text
      : Buffer.from(text).subarray(0, options.limitBytes).toString();
  }
}
