import { createHmac, timingSafeEqual, type KeyObject } from 'node:crypto';
import type { Client } from '@temporalio/client';
import type { FastifyBaseLogger, FastifyInstance } from 'fastify';
import { z } from 'zod';
import { signAction } from '../action-signing.js';
import type { Contacts } from '../domain/contacts.js';
import { incidentActions } from '../workflows/api.js';
import { withTemporalDeadline } from './receiver-temporal.js';

// Approve and Reject buttons of Slack approval messages (src/activities/notify-message.ts) land here. Slack
// signs each request with the app's signing secret; the clicking Slack user is mapped to a person of the
// contacts file (slackUserId), and the receiver signs the action as the contacts file's signer for Slack,
// so the incident records it as that person's, verified via slack.

/** Slack's own rule: a request whose timestamp is more than five minutes off is refused (replays). */
export const SLACK_MAX_AGE_SECONDS = 5 * 60;

export type SlackSignatureCheck = 'ok' | 'missing' | 'stale' | 'wrong';

/** Checks `X-Slack-Signature` (v0=HMAC-SHA256 of `v0:<timestamp>:<raw body>`) and the timestamp's age. */
export function checkSlackSignature(
  secret: string,
  headers: { timestamp?: string; signature?: string },
  rawBody: string,
  nowMs: number,
): SlackSignatureCheck {
  const { timestamp, signature } = headers;
  if (!timestamp || !signature) return 'missing';
  if (!/^\d{1,12}$/.test(timestamp) || Math.abs(nowMs / 1000 - Number(timestamp)) > SLACK_MAX_AGE_SECONDS) {
    return 'stale';
  }
  const expected = `v0=${createHmac('sha256', secret).update(`v0:${timestamp}:${rawBody}`).digest('hex')}`;
  const a = Buffer.from(expected);
  const b = Buffer.from(signature);
  return a.length === b.length && timingSafeEqual(a, b) ? 'ok' : 'wrong';
}

const buttonValueSchema = z.strictObject({
  workflowId: z.string().min(1).max(300),
  step: z.string().min(1).max(200),
});

const interactionSchema = z.object({
  type: z.literal('block_actions'),
  user: z.object({ id: z.string().min(1).max(30) }),
  response_url: z.url(),
  actions: z
    .array(
      z.object({
        action_id: z.string(),
        value: z.string().max(2000).optional(),
      }),
    )
    .min(1),
});

export interface SlackInteractionOptions {
  signingSecret: string;
  /** The receiver's Ed25519 key; its public key is listed in the contacts file under `signers`. */
  signerKey: KeyObject;
  /** The signer's name in the contacts file (default `slack`). */
  signerName?: string;
  /** The contacts file, read for each click so that an edit applies at once. */
  contacts(): Promise<Contacts>;
  client: Client;
  /** Only response URLs under this prefix are answered (Slack's own: https://hooks.slack.com/). */
  responseUrlPrefix: string;
  temporalTimeoutMs: number;
  fetch?: typeof fetch;
  now?: () => number;
  /** Called with each refused request's reason, for the receiver's metrics. */
  onRejected?(reason: 'auth' | 'malformed'): void;
}

type Outcome = { ok: true; text: string } | { ok: false; text: string };

