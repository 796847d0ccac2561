import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';

const SRC = new URL('../../src/', import.meta.url).pathname;

function tsFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? tsFiles(join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : []));
}

/** What only src/cli may touch (docs/architecture.md); the import rules are checked by dependency-cruiser (`npm run deps`). */
const PROCESS_STATE = /(?<![\w.])process\.(argv|env|exit|exitCode|on|once|off|kill)\b/;

describe('the layering', () => {
  it('leaves argv, env, signals and the exit code to src/cli', () => {
    const offenders = tsFiles(SRC)
      .filter((f) => !relative(SRC, f).startsWith('cli/'))
      .flatMap((f) => readFileSync(f, 'utf8').split('\n').map((line, i) => ({ where: `src/${relative(SRC, f)}:${i + 1}`, line })))
      .filter(({ line }) => PROCESS_STATE.test(line) && !/^\s*(\*|\/\/)/.test(line))
      .map(({ where, line }) => `${where}: ${line.trim()}`);
    expect(offenders).toEqual([]);
  });

  it('would see a planted use of process state (the check is not vacuous)', () => {
    expect(PROCESS_STATE.test("const port = Number(process.env.PORT ?? 8080);")).toBe(true);
    expect(PROCESS_STATE.test('process.on("SIGINT", stop);')).toBe(true);
    expect(PROCESS_STATE.test('process.stdout.write(text);')).toBe(false);
  });
});
