// The Temporal UI views of docs/managers.md, read from the doc itself: the screenshot script opens and saves
// exactly these, and test/integration/managers-doc.test.ts checks them against a real Temporal server.
//
// A view is a fenced block whose info string is `query`, optionally followed by the name the view is saved
// under (```query Reports overdue). Blocks without a name are further examples; they are checked too.

export interface DocQuery {
  /** The saved view's name; absent for an example that is not one of the saved views. */
  name?: string;
  query: string;
  /** 1-based line of the block's opening fence, for messages. */
  line: number;
}

export function docQueries(markdown: string): DocQuery[] {
  const out: DocQuery[] = [];
  const lines = markdown.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const open = /^```query(?:[ \t]+(.+?))?[ \t]*$/.exec(lines[i] as string);
    if (!open) continue;
    const body: string[] = [];
    let j = i + 1;
    while (j < lines.length && !/^```\s*$/.test(lines[j] as string)) body.push(lines[j++] as string);
    if (j >= lines.length) throw new Error(`line ${i + 1}: the query block is not closed`);
    const query = body.join(' ').replace(/\s+/g, ' ').trim();
    out.push({ ...(open[1] ? { name: open[1] } : {}), query, line: i + 1 });
    i = j;
  }
  return out;
}

/** The images the doc shows (`![alt](path)`), relative to the doc. */
export function docImages(markdown: string): string[] {
  return [...markdown.matchAll(/!\[[^\]]*\]\(([^)\s]+)\)/g)].map((m) => m[1] as string);
}

/** Monday 00:00 UTC of the week `now` is in: the start of "this week" in the P1 view. */
export function startOfWeek(now: Date): Date {
  const d = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate()));
  d.setUTCDate(d.getUTCDate() - ((d.getUTCDay() + 6) % 7));
  return d;
}

/**
 * The query with every absolute StartTime bound moved to this week's Monday: Temporal's visibility has no
 * relative time ("now - 7 days"), so a "this week" view names the date, and the doc's example date ages.
 */
export function forThisWeek(query: string, now: Date): string {
  const monday = startOfWeek(now).toISOString().replace('.000Z', 'Z');
  return query.replace(/(StartTime\s*(?:>=|>)\s*)"[^"]*"/g, `$1"${monday}"`);
}
