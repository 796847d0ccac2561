import type { z } from 'zod';

/** One thing wrong with a document: where (`a.b[2].c`) and what. */
export interface Issue {
  path: string;
  message: string;
}

/** A zod issue path as people write it, `assumptions.demand.keyframes[4].at`; `whole` names the document itself. */
export function issuePath(path: readonly PropertyKey[], whole: string): string {
  return path.map((p) => (typeof p === 'number' ? `[${p}]` : String(p))).join('.').replace(/\.\[/g, '[') || whole;
}

/** Every issue of a failed zod parse, with its path written as `issuePath` writes it. */
export function zodIssues(err: z.ZodError, whole: string): Issue[] {
  return err.issues.map((i) => ({ path: issuePath(i.path, whole), message: i.message }));
}
