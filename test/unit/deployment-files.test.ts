import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { z } from 'zod';
import { searchAttributeKeys } from '../../src/workflows/search-attributes.js';
import { projectRoot } from '../helpers/paths.js';

// The contract's search attributes are listed in three places that no compiler links: keep them equal.
const cliType: Record<string, string> = {
  KEYWORD: 'Keyword',
  KEYWORD_LIST: 'KeywordList',
  DATETIME: 'Datetime',
  BOOL: 'Bool',
};
const contract = searchAttributeKeys.map((k) => `${k.name}=${cliType[k.type]}`).sort();

const composeSchema = z.object({
  services: z.record(
    z.string(),
    z.object({
      image: z.string().optional(),
      build: z.string().optional(),
      command: z.union([z.string(), z.array(z.string())]).optional(),
      depends_on: z.record(z.string(), z.object({ condition: z.string() })).optional(),
      volumes: z.array(z.string()).optional(),
      ports: z.array(z.string()).optional(),
      environment: z.record(z.string(), z.union([z.string(), z.number()])).optional(),
      healthcheck: z.object({ test: z.array(z.string()) }).optional(),
      restart: z.string().optional(),
      user: z.string().optional(),
      secrets: z.array(z.string()).optional(),
    }),
  ),
  volumes: z.record(z.string(), z.unknown()).optional(),
  secrets: z.record(z.string(), z.object({ file: z.string() })).optional(),
});

