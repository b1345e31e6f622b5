import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import type { WorkflowHandle } from '@temporalio/client';
import { parse, stringify } from 'yaml';
import { newKeyPair, parsePrivateKey, signAction } from '../../src/action-signing.js';
import type { UnverifiedPolicy } from '../../src/domain/identity.js';
import { contactsSchema } from '../../src/domain/contacts.js';
import type { PostIncidentInput } from '../../src/domain/post-incident.js';
import { incidentActions, postIncidentActions, postIncidentStatusQuery } from '../../src/workflows/api.js';
import { postIncidentWorkflow } from '../../src/workflows/post-incident.js';
import type { incidentWorkflow } from '../../src/workflows/incident.js';
import { FakePlatform } from '../helpers/fake-platform.js';
import { contactsFile } from '../helpers/paths.js';
import { timeSkippingEnv, uniqueName } from '../helpers/services.js';
import { alert, productWorker, raise, refusal, status, until } from '../helpers/workflows.js';

// Who approved: a name proven by a signature, or one only claimed. Keys are made per test run.
const carol = newKeyPair();
const alice = newKeyPair();
const carolKey = parsePrivateKey(carol.privateKeyPem, 'carol');
const aliceKey = parsePrivateKey(alice.privateKeyPem, 'alice');

/** The project's contacts with carol's and alice's public keys (bob has none) and the given policy. */
function contactsWith(policy?: UnverifiedPolicy): string {
  const contacts = parse(readFileSync(contactsFile, 'utf8')) as {
    people: { name: string; publicKey?: string }[];
    policy?: unknown;
  };
  for (const p of contacts.people) {
    if (p.name === 'carol') p.publicKey = carol.publicKey;
    if (p.name === 'alice') p.publicKey = alice.publicKey;
  }
  if (policy) contacts.policy = { unverified: policy };
  const file = join(mkdtempSync(join(tmpdir(), 'contacts-')), 'contacts.yaml');
  writeFileSync(file, stringify(contacts));
  return file;
}

let env: TestWorkflowEnvironment;
beforeEach(async () => {
  env = await timeSkippingEnv();
});
afterEach(async () => {
  await env?.teardown();
});

type Incident = WorkflowHandle<typeof incidentWorkflow>;

/** An incident waiting for approval of its high-risk first step (restart-postgres), run against the fakes. */
async function withApprovalWait(
  contacts: string,
  body: (handle: Incident, platform: FakePlatform) => Promise<void>,
): Promise<void> {
  const platform = new FakePlatform();
  platform.contactsFile = contacts;
  platform.status = { postgres: 'down' };
  const { worker, taskQueue } = await productWorker(env, platform.activities());
  await worker.runUntil(async () => {
    const handle = await raise(env, taskQueue, 'all-channels-down', [alert('FTEAllChannelsDown', 'fp-id')]);
    await until(
      () => status(handle),
      (s) => s.awaitingApproval.includes('restart-postgres'),
      'approval wait',
    );
    await body(handle, platform);
    // Terminated, not cancelled: a strict policy refuses an unsigned cancel too.
    await handle.terminate('test over');
  });
}

/** Arguments with a signature, made at the workflow's own time unless `at` says otherwise. */
async function signed(
  handle: Pick<Incident, 'workflowId'>,
  action: string,
  args: Record<string, unknown>,
  key = carolKey,
  at?: number,
): Promise<Record<string, unknown>> {
  const now = new Date(at ?? (await env.currentTimeMs()));
  return { ...args, signature: signAction(key, { workflowId: handle.workflowId, action, args, now }) };
}

const approve = (handle: Incident, args: Record<string, unknown>) =>
  handle.executeUpdate(incidentActions.approve.update, { args: [args as never] });

