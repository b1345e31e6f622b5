import { ApplicationFailure } from '@temporalio/activity';
import type { z } from 'zod';
import { boundFinding, type Finding, type FindingStatus } from '../domain/findings.js';

// Patterns for secrets that may show up in logs, errors and connection strings. Redaction happens before
// anything leaves an activity: findings, errors and log lines.
const SECRET_PATTERNS: [RegExp, string][] = [
  [/\b([a-z][a-z0-9+.-]*:\/\/)([^:/?#@\s]+):([^@/\s]+)@/gi, '$1$2:[REDACTED]@'],
  [
    /\b(authorization|proxy-authorization)(["']?\s*[:=]\s*["']?)(bearer|basic|token)?\s*[^\s"',;]+/gi,
    '$1$2$3 [REDACTED]',
  ],
  [/\bbearer\s+[a-z0-9._~+/=-]{8,}/gi, 'Bearer [REDACTED]'],
  [
    /\b([a-z0-9_]*(?:password|passwd|pwd|secret|token|api[_-]?key|apikey|auth[_-]?token|access[_-]?key|private[_-]?key|client[_-]?secret)[a-z0-9_]*)(["']?\s*[:=]\s*["']?)[^\s"',;&]+/gi,
    '$1$2[REDACTED]',
  ],
  [/\b(sk|xox[abprs]|ghp|gho|AKIA)[-_][A-Za-z0-9_-]{10,}/g, '[REDACTED]'],
  [/\bhooks\.slack\.com\/services\/[A-Za-z0-9/]+/g, 'hooks.slack.com/services/[REDACTED]'],
  [/-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?-----END [A-Z ]*PRIVATE KEY-----/g, '[REDACTED PRIVATE KEY]'],
];

// Customers' personal data the platform's logs are full of (the agent answers email, WhatsApp and a web form):
// kept out of findings, and so out of workflow history, which everyone with namespace access can read.
const PERSONAL_DATA_PATTERNS: [RegExp, string][] = [
  [/[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}/g, '[EMAIL]'],
  // International numbers (E.164 and spaced or dashed forms, e.g. whatsapp:+14155550123, +44 7700 900123).
  [/(?<![\w+])\+\d(?:[\s.-]?\(?\d\)?){7,14}(?!\w)/g, '[PHONE]'],
  // North American forms: (415) 555-0123, 415-555-0123, 415.555.0123.
  [/(?<!\w)(?:\(\d{3}\)\s?|\d{3}[-.])\d{3}[-.]\d{4}(?!\w)/g, '[PHONE]'],
];

/** Removes secrets and customers' email addresses and phone numbers from text; `known` are exact secret values the caller holds (e.g. a configured password). */
export function redact(text: string, known: readonly string[] = []): string {
  let out = text;
  for (const secret of known) {
    if (secret.length >= 4) out = out.split(secret).join('[REDACTED]');
  }
  for (const [pattern, replacement] of SECRET_PATTERNS) out = out.replace(pattern, replacement);
  for (const [pattern, replacement] of PERSONAL_DATA_PATTERNS) out = out.replace(pattern, replacement);
  return out;
}

/** Builds a Finding with redacted, size-capped summary and evidence. */
export function makeFinding(
  probe: string,
  status: FindingStatus,
  summary: string,
  metrics: Finding['metrics'] = {},
  evidence: string[] = [],
  known: readonly string[] = [],
): Finding {
  return boundFinding({
    probe,
    status,
    summary: redact(summary, known),
    metrics,
    evidence: evidence.map((line) => redact(line, known)),
    at: new Date().toISOString(),
  });
}

/** The failure types activities throw; the workflow's retry policies key on these names. */
export type ErrorKind =
  | 'BadRequestError'
  | 'ForbiddenError'
  | 'NotFoundError'
  | 'PreconditionFailedError'
  | 'TimeoutError'
  | 'UnavailableError'
  | 'ServerError';

const NON_RETRYABLE: ReadonlySet<ErrorKind> = new Set([
  'BadRequestError',
  'ForbiddenError',
  'NotFoundError',
  'PreconditionFailedError',
]);

/** A classified, redacted activity failure: bad requests and permission problems are never retried. */
export function activityError(
  kind: ErrorKind,
  message: string,
  known: readonly string[] = [],
): ApplicationFailure {
  return ApplicationFailure.create({
    type: kind,
    message: redact(message, known),
    nonRetryable: NON_RETRYABLE.has(kind),
  });
}

/** Validates activity arguments; a bad argument is a BadRequestError that names the field. */
export function parseActivityArgs<S extends z.ZodType>(schema: S, args: unknown, what: string): z.output<S> {
  const result = schema.safeParse(args);
  if (result.success) return result.data;
  const problems = result.error.issues.map((i) => `${i.path.join('.') || '(args)'}: ${i.message}`).join('; ');
  throw activityError('BadRequestError', `${what}: invalid arguments: ${problems}`);
}

/** Rejects after `ms` so that a hanging client call turns into a TimeoutError the caller can classify. */
export async function withTimeout<T>(ms: number, what: string, work: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(activityError('TimeoutError', `${what} did not answer within ${ms} ms`)),
      ms,
    );
  });
  try {
    return await Promise.race([work, timeout]);
  } finally {
    clearTimeout(timer);
  }
}