describe('deployment files', () => {
  it('register the same search attributes as the workflows use', async () => {
    const listed = (await readFile(`${projectRoot}scripts/search-attributes.txt`, 'utf8'))
      .split('\n')
      .filter((l) => l.trim() && !l.startsWith('#'))
      .map((l) => l.trim().split(/\s+/).join('='))
      .sort();
    expect(listed).toEqual(contract);

    const compose = composeSchema.parse(parse(await readFile(`${projectRoot}docker-compose.yml`, 'utf8')));
    const command = compose.services.temporal?.command;
    const registered = (Array.isArray(command) ? command : [])
      .filter((a) => a.startsWith('--search-attribute='))
      .map((a) => a.slice('--search-attribute='.length))
      .sort();
    expect(registered).toEqual(contract);
  });

  it('docker-compose.yml is a consistent compose file', async () => {
    const compose = composeSchema.parse(parse(await readFile(`${projectRoot}docker-compose.yml`, 'utf8')));
    const names = Object.keys(compose.services);
    expect(names).toEqual(expect.arrayContaining(['temporal', 'postgres', 'kafka', 'worker']));
    for (const [name, service] of Object.entries(compose.services)) {
      expect(service.image ?? service.build, `${name} has an image or a build`).toBeTruthy();
      for (const dependency of Object.keys(service.depends_on ?? {})) expect(names).toContain(dependency);
      for (const volume of service.volumes ?? []) {
        const source = volume.split(':')[0] as string;
        expect(Object.keys(compose.volumes ?? {}), `volume ${source} of ${name} is declared`).toContain(
          source,
        );
      }
    }
  });

  it("docker-compose.yml binds to loopback, health-checks what runs, applies the schedules, runs the tests' Kafka", async () => {
    const compose = composeSchema.parse(parse(await readFile(`${projectRoot}docker-compose.yml`, 'utf8')));
    for (const [name, service] of Object.entries(compose.services)) {
      for (const port of service.ports ?? []) {
        // host:hostPort:containerPort, the host loopback unless a variable says otherwise (default loopback).
        expect(port, `${name} publishes ${port}`).toMatch(
          /^(127\.0\.0\.1|\$\{[A-Z_]+:-127\.0\.0\.1\}):\d+:\d+$/,
        );
      }
      if (service.restart === 'no') continue;
      expect(service.healthcheck?.test.length, `${name} has a health check`).toBeGreaterThan(0);
    }
    // The worker and the receiver are healthy when their own readiness says so, on the port they listen on.
    expect(compose.services.worker?.healthcheck?.test.join(' ')).toContain(
      `127.0.0.1:${compose.services.worker?.environment?.WORKER_HEALTH_PORT}/readyz`,
    );
    expect(compose.services.receiver?.healthcheck?.test.join(' ')).toContain('127.0.0.1:8088/readyz');
    // The monitors' schedules are applied once Temporal is healthy.
    const schedules = Object.values(compose.services).find((sv) =>
      [sv.command].flat().join(' ').includes('schedules apply'),
    );
    expect(schedules?.depends_on?.temporal?.condition).toBe('service_healthy');
    // The Kafka the tests run.
    const pom = await readFile(`${projectRoot}scripts/kafka-pom.xml`, 'utf8');
    const version = /<kafka\.version>([^<]+)<\/kafka\.version>/.exec(pom)?.[1];
    expect(compose.services.kafka?.image).toBe(`apache/kafka:${version}`);
  });

  it("docker-compose.yml gives each secret to the one service that reads it, readable by the image's user", async () => {
    const compose = composeSchema.parse(parse(await readFile(`${projectRoot}docker-compose.yml`, 'utf8')));
    const copier = compose.services['secret-files'];
    const script = [copier?.command].flat().join(' ');
    expect(copier?.user).toBe('root');
    expect(copier?.restart).toBe('no');
    expect(copier?.secrets?.sort()).toEqual(Object.keys(compose.secrets ?? {}).sort());
    // Each copy: owned by node (the image's USER), readable by it alone.
    const copies = [
      ...script.matchAll(/install -m 0400 -o node -g node \/run\/secrets\/(\S+) \/([\w-]+)\/(\S+)/g),
    ];
    expect(copies.map((c) => c[1]).sort()).toEqual(Object.keys(compose.secrets ?? {}).sort());
    const wants: Record<string, string> = { worker: 'KUBECONFIG', receiver: 'RECEIVER_TOKEN_FILE' };
    for (const [name, variable] of Object.entries(wants)) {
      const service = compose.services[name];
      expect(service?.secrets, `${name} reads copies, not the bind-mounted originals`).toBeUndefined();
      expect(service?.depends_on?.['secret-files']?.condition).toBe('service_completed_successfully');
      const path = String(service?.environment?.[variable]);
      const mount = (service?.volumes ?? [])
        .map((v) => v.split(':'))
        .find(([, at]) => path.startsWith(`${at}/`));
      expect(mount, `${name}: ${variable}=${path} is on a volume`).toBeDefined();
      const [volume, at, mode] = mount ?? [];
      expect(mode).toBe('ro');
      const copy = copies.find((c) => (copier?.volumes ?? []).includes(`${volume}:/${c[2]}`));
      expect(copy && `${at}/${copy[3]}`, `${name}'s ${variable} is the file secret-files writes`).toBe(path);
    }
  });

  it('the Dockerfile copies only paths that exist', async () => {
    const dockerfile = await readFile(`${projectRoot}Dockerfile`, 'utf8');
    const sources = [...dockerfile.matchAll(/^COPY (?!--from)(.+) \S+$/gm)].flatMap((m) =>
      (m[1] as string).split(/\s+/),
    );
    expect(sources.length).toBeGreaterThan(3);
    for (const source of sources) expect(existsSync(`${projectRoot}${source}`), source).toBe(true);
  });

  it('the image runs compiled JavaScript only, as a non-root user', async () => {
    const dockerfile = await readFile(`${projectRoot}Dockerfile`, 'utf8');
    const runtime = dockerfile.slice(dockerfile.lastIndexOf('\nFROM '));
    const copied = [...runtime.matchAll(/^COPY (?!--from)(.+) \S+$/gm)].flatMap((m) =>
      (m[1] as string).split(/\s+/),
    );
    expect(copied).not.toContain('src');
    expect(runtime).toContain('npm ci --omit=dev');
    expect(runtime).not.toMatch(/\btsx\b/);
    expect(runtime).toMatch(/^USER node$/m);
    expect(runtime).toMatch(/^CMD \["node", "dist\/worker\.js"\]$/m);
  });
});
