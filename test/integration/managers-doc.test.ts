import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { devServerEnv } from '../helpers/services.js';
import { projectRoot, runbooksDir } from '../helpers/paths.js';
import { docImages, docQueries, forThisWeek } from '../../scripts/managers-views.js';
import { searchAttributeKeys } from '../../src/workflows/search-attributes.js';
import { incidentStatuses } from '../../src/domain/incident.js';
import { severitySchema } from '../../src/domain/severity.js';
import type { ReportStatus } from '../../src/domain/post-incident.js';

// docs/managers.md tells managers which queries to save as views in the Temporal UI, and
// scripts/screenshots.sh opens exactly those. Without a browser, this keeps the page true: every query is
// accepted by a real Temporal server with the contract's search attributes, names only the contract's
// attributes (and Temporal's own), compares them only with values the product writes, and every picture
// the page shows exists.
const docPath = join(projectRoot, 'docs/managers.md');
const doc = readFileSync(docPath, 'utf8');
const queries = docQueries(doc);

const runbooks = readdirSync(runbooksDir)
  .filter((f) => f.endsWith('.yaml'))
  .map((f) => readFileSync(join(runbooksDir, f), 'utf8'));
const runbookIds = runbooks.flatMap((t) => [...t.matchAll(/^id: *(\S+)/gm)].map((m) => m[1] as string));
const teams = runbooks.flatMap((t) => [...t.matchAll(/^team: *(\S+)/gm)].map((m) => m[1] as string));
const stepIds = runbooks.flatMap((t) => [...t.matchAll(/\bid: *([\w-]+)/g)].map((m) => m[1] as string));
const reportStatuses = ['Pending', 'Submitted', 'Overdue'] satisfies ReportStatus[];

/** Values the product writes (or Temporal has), per attribute; Datetime attributes take any valid date. */
const values: Record<string, readonly string[] | 'datetime' | 'bool'> = {
  IncidentSeverity: severitySchema.options,
  IncidentStatus: incidentStatuses,
  IncidentRunbook: runbookIds,
  IncidentTeam: teams,
  AwaitingApproval: stepIds,
  ReportStatus: reportStatuses,
  ReportDueAt: 'datetime',
  IncidentDrill: 'bool',
  WorkflowType: ['incidentWorkflow', 'postIncidentWorkflow'],
  ExecutionStatus: ['Running', 'Completed', 'Failed', 'Canceled', 'Terminated', 'ContinuedAsNew', 'TimedOut'],
  StartTime: 'datetime',
  CloseTime: 'datetime',
};
const contract = new Set(searchAttributeKeys.map((k) => k.name));
const temporalOwn = new Set(['WorkflowType', 'ExecutionStatus', 'StartTime', 'CloseTime']);
const keywords = new Set(['AND', 'OR', 'NOT', 'IN', 'IS', 'NULL', 'BETWEEN', 'STARTS_WITH', 'TRUE', 'FALSE']);

/** The attribute names a query uses: every bare word outside string literals that is not a keyword. */
function attributesOf(query: string): string[] {
  const bare = query.replace(/"[^"]*"|'[^']*'/g, ' ').replace(/`/g, '');
  return [...bare.matchAll(/[A-Za-z_]\w*/g)].map((m) => m[0]).filter((w) => !keywords.has(w.toUpperCase()));
}

/** Every `Attribute <op> value` of a query. */
function comparisons(query: string): { attribute: string; value: string }[] {
  return [
    ...query.matchAll(/`?([A-Za-z_]\w*)`?\s*(?:=|!=|<=|>=|<|>)\s*(?:"([^"]*)"|'([^']*)'|([\w.:-]+))/g),
  ].map((m) => ({ attribute: m[1] as string, value: (m[2] ?? m[3] ?? m[4]) as string }));
}

describe('docs/managers.md', () => {
  let env: TestWorkflowEnvironment;
  beforeAll(async () => {
    env = await devServerEnv();
  });
  afterAll(async () => {
    await env?.teardown();
  });

  it('has the saved views the page promises, each with a name', () => {
    const named = queries.filter((q) => q.name).map((q) => q.query);
    expect(named.some((q) => /ReportStatus\s*=\s*"Overdue"/.test(q))).toBe(true);
    expect(named.some((q) => /IncidentStatus\s*=\s*"AwaitingApproval"/.test(q))).toBe(true);
    expect(named.some((q) => /IncidentSeverity\s*=\s*"P1"/.test(q) && /StartTime/.test(q))).toBe(true);
    expect(new Set(queries.map((q) => q.name ?? q.query)).size).toBe(queries.length);
  });

  it('names only the contract search attributes and Temporal own, with values the product writes', () => {
    expect(queries.length).toBeGreaterThanOrEqual(4);
    for (const q of queries) {
      const where = `docs/managers.md:${q.line}: ${q.query}`;
      for (const name of attributesOf(q.query)) {
        expect(contract.has(name) || temporalOwn.has(name), `${where}: unknown attribute ${name}`).toBe(true);
      }
      for (const { attribute, value } of comparisons(q.query)) {
        const allowed = values[attribute];
        if (allowed === 'datetime')
          expect(Number.isNaN(Date.parse(value)), `${where}: date ${value}`).toBe(false);
        else if (allowed === 'bool') expect(['true', 'false'], `${where}: ${attribute}`).toContain(value);
        else expect(allowed ?? [], `${where}: ${attribute}=${value}`).toContain(value);
      }
    }
  });

  it('describes every search attribute of the contract and every IncidentStatus value', () => {
    for (const key of searchAttributeKeys) expect(doc, key.name).toContain(`| \`${key.name}\``);
    for (const status of incidentStatuses) expect(doc, status).toContain(`| \`${status}\``);
    for (const status of reportStatuses) expect(doc, status).toContain(`\`${status}\``);
  });

  it('only has queries the Temporal server accepts', async () => {
    // The check itself must be able to fail: a wrong attribute and a broken query are refused.
    await expect(env.client.workflow.count('NoSuchAttribute="x"')).rejects.toThrow();
    await expect(env.client.workflow.count('ReportStatus="Overdue" AND')).rejects.toThrow();
    for (const q of queries) {
      const variants = [q.query, forThisWeek(q.query, new Date())];
      for (const query of variants) {
        await expect(
          env.client.workflow.count(query).then(() => 'accepted'),
          `docs/managers.md:${q.line}: ${query}`,
        ).resolves.toBe('accepted');
      }
    }
  });

  it('moves a "this week" query to this week', () => {
    const q = 'IncidentSeverity="P1" AND StartTime >= "2026-11-30T00:00:00Z"';
    expect(forThisWeek(q, new Date('2026-12-06T23:59:00Z'))).toBe(q);
    expect(forThisWeek(q, new Date('2026-12-07T00:00:00Z'))).toContain('StartTime >= "2026-12-07T00:00:00Z"');
    expect(forThisWeek(q, new Date('2026-12-02T10:00:00Z'))).toContain('"2026-11-30T00:00:00Z"');
  });

  it('shows only pictures that exist', () => {
    const images = docImages(doc);
    expect(images.length).toBeGreaterThanOrEqual(5);
    for (const image of images) {
      expect(existsSync(join(dirname(docPath), image)), `docs/managers.md shows ${image}`).toBe(true);
    }
  });
});
