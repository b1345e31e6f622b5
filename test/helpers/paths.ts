import { fileURLToPath } from 'node:url';

export const projectRoot = fileURLToPath(new URL('../..', import.meta.url));
export const runbooksDir = `${projectRoot}runbooks`;
export const contactsFile = `${projectRoot}config/contacts.yaml`;
