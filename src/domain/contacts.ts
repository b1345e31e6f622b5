import { z } from 'zod';

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
});

/** Roles → people → notification targets. Secrets (webhook URLs, tokens) are named by env variable only. */
export const contactsSchema = z
  .strictObject({
    roles: z.record(
      z.string().regex(/^[a-z][a-z0-9-]*$/),
      z.strictObject({ description: z.string().optional(), people: z.array(z.string()).min(1) }),
    ),
    people: z.array(personSchema).min(1),
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