describe('signed actions', () => {
  it('records a signed approval as verified, in the timeline and the ledger', async () => {
    await withApprovalWait(
      contactsWith({ allow: ['acknowledge', 'addNote'], decideSteps: 'none' }),
      async (h, p) => {
        const args = { step: 'restart-postgres', by: 'carol', reason: 'the database is down' };
        await approve(h, await signed(h, 'approve', args));
        const s = await until(
          () => status(h),
          (x) => x.timeline.some((t) => t.type === 'step-approved'),
          'approval recorded',
        );
        expect(s.timeline.find((t) => t.type === 'step-approved')).toMatchObject({
          by: 'carol',
          verified: true,
        });
        expect(p.ledger.find((e) => e.type === 'step-approved')?.data).toMatchObject({ verified: true });
      },
    );
  });

  it('refuses a forged name, a key not in the contacts file, a stale signature and a replayed one', async () => {
    await withApprovalWait(contactsWith(), async (h) => {
      const args = { step: 'restart-postgres', by: 'carol' };
      // alice signs, claiming to be carol.
      expect(await refusal(approve(h, await signed(h, 'approve', args, aliceKey)))).toMatch(
        /does not match carol's public key/,
      );
      // bob is on-call (an approver) but has no key in the contacts file.
      const bobs = await signed(h, 'approve', { step: 'restart-postgres', by: 'bob' }, carolKey);
      expect(await refusal(approve(h, bobs))).toMatch(/bob has no public key in the contacts file/);
      // Signed six minutes before the workflow's time.
      const stale = await signed(h, 'approve', args, carolKey, (await env.currentTimeMs()) - 6 * 60_000);
      expect(await refusal(approve(h, stale))).toMatch(/more than 5 minutes from the workflow's time/);
      // A signature for another action does not fit this one.
      const forNote = await signed(h, 'addNote', { by: 'carol', text: 'x' });
      expect(await refusal(approve(h, { ...args, signature: forNote.signature }))).toMatch(/does not match/);

      const note = await signed(h, 'addNote', { by: 'carol', text: 'checking the primary' });
      await h.executeUpdate(incidentActions.addNote.update, { args: [note as never] });
      expect(
        await refusal(h.executeUpdate(incidentActions.addNote.update, { args: [note as never] })),
      ).toMatch(/already used once \(a replay\)/);
      // The same replay as a Signal is recorded as a refused attempt, not as a second note.
      await h.signal(incidentActions.addNote.signal, note as never);
      const s = await until(
        () => status(h),
        (x) => x.timeline.some((t) => t.type === 'rejected-attempt' && t.text.includes('replay')),
        'refused replay recorded',
      );
      expect(s.timeline.filter((t) => t.type === 'note')).toHaveLength(1);
      expect(s.steps.find((x) => x.id === 'restart-postgres')?.status).toBe('awaiting-approval');
    });
  });
});

describe('unsigned actions under the contacts file policy', () => {
  const unsigned = { step: 'restart-postgres', by: 'carol' };

  it('without a policy: allowed, recorded as unverified with the claimed name', async () => {
    await withApprovalWait(contactsWith(), async (h) => {
      await approve(h, unsigned);
      const s = await until(
        () => status(h),
        (x) => x.timeline.some((t) => t.type === 'step-approved'),
        'approval recorded',
      );
      expect(s.timeline.find((t) => t.type === 'step-approved')).toMatchObject({
        by: 'carol',
        verified: false,
      });
    });
  });

  it.each([
    [{ decideSteps: 'none' } as const, /approve of a high-risk step needs a verified identity/],
    [{ decideSteps: 'low-risk' } as const, /approve of a high-risk step needs a verified identity/],
    [{ allow: ['acknowledge', 'addNote'] } as UnverifiedPolicy, /approve needs a verified identity here/],
  ])('policy %j: an unsigned approval of a high-risk step is refused', async (policy, message) => {
    await withApprovalWait(contactsWith(policy), async (h) => {
      expect(await refusal(approve(h, unsigned))).toMatch(message);
      // What the policy allows still works unsigned, and says it was not verified.
      await h.executeUpdate(incidentActions.acknowledge.update, { args: [{ by: 'carol' }] });
      const s = await status(h);
      expect(s.timeline.find((t) => t.type === 'acknowledged')).toMatchObject({ verified: false });
      expect(s.steps.find((x) => x.id === 'restart-postgres')?.status).toBe('awaiting-approval');
    });
  });

  it('a strict policy refuses an unsigned Signal too, and records the attempt', async () => {
    await withApprovalWait(
      contactsWith({ allow: ['acknowledge', 'addNote'], decideSteps: 'none' }),
      async (h) => {
        await h.signal(incidentActions.approve.signal, unsigned);
        const s = await until(
          () => status(h),
          (x) => x.timeline.some((t) => t.type === 'rejected-attempt'),
          'refused attempt recorded',
        );
        expect(s.timeline.find((t) => t.type === 'rejected-attempt')).toMatchObject({ by: 'carol' });
        expect(s.steps.find((x) => x.id === 'restart-postgres')?.status).toBe('awaiting-approval');
      },
    );
  });
});

describe('signed post-incident actions', () => {
  it('a report started by a signed-era incident verifies signatures and applies its policy; an older one records claims', async () => {
    const contacts = contactsSchema.parse(parse(readFileSync(contactsWith({ allow: ['addNote'] }), 'utf8')));
    const platform = new FakePlatform();
    const { worker, taskQueue } = await productWorker(env, platform.activities());
    await worker.runUntil(async () => {
      const start = async (extra: Partial<PostIncidentInput>) =>
        env.client.workflow.start(postIncidentWorkflow, {
          taskQueue,
          workflowId: uniqueName('post-incident-signed'),
          args: [
            {
              incidentId: 'incident-all-channels-down--customer-success-fte',
              title: 'All channels down',
              severity: 'P1',
              runbookId: 'all-channels-down',
              team: 'platform',
              resolvedAt: new Date(await env.currentTimeMs()).toISOString(),
              reportOwner: 'carol',
              runbookUpdateRequired: false,
              ...extra,
            },
          ],
        });
      const report = { by: 'carol', rootCause: 'the primary ran out of disk', noFollowUps: true };
      const submit = (h: WorkflowHandle, args: Record<string, unknown>) =>
        h.executeUpdate(postIncidentActions.submitReport.update, { args: [args as never] });

      const h = await start({ contacts });
      expect(await refusal(submit(h, report))).toMatch(/submitReport needs a verified identity here/);
      await submit(h, await signed(h, 'submitReport', report));
      const s = await h.query(postIncidentStatusQuery);
      expect(s.timeline.find((t) => t.type === 'report-submitted')).toMatchObject({
        by: 'carol',
        verified: true,
      });
      expect(JSON.stringify(s)).not.toContain(carol.publicKey);

      // Started before reports carried contacts: a signature cannot be checked there, so it is a claim.
      const old = await start({});
      await submit(old, await signed(old, 'submitReport', report));
      const o = await old.query(postIncidentStatusQuery);
      expect(o.timeline.find((t) => t.type === 'report-submitted')).toMatchObject({
        by: 'carol',
        verified: false,
      });
      // A report that says no follow-up is needed may complete at once: ending it may find it closed.
      await Promise.all([h, old].map((x) => x.terminate('test over').catch(() => undefined)));
    });
  });
});
