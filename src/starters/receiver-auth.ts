import { createHash, timingSafeEqual } from 'node:crypto';

export type AuthResult = 'ok' | 'missing' | 'wrong';

/** Challenges sent with a 401: Alertmanager's http_config can answer either. */
export const AUTH_CHALLENGES = [
  'Bearer realm="incident-receiver"',
  'Basic realm="incident-receiver", charset="UTF-8"',
];

const digest = (value: string): Buffer => createHash('sha256').update(value, 'utf8').digest();

/** The secret a request presents: a bearer token, or the password of basic auth (any username). */
function presentedSecret(authorization: string): string | undefined {
  const match = /^(\S+)\s+(.+)$/.exec(authorization.trim());
  if (!match) return undefined;
  const scheme = (match[1] as string).toLowerCase();
  const value = (match[2] as string).trim();
  if (scheme === 'bearer') return value;
  if (scheme === 'basic') {
    const decoded = Buffer.from(value, 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    return colon < 0 ? undefined : decoded.slice(colon + 1);
  }
  return undefined;
}

/**
 * Checks Authorization headers against one shared token. Both sides are hashed first so the comparison
 * is constant-time on equal-length buffers whatever the length of what was sent.
 */
export function tokenChecker(token: string): (authorization: string | undefined) => AuthResult {
  if (!token) throw new Error('the receiver token must not be empty');
  const expected = digest(token);
  return (authorization) => {
    if (!authorization) return 'missing';
    const secret = presentedSecret(authorization);
    if (secret === undefined) return 'wrong';
    return timingSafeEqual(digest(secret), expected) ? 'ok' : 'wrong';
  };
}
