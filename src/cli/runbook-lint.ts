import { InvalidFileError, loadRunbookDir } from '../activities/runbooks.js';

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
