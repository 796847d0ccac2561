import { readFile } from 'node:fs/promises';

/**
 * `node dist/bench/profile-top.js FILE.cpuprofile [N]`: the N functions with the most self time in a
 * V8 CPU profile (as written by `--cpu-prof`, e.g. with BENCH_CPU_PROF=dir), with their share of the
 * samples — the table the bench notes quote.
 */
interface Node {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
}

const [file, n = '25'] = process.argv.slice(2);
if (!file) {
  console.error('usage: profile-top FILE.cpuprofile [N]');
  process.exit(2);
}
const prof = JSON.parse(await readFile(file, 'utf8')) as { nodes: Node[]; samples: number[] };
const hits = new Map<number, number>();
for (const s of prof.samples) hits.set(s, (hits.get(s) ?? 0) + 1);
const byFn = new Map<string, number>();
for (const node of prof.nodes) {
  const h = hits.get(node.id) ?? 0;
  if (!h) continue;
  const f = node.callFrame;
  const where = f.url ? `${f.url.replace(/^.*\/(node_modules|dist|src)\//, '$1/')}:${f.lineNumber + 1}` : '';
  const key = `${f.functionName || '(anonymous)'} ${where}`.trim();
  byFn.set(key, (byFn.get(key) ?? 0) + h);
}
const total = prof.samples.length;
console.log(`${total} samples`);
for (const [k, v] of [...byFn].sort((a, b) => b[1] - a[1]).slice(0, Number(n))) console.log(`${((v / total) * 100).toFixed(1).padStart(5)}%  ${k}`);