/** `POST /slack/interactions`, registered in its own scope: it reads its body raw, to check the signature. */
export function registerSlackInteractions(app: FastifyInstance, o: SlackInteractionOptions): void {
  const signer = o.signerName ?? 'slack';
  const post = o.fetch ?? fetch;
  const now = o.now ?? Date.now;

  const respond = async (log: FastifyBaseLogger, url: string, body: Record<string, unknown>) => {
    try {
      const res = await post(url, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(body),
        signal: AbortSignal.timeout(5_000),
      });
      if (!res.ok) log.warn({ status: res.status }, 'Slack did not take the message update');
    } catch (error) {
      log.warn({ err: error }, 'could not update the Slack message');
    }
  };

  async function decide(
    decision: 'approve' | 'reject',
    target: z.infer<typeof buttonValueSchema>,
    slackUser: string,
  ): Promise<Outcome> {
    const contacts = await o.contacts();
    const person = contacts.people.find((p) => p.slackUserId === slackUser);
    if (!person) {
      return { ok: false, text: `Slack user ${slackUser} is not anyone in the contacts file (slackUserId)` };
    }
    const args =
      decision === 'approve'
        ? { step: target.step, by: person.name, reason: 'approved in Slack' }
        : { step: target.step, by: person.name, reason: 'rejected in Slack' };
    const signature = signAction(o.signerKey, {
      workflowId: target.workflowId,
      action: decision,
      args,
      signer,
    });
    const definition = decision === 'approve' ? incidentActions.approve : incidentActions.reject;
    try {
      const verdict = await withTemporalDeadline(o.client, o.temporalTimeoutMs, () =>
        o.client.workflow
          .getHandle(target.workflowId)
          .executeUpdate(definition.update, { args: [{ ...args, signature } as never] }),
      );
      return { ok: true, text: `${person.name} (verified via Slack): ${verdict}` };
    } catch (error) {
      const cause = (error as { cause?: unknown }).cause;
      const message =
        cause instanceof Error ? cause.message : error instanceof Error ? error.message : String(error);
      return { ok: false, text: `${decision} of ${target.step} refused: ${message}` };
    }
  }

  void app.register(async (scope) => {
    scope.addContentTypeParser(
      'application/x-www-form-urlencoded',
      { parseAs: 'string', bodyLimit: 64 * 1024 },
      (_request, body, done) => done(null, body),
    );
    scope.post('/slack/interactions', async (request, reply) => {
      const raw = typeof request.body === 'string' ? request.body : '';
      const header = (name: string) => {
        const v = request.headers[name];
        return Array.isArray(v) ? v[0] : v;
      };
      const check = checkSlackSignature(
        o.signingSecret,
        { timestamp: header('x-slack-request-timestamp'), signature: header('x-slack-signature') },
        raw,
        now(),
      );
      if (check !== 'ok') {
        request.log.info({ slackSignature: check }, 'Slack interaction refused: signature');
        o.onRejected?.('auth');
        return reply.code(401).send({ error: `Slack signature ${check}` });
      }
      let interaction: z.infer<typeof interactionSchema>;
      let target: z.infer<typeof buttonValueSchema>;
      let decision: 'approve' | 'reject';
      try {
        interaction = interactionSchema.parse(JSON.parse(new URLSearchParams(raw).get('payload') ?? ''));
        const action = interaction.actions[0] as { action_id: string; value?: string };
        if (action.action_id !== 'incident-approve' && action.action_id !== 'incident-reject') {
          throw new Error(`unknown action ${action.action_id}`);
        }
        decision = action.action_id === 'incident-approve' ? 'approve' : 'reject';
        target = buttonValueSchema.parse(JSON.parse(action.value ?? ''));
        if (!interaction.response_url.startsWith(o.responseUrlPrefix)) {
          throw new Error(`response_url is not under ${o.responseUrlPrefix}`);
        }
      } catch (error) {
        request.log.info({ err: error }, 'Slack interaction refused: payload');
        o.onRejected?.('malformed');
        return reply.code(400).send({ error: 'invalid Slack interaction payload' });
      }
      // Slack wants its answer within 3 seconds; the decision and the message update follow it.
      void reply.code(200).send();
      const outcome = await decide(decision, target, interaction.user.id).catch(
        (error: unknown): Outcome => ({ ok: false, text: `could not ${decision}: ${String(error)}` }),
      );
      request.log.info(
        { workflowId: target.workflowId, step: target.step, decision, ok: outcome.ok },
        'Slack decision',
      );
      await respond(
        request.log,
        interaction.response_url,
        outcome.ok
          ? { replace_original: true, text: outcome.text }
          : { replace_original: false, response_type: 'ephemeral', text: outcome.text },
      );
      return reply;
    });
  });
}
