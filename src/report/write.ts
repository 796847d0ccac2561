import { createHash } from 'node:crypto';
import { lstat, mkdir, readFile, readlink, rename, rm, symlink } from 'node:fs/promises';
import { basename, extname, join, resolve } from 'node:path';
import { reportCharts, renderSvg } from './charts.js';
import { renderHtml } from './html.js';
import { renderMarkdown, type Report } from './report.js';
import { writeAtomic } from '../write-atomic.js';

/** SHA-256 of a scenario file's bytes, recorded with each run so a what-if can be repeated exactly. */
export async function fileSha256(path: string): Promise<string> {
  return createHash('sha256').update(await readFile(path)).digest('hex');
}

export interface WrittenReport {
  jsonPath: string;
  mdPath: string;
  htmlPath: string;
  svgPaths: string[];
}

/**
 * Writes report.json, report.md, report.html and one SVG per chart into `dir`. Charts are rendered
 * first, so a rendering error leaves no file; each file goes through a temporary file and a rename.
 */
export async function writeReport(dir: string, report: Report): Promise<WrittenReport> {
  const charts = reportCharts(report);
  const svgs = await Promise.all(charts.map(async (chart) => ({ chart, svg: await renderSvg(chart) })));
  await mkdir(dir, { recursive: true });
  const { summary: _summary, ...json } = report;
  const svgPaths: string[] = [];
  for (const { chart, svg } of svgs) {
    const p = join(dir, `${chart.id}.svg`);
    await writeAtomic(p, svg);
    svgPaths.push(p);
  }
  const jsonPath = join(dir, 'report.json');
  const mdPath = join(dir, 'report.md');
  const htmlPath = join(dir, 'report.html');
  await writeAtomic(mdPath, renderMarkdown(report, charts.map((c) => ({ file: `${c.id}.svg`, title: c.title }))));
  await writeAtomic(htmlPath, renderHtml(report, svgs));
  // report.json last: its presence says the run's files are all there
  await writeAtomic(jsonPath, `${JSON.stringify(json, null, 2)}\n`);
  return { jsonPath, mdPath, htmlPath, svgPaths };
}

/** A folder name for a run: when it started, the scenario, and a short hash of the overrides if any. */
export function runDirName(startedAt: Date, scenarioFile: string, overrides: readonly string[]): string {
  const stamp = startedAt.toISOString().replace(/\.\d+Z$/, '').replace(/:/g, '-');
  const stem = basename(scenarioFile, extname(scenarioFile)).replace(/[^A-Za-z0-9._-]+/g, '-');
  const whatIf = overrides.length ? `-whatif-${createHash('sha256').update(overrides.join('\n')).digest('hex').slice(0, 8)}` : '';
  return `${stamp}-${stem}${whatIf}`;
}

/** Creates a fresh folder for a run under `root`; a name taken by another run gets a -2, -3… suffix. */
export async function createRunDir(root: string, name: string): Promise<string> {
  await mkdir(root, { recursive: true });
  for (let i = 1; ; i++) {
    const dir = join(root, i === 1 ? name : `${name}-${i}`);
    try {
      await mkdir(dir);
      return dir;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST' || i >= 1000) throw err;
    }
  }
}

/** Points `<root>/latest` at `dir` (a relative symlink, replaced atomically). */
export async function pointLatest(root: string, dir: string): Promise<string> {
  const link = join(root, 'latest');
  const tmp = `${link}.${process.pid}.tmp`;
  await rm(tmp, { force: true });
  await symlink(basename(dir), tmp, 'dir');
  await rename(tmp, link);
  return link;
}

/** What `latest` points at, or null. */
export async function latestRun(root: string): Promise<string | null> {
  try {
    if (!(await lstat(join(root, 'latest'))).isSymbolicLink()) return null;
    return resolve(root, await readlink(join(root, 'latest')));
  } catch {
    return null;
  }
}

/** Reads a run's report from its folder (or a report.json path). */
export async function readRun(path: string): Promise<Report> {
  const file = path.endsWith('.json') ? path : join(path, 'report.json');
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch {
    throw new Error(`${path}: no report.json there (is it a run folder?)`);
  }
  const r = JSON.parse(text) as Report;
  if (!Array.isArray(r.series) || !Array.isArray(r.expectations)) throw new Error(`${file}: not a Stampede report`);
  return r;
}
