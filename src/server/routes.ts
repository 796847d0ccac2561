import type { Route } from '../metrics/index.js';

/** One row of the route table: a path pattern (`:name` matches one segment), a method and its handler. */
export interface RouteDef<C> {
  method: 'GET' | 'POST';
  /** Also answers HEAD (the body is dropped by node:http). */
  head?: boolean;
  path: string;
  /** The `route` label of the request metrics. */
  route: Route;
  handle(ctx: C, params: Record<string, string>): Promise<void> | void;
}

export type RouteMatch<C> =
  | { kind: 'found'; def: RouteDef<C>; params: Record<string, string> }
  | { kind: 'method_not_allowed'; route: Route; allow: string[] }
  | { kind: 'not_found' };

/**
 * A declarative route table, matched by path segments (empty segments are ignored, as in `/api//v1`).
 * A path that matches with another method gives the methods it allows, for a 405 with `Allow`.
 */
export class RouteTable<C> {
  /** The rows by their number of segments, each list in table order: a path is tried only against rows of its length. */
  private readonly byLength = new Map<number, { def: RouteDef<C>; segments: string[] }[]>();

  constructor(defs: readonly RouteDef<C>[]) {
    for (const def of defs) {
      const segments = def.path.split('/').filter(Boolean);
      const rows = this.byLength.get(segments.length) ?? [];
      rows.push({ def, segments });
      this.byLength.set(segments.length, rows);
    }
  }

  /**
   * The last matches found, by method and path: the few paths a crowd sends over and over (a space's join
   * and details) skip the split. Bounded: emptied when full, so a client naming endless paths costs a miss.
   */
  private readonly recent = new Map<string, RouteMatch<C>>();

  match(method: string, path: string): RouteMatch<C> {
    const key = `${method} ${path}`;
    const hit = this.recent.get(key);
    if (hit) return hit;
    const m = this.find(method, path);
    if (m.kind === 'found') {
      if (this.recent.size >= 256) this.recent.clear();
      this.recent.set(key, m);
    }
    return m;
  }

  private find(method: string, path: string): RouteMatch<C> {
    const parts = path.split('/').filter(Boolean);
    let sameRoute: Route | null = null;
    const allow: string[] = [];
    for (const { def, segments } of this.byLength.get(parts.length) ?? []) {
      const params = matchSegments(segments, parts);
      if (!params) continue;
      // the params are shared by every request of the same path (the match is kept): nobody may change them
      if (def.method === method || (def.head && method === 'HEAD')) return { kind: 'found', def, params: Object.freeze(params) };
      sameRoute ??= def.route;
      allow.push(def.method, ...(def.head ? ['HEAD'] : []));
    }
    return sameRoute ? { kind: 'method_not_allowed', route: sameRoute, allow } : { kind: 'not_found' };
  }
}

function matchSegments(pattern: readonly string[], parts: readonly string[]): Record<string, string> | null {
  if (pattern.length !== parts.length) return null;
  // the literal segments first: a row that does not match allocates nothing
  for (let i = 0; i < pattern.length; i++) if (pattern[i]![0] !== ':' && pattern[i] !== parts[i]) return null;
  const params: Record<string, string> = {};
  for (let i = 0; i < pattern.length; i++) if (pattern[i]![0] === ':') params[pattern[i]!.slice(1)] = parts[i]!;
  return params;
}
