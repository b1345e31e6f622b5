import { fileURLToPath } from 'node:url';
import { InvalidFileError, loadRunbookDir } from '../activities/runbooks.js';

const root = fileURLToPath(new URL('../..', import.meta.url));

/** Validates every runbook and the contacts file; prints one line per problem. Returns the exit code. */
export async function lintRunbooks(
  runbooksDir: string,
  contactsFile: string,
  out = console,
): Promise<number> {
  try {
    const { runbooks } = await loadRunbookDir(runbooksDir, contactsFile);
    out.log(
      `ok: ${runbooks.length} runbooks (${runbooks.map((r) => r.runbook.id).join(', ')}) and ${contactsFile}`,
    );
    return 0;
  } catch (error) {
    if (!(error instanceof InvalidFileError)) throw error;
    out.error(error.message);
    out.error(`${error.problems.length} problem(s)`);
    return 1;
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const [
    dir = process.env.RUNBOOKS_DIR ?? `${root}runbooks`,
    contacts = process.env.CONTACTS_FILE ?? `${root}config/contacts.yaml`,
  ] = process.argv.slice(2);
  lintRunbooks(dir, contacts).then((code) => process.exit(code));
}
