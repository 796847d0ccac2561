import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parse as parseYaml, stringify as toYaml } from 'yaml';
import { serverSettings } from '../../src/cli/serve.js';
import { ConfigError, parseServerConfig } from '../../src/config.js';
import { ProfileError, parseProfile } from '../../src/load/profile.js';
import { decodeClientMessage } from '../../src/protocol/index.js';
import { TicketBook } from '../../src/server/tickets.js';
import { parseScenario, ScenarioError } from '../../src/sim/scenario.js';
import { hostileJson, hostileText, polluted } from '../helpers/hostile.js';

/**
 * Property tests on every decoder at a trust boundary (docs/reliability.md #6): whatever comes in, the
 * answer is a typed value or that layer's coded error — never another exception, never a polluted
 * prototype.
 */

describe('WebSocket client messages', () => {
  it('decode to a message or a coded error, never throw, never touch Object.prototype', () => {
    fc.assert(
      fc.property(hostileText, (text) => {
        const r = decodeClientMessage(text);
        if (!r.ok) expect(['BAD_MESSAGE', 'UNKNOWN_TYPE', 'TOO_LARGE']).toContain(r.code);
        expect(polluted()).toBe(false);
      }),
      { numRuns: 3_000 },
    );
  });
});

describe('tickets', () => {
  it('redeem only what was issued: any other string is null, never an exception', () => {
    const book = new TicketBook(30_000);
    const issued = book.issue('s', 'n', 0).ticket;
    fc.assert(
      fc.property(fc.oneof(fc.string({ maxLength: 64 }), fc.string({ minLength: 32, maxLength: 32 }), fc.constantFrom('__proto__', 'constructor', 'toString', 'hasOwnProperty')), (t) => {
        if (t !== issued) expect(book.take(t, 1)).toBeNull();
      }),
      { numRuns: 3_000 },
    );
    expect(book.take(issued, 1)).toMatchObject({ spaceId: 's' });
  });
});

const SCENARIO = readFileSync(new URL('../../scenarios/x-spaces-2024-08-12.yaml', import.meta.url), 'utf8');
const PROFILE = readFileSync(new URL('../../scenarios/load-ws-listeners.yaml', import.meta.url), 'utf8');

/** A document with one value, anywhere in it, replaced by something hostile. */
function mutated(text: string): fc.Arbitrary<string> {
  const doc = parseYaml(text) as unknown;
  const paths: (string | number)[][] = [];
  const walk = (v: unknown, p: (string | number)[]): void => {
    paths.push(p);
    if (v && typeof v === 'object') for (const [k, x] of Object.entries(v)) walk(x, [...p, Array.isArray(v) ? Number(k) : k]);
  };
  walk(doc, []);
  return fc.tuple(fc.constantFrom(...paths), hostileJson, fc.boolean()).map(([path, value, asKey]) => {
    const copy = structuredClone(doc) as Record<string | number, unknown>;
    if (path.length === 0) return toYaml(value);
    let cur = copy as Record<string | number, unknown>;
    for (const k of path.slice(0, -1)) cur = cur[k] as Record<string | number, unknown>;
    const last = path.at(-1)!;
    if (asKey && cur && typeof cur === 'object') Object.defineProperty(cur, '__proto__', { value, enumerable: true, configurable: true, writable: true });
    else cur[last] = value;
    return toYaml(copy);
  });
}

describe('scenario and profile files', () => {
  it('a scenario parses or fails with a ScenarioError naming a path, whatever is in it', () => {
    fc.assert(
      fc.property(fc.oneof(mutated(SCENARIO), fc.string({ maxLength: 300 })), fc.array(fc.string({ maxLength: 40 }), { maxLength: 2 }), (text, sets) => {
        try {
          parseScenario(text, 'fuzz.yaml', sets);
        } catch (err) {
          expect(err).toBeInstanceOf(ScenarioError);
          expect((err as ScenarioError).issues.length).toBeGreaterThan(0);
        }
        expect(polluted()).toBe(false);
      }),
      { numRuns: 200 },
    );
  });

  it('a load profile parses or fails with a ProfileError, whatever is in it', () => {
    fc.assert(
      fc.property(fc.oneof(mutated(PROFILE), fc.string({ maxLength: 300 })), (text) => {
        try {
          parseProfile(text, 'fuzz.yaml');
        } catch (err) {
          expect(err).toBeInstanceOf(ProfileError);
        }
        expect(polluted()).toBe(false);
      }),
      { numRuns: 300 },
    );
  });

  it('server settings (--set and the config object) parse or fail with a ConfigError, whatever is given', () => {
    fc.assert(
      fc.property(fc.array(fc.string({ maxLength: 40 }), { maxLength: 3 }), hostileJson, (sets, raw) => {
        let input: unknown = raw;
        try {
          input = serverSettings(sets);
        } catch (err) {
          expect((err as Error).message).toMatch(/^--set/);
        }
        for (const candidate of [input, raw]) {
          try {
            parseServerConfig(candidate as never);
          } catch (err) {
            expect(err).toBeInstanceOf(ConfigError);
          }
        }
        expect(polluted()).toBe(false);
      }),
      { numRuns: 1_000 },
    );
  });
});
