import { z } from 'zod';
import { publicKeySchema } from './identity.js';

export const targetSchema = z.discriminatedUnion('type', [
  z.strictObject({ type: z.literal('slack'), webhookUrlEnv: z.string().regex(/^[A-Z][A-Z0-9_]*$/) }),
  z.strictObject({
    type: z.literal('webhook'),
    url: z.url(),
    tokenEnv: z
      .string()
      .regex(/^[A-Z][A-Z0-9_]*$/)
      .optional(),
  }),
  z.strictObject({ type: z.literal('log') }),
]);
export type Target = z.infer<typeof targetSchema>;

export const personSchema = z.strictObject({
  name: z.string().regex(/^[a-z0-9][a-z0-9._-]*$/, 'names are lower-case handles, e.g. "alice"'),
  displayName: z.string().optional(),
  targets: z.array(targetSchema).default([{ type: 'log' }]),
  /** Their Ed25519 public key (`incidentctl keys init`): actions they sign are recorded as verified. */
  publicKey: publicKeySchema.optional(),
  /** Their Slack member id: a click on an approval button in Slack acts as this person. */
  slackUserId: z
    .string()
    .regex(/^[UW][A-Z0-9]{2,20}$/, 'a Slack member id, e.g. U024BE7LH')
    .optional(),
});

/** A service that authenticates people itself and signs their actions for them (the receiver's Slack endpoint). */
export const signerSchema = z.strictObject({ name: z.string().min(1).max(100), publicKey: publicKeySchema });

/** What actions without a signature (the `temporal` CLI, the Temporal UI, incidentctl without a key) may do. */
export const policySchema = z.strictObject({
  unverified: z
    .strictObject({
      allow: z
        .array(
          z.enum([
            'acknowledge',
            'approve',
            'reject',
            'resolve',
            'escalate',
            'addNote',
            'completeTask',
            'cancel',
            'submitReport',
            'addFollowUp',
            'completeFollowUp',
            'markRunbookUpdated',
          ]),
        )
        .optional(),
      decideSteps: z.enum(['any', 'low-risk', 'none']).optional(),
    })
    .optional(),
});

/** Roles → people → notification targets. Secrets (webhook URLs, tokens) are named by env variable only. */
export const contactsSchema = z
  .strictObject({
    roles: z.record(
      z.string().regex(/^[a-z][a-z0-9-]*$/),
      z.strictObject({ description: z.string().optional(), people: z.array(z.string()).min(1) }),
    ),
    people: z.array(personSchema).min(1),
    signers: z.array(signerSchema).optional(),
    /** Absent: unsigned actions may do everything, as names were trusted before signatures existed. */
    policy: policySchema.optional(),
  })
  .superRefine((c, ctx) => {
    // A person listed twice would be found by their first entry only: the second one's targets never hear.
    const seen = new Set<string>();
    c.people.forEach((p, i) => {
      if (seen.has(p.name)) {
        ctx.addIssue({ code: 'custom', path: ['people', i, 'name'], message: `"${p.name}" is listed twice` });
      }
      seen.add(p.name);
    });
    const slackIds = new Map<string, string>();
    c.people.forEach((p, i) => {
      if (!p.slackUserId) return;
      const other = slackIds.get(p.slackUserId);
      if (other) {
        ctx.addIssue({
          code: 'custom',
          path: ['people', i, 'slackUserId'],
          message: `${p.slackUserId} is also ${other}'s: a Slack user is one person`,
        });
      }
      slackIds.set(p.slackUserId, p.name);
    });
    const names = seen;
    for (const [role, def] of Object.entries(c.roles)) {
      def.people.forEach((name, i) => {
        if (!names.has(name)) {
          ctx.addIssue({
            code: 'custom',
            path: ['roles', role, 'people', i],
            message: `"${name}" is not listed under people`,
          });
        }
      });
    }
  });
export type Contacts = z.infer<typeof contactsSchema>;

export function rolesOfPerson(contacts: Contacts, person: string): string[] {
  return Object.entries(contacts.roles)
    .filter(([, def]) => def.people.includes(person))
    .map(([role]) => role);
}

export function isKnownPerson(contacts: Contacts, person: string): boolean {
  return contacts.people.some((p) => p.name === person);
}

export function peopleInRoles(contacts: Contacts, roles: string[]): string[] {
  return [...new Set(roles.flatMap((r) => contacts.roles[r]?.people ?? []))];
}
