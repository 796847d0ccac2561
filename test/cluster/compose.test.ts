import { readFile, stat } from 'node:fs/promises';
import { isAbsolute, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { buildProgram } from '../../src/cli/main.js';
import { checkHaproxyConfig, haproxyConfig, prometheusTargets } from '../../src/cluster/index.js';

const DIR = fileURLToPath(new URL('../../deploy/cluster/', import.meta.url));
const ROOT = fileURLToPath(new URL('../../', import.meta.url));

interface Service {
  image?: string;
  build?: { context: string; dockerfile: string };
  command?: string[];
  volumes?: string[];
  ports?: string[];
  depends_on?: string[];
  networks?: Record<string, { ipv4_address?: string }>;
}

describe('deploy/cluster/docker-compose.yml (no Docker engine here: parsed and checked)', async () => {
  const compose = parse(await readFile(`${DIR}docker-compose.yml`, 'utf8'), { merge: true }) as { services: Record<string, Service> };
  const instances = Object.entries(compose.services).filter(([name]) => name.startsWith('stampede-'));
  const flag = (cmd: string[], f: string): string | undefined => cmd[cmd.indexOf(f) + 1];

  it('runs Redis, three instances, haproxy and Prometheus from pinned images or the built Stampede image', () => {
    expect(Object.keys(compose.services).sort()).toEqual(['haproxy', 'prometheus', 'redis', 'stampede-1', 'stampede-2', 'stampede-3']);
    for (const [name, s] of Object.entries(compose.services)) {
      if (name.startsWith('stampede-')) expect(s.build).toEqual({ context: '../..', dockerfile: 'deploy/cluster/Dockerfile' });
      else expect(s.image, name).toMatch(/:[v0-9][\w.-]*$/);
    }
  });

  it('each instance is `stampede serve` with options the CLI has, its own id, the shared Redis, and one demo space in all', () => {
    const serve = buildProgram().commands.find((c) => c.name() === 'serve')!;
    const known = new Set(serve.options.map((o) => o.long));
    const ids: string[] = [];
    for (const [name, s] of instances) {
      const cmd = s.command!;
      expect(cmd[0], name).toBe('serve');
      for (const f of cmd.filter((a) => a.startsWith('--'))) expect(known.has(f), `${name}: ${f}`).toBe(true);
      expect(flag(cmd, '--redis')).toBe('redis://redis:6379');
      expect(flag(cmd, '--host')).toBe('0.0.0.0');
      ids.push(flag(cmd, '--instance')!);
    }
    expect(ids).toEqual(['i1', 'i2', 'i3']);
    expect(instances.filter(([, s]) => !s.command!.includes('--no-demo')).map(([n]) => n)).toEqual(['stampede-1']);
  });

  it('haproxy.cfg and targets.json are what src/cluster generates for these instances, and haproxy accepts the config', async () => {
    const servers = instances.map(([name, s]) => ({ name: flag(s.command!, '--instance')!, address: `${name}:${flag(s.command!, '--port')}` }));
    expect(await readFile(`${DIR}haproxy.cfg`, 'utf8')).toBe(haproxyConfig({ bind: '0.0.0.0:8080', statsBind: '0.0.0.0:8404', hostnames: true, servers }));
    await expect(checkHaproxyConfig(`${DIR}haproxy.cfg`)).resolves.toBeUndefined();
    expect(JSON.parse(await readFile(`${DIR}targets.json`, 'utf8'))).toEqual(prometheusTargets(servers.map((s) => ({ id: s.name, address: s.address })), 'stampede'));
    expect(compose.services.haproxy!.ports).toEqual(['127.0.0.1:8080:8080']);
    // every instance believes X-Forwarded-For from the proxy's fixed address, and from no one else
    const proxyAddress = compose.services.haproxy!.networks!.default!.ipv4_address!;
    for (const [name, s] of instances) expect(flag(s.command!, '--set'), name).toBe(`trustedProxies=[${proxyAddress}]`);
  });

  it('Prometheus finds the instances through the mounted targets file, and every mounted file exists', async () => {
    const prom = parse(await readFile(`${DIR}prometheus.yml`, 'utf8')) as { scrape_configs: { job_name: string; file_sd_configs?: { files: string[] }[] }[] };
    const sd = prom.scrape_configs.find((c) => c.job_name === 'stampede')!.file_sd_configs![0]!.files;
    const mounted = (compose.services.prometheus!.volumes ?? []).map((v) => v.split(':')[1]);
    expect(sd.every((f) => mounted.includes(f))).toBe(true);
    for (const [name, s] of Object.entries(compose.services)) {
      for (const v of s.volumes ?? []) {
        const host = v.split(':')[0]!;
        if (!host.startsWith('.') && !isAbsolute(host)) continue; // a named volume
        expect((await stat(resolve(DIR, host)).catch(() => null))?.isFile(), `${name} mounts ${host}`).toBe(true);
      }
    }
  });

  it('the image is built from the repository with its lockfile and runs the CLI; build output and dependencies stay out of the context', async () => {
    const docker = await readFile(`${DIR}Dockerfile`, 'utf8');
    expect(docker).toMatch(/^FROM node:20[\w.-]*$/m);
    expect(docker).toContain('RUN npm ci');
    expect(docker).toContain('RUN npm run build');
    expect(docker).toContain('ENTRYPOINT ["node", "bin/stampede.js"]');
    const ignore = (await readFile(`${ROOT}.dockerignore`, 'utf8')).split('\n');
    for (const p of ['node_modules', 'dist', '.git']) expect(ignore).toContain(p);
  });
});
