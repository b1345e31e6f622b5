import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parse, stringify } from 'yaml';
import { contactsFile } from './paths.js';

/**
 * The project's contacts file with every person reached on a webhook of their own (`<base>/page/<name>`), so a
 * test can see what each was sent. Written into `dir`; answers its path (for CONTACTS_FILE).
 */
export async function writeWebhookContacts(dir: string, base: string): Promise<string> {
  const contacts = parse(await readFile(contactsFile, 'utf8')) as {
    people: { name: string; targets: unknown[] }[];
  };
  for (const person of contacts.people) {
    person.targets = [{ type: 'webhook', url: `${base}/page/${person.name}` }];
  }
  const path = join(dir, 'contacts.yaml');
  await writeFile(path, stringify(contacts));
  return path;
}
