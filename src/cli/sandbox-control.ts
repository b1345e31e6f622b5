import { z } from 'zod';
import { scenarioInfoSchema, scenarioNameSchema, type ScenarioName } from '../sandbox/scenarios.js';
import { CliError, ExitCode } from './errors.js';

// A client of the sandbox's control port (src/sandbox/control.ts): what `incidentctl drill` uses to break the
// simulated platform, see which faults are in force and end vendor incidents. Every answer is checked.

export const DEFAULT_SANDBOX_URL = 'http://127.0.0.1:8090';

export const scenarioListSchema = z.object({
  scenarios: z.array(scenarioInfoSchema.extend({ active: z.boolean() })),
  active: z.array(scenarioNameSchema),
  kubernetes: z.enum(['ready', 'starting']),
  lastError: z.string().optional(),
});
export type ScenarioList = z.infer<typeof scenarioListSchema>;

const errorAnswerSchema = z.object({ error: z.string() });

export const sandboxUnavailable = (message: string, cause?: unknown) =>
  new CliError(ExitCode.sandboxUnavailable, message, { cause });

export interface SandboxControlOptions {
  fetch?: typeof fetch;
  /** Per request; applying a scenario that restarts pods takes a few seconds. Default 60 s. */
  timeoutMs?: number;
}

export class SandboxControl {
  readonly baseUrl: string;
  private readonly fetchImpl: typeof fetch;
  private readonly timeoutMs: number;

  constructor(baseUrl: string, options: SandboxControlOptions = {}) {
    if (!URL.canParse(baseUrl) || !/^https?:$/.test(new URL(baseUrl).protocol)) {
      throw new CliError(ExitCode.usage, `--sandbox: "${baseUrl}" is not an http(s) URL`);
    }
    this.baseUrl = baseUrl.replace(/\/+$/, '');
    this.fetchImpl = options.fetch ?? fetch;
    this.timeoutMs = options.timeoutMs ?? 60_000;
  }

  private async call(method: 'GET' | 'POST', path: string): Promise<{ status: number; body: unknown }> {
    const url = `${this.baseUrl}${path}`;
    let response: Response;
    try {
      response = await this.fetchImpl(url, { method, signal: AbortSignal.timeout(this.timeoutMs) });
    } catch (error) {
      const reason =
        error instanceof Error ? (error.cause instanceof Error ? error.cause.message : error.message) : '';
      throw sandboxUnavailable(
        `the sandbox control API at ${this.baseUrl} did not answer ${method} ${path} (${reason || 'no answer'}):` +
          ' is `make start` running? (--sandbox URL or SANDBOX_CONTROL_URL names another one)',
        error,
      );
    }
    const text = await response.text();
    let body: unknown = text;
    try {
      body = text ? JSON.parse(text) : undefined;
    } catch {
      // Not JSON: keep the text for the message.
    }
    return { status: response.status, body };
  }

  private static reason(body: unknown): string {
    const parsed = errorAnswerSchema.safeParse(body);
    if (parsed.success) return parsed.data.error;
    return typeof body === 'string' ? body.slice(0, 300) : JSON.stringify(body ?? null).slice(0, 300);
  }

  /** `GET /scenarios`: every scenario, which are active, and whether the Kubernetes part is up. */
  async list(): Promise<ScenarioList> {
    const { status, body } = await this.call('GET', '/scenarios');
    if (status !== 200) {
      throw sandboxUnavailable(
        `the sandbox control API answered ${status} to GET /scenarios: ${SandboxControl.reason(body)}`,
      );
    }
    const parsed = scenarioListSchema.safeParse(body);
    if (!parsed.success) {
      throw sandboxUnavailable(
        `the sandbox control API at ${this.baseUrl} answered GET /scenarios with something unexpected: ` +
          parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; '),
      );
    }
    return parsed.data;
  }

  /** `POST /scenarios/<name>`: applies a fault (`healthy` clears every fault). */
  async apply(name: ScenarioName): Promise<void> {
    const { status, body } = await this.call('POST', `/scenarios/${name}`);
    if (status !== 200) {
      throw sandboxUnavailable(
        `the sandbox could not apply ${name} (${status}): ${SandboxControl.reason(body)}`,
      );
    }
  }

  /**
   * `POST /scenarios/<name>/recover`: the vendor or the review recovered. False when the scenario is not an
   * active one that recovers when told (409).
   */
  async recover(name: ScenarioName): Promise<boolean> {
    const { status, body } = await this.call('POST', `/scenarios/${name}/recover`);
    if (status === 409) return false;
    if (status !== 200) {
      throw sandboxUnavailable(
        `the sandbox could not recover ${name} (${status}): ${SandboxControl.reason(body)}`,
      );
    }
    return true;
  }
}
