import { readFile, stat } from 'node:fs/promises';
import { isAbsolute, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { DEFAULT_SPEED } from '../../src/cli/replay.js';
import { RULE_VARIANT_SPEEDS } from '../../src/dashboards/generate.js';

const DIR = fileURLToPath(new URL('../../dashboards/', import.meta.url));

interface Service {
  image?: string;
  volumes?: string[];
  extra_hosts?: string[];
  ports?: string[];
}

describe('dashboards/docker-compose.yml (no Docker engine here: parsed and checked)', async () => {
  const compose = parse(await readFile(`${DIR}docker-compose.yml`, 'utf8')) as { services: Record<string, Service> };
  const prometheusYml = parse(await readFile(`${DIR}prometheus/prometheus.yml`, 'utf8')) as {
    scrape_configs: { job_name: string; static_configs?: { targets: string[] }[] }[];
    rule_files: string[];
  };

  it('starts prometheus and grafana from pinned images', () => {
    expect(Object.keys(compose.services).sort()).toEqual(['grafana', 'prometheus']);
    for (const s of Object.values(compose.services)) expect(s.image).toMatch(/:[v0-9][\w.]*$/);
  });

  it('every host file or directory it mounts exists, with the right kind', async () => {
    let mounts = 0;
    for (const [name, s] of Object.entries(compose.services)) {
      for (const v of s.volumes ?? []) {
        const [host, container] = v.split(':');
        expect(host && container, `${name}: ${v}`).toBeTruthy();
        if (!host!.startsWith('.') && !isAbsolute(host!)) continue; // a named volume
        const st = await stat(resolve(DIR, host!)).catch(() => null);
        expect(st, `${name} mounts ${host} which does not exist`).not.toBeNull();
        const containerLooksLikeFile = /\.(ya?ml|json)$/.test(container!);
        expect(st!.isFile(), `${name}: ${v}`).toBe(containerLooksLikeFile);
        mounts++;
      }
    }
    expect(mounts).toBeGreaterThanOrEqual(6);
  });

  it('prometheus reaches the host through host.docker.internal mapped to host-gateway', () => {
    expect(compose.services.prometheus?.extra_hosts).toContain('host.docker.internal:host-gateway');
    const targets = prometheusYml.scrape_configs.flatMap((c) => (c.static_configs ?? []).flatMap((s) => s.targets));
    expect(targets).toEqual(['host.docker.internal:8080', 'host.docker.internal:9465']);
  });

  it("loads the rules that match the replay's default speed, and mounts them where prometheus.yml looks", () => {
    expect(RULE_VARIANT_SPEEDS).toContain(DEFAULT_SPEED);
    expect(prometheusYml.rule_files).toEqual([`rules-speed${DEFAULT_SPEED}/*.yml`]);
    const mounted = (compose.services.prometheus?.volumes ?? []).map((v) => v.split(':').slice(0, 2));
    expect(mounted).toContainEqual([`./prometheus/rules-speed${DEFAULT_SPEED}`, `/etc/prometheus/rules-speed${DEFAULT_SPEED}`]);
  });

  it('the without-Docker recipe in docs/observability.md copies the same rules next to its config', async () => {
    const doc = await readFile(`${DIR}../docs/observability.md`, 'utf8');
    expect(doc).toContain(`cp -r dashboards/prometheus/rules-speed${DEFAULT_SPEED} /tmp/`);
    expect(doc).toContain("sed 's/host.docker.internal/127.0.0.1/' dashboards/prometheus/prometheus.yml > /tmp/stampede-prom.yml");
  });

  it('grafana gets the provisioned datasource pointing at the prometheus service and both dashboards', async () => {
    const ds = parse(await readFile(`${DIR}grafana/provisioning/datasources/prometheus.yml`, 'utf8')) as { datasources: { type: string; url: string }[] };
    expect(ds.datasources[0]).toMatchObject({ type: 'prometheus', url: 'http://prometheus:9090' });
    const prov = parse(await readFile(`${DIR}grafana/provisioning/dashboards/stampede.yml`, 'utf8')) as { providers: { options: { path: string } }[] };
    const path = prov.providers[0]!.options.path;
    const mounted = (compose.services.grafana?.volumes ?? []).map((v) => v.split(':')[1]!);
    for (const f of ['stampede-outage.json', 'stampede-server.json']) expect(mounted).toContain(`${path}/${f}`);
  });
});
