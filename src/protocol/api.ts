import { z } from 'zod';
import { ApiError } from './errors.js';
import { zodIssues } from './issues.js';

/** Request bodies of the HTTP API (docs/protocol.md); an empty body reads as `{}`. */
export const createSpaceBody = z.strictObject({
  title: z.string().trim().min(1).max(200),
  scheduledStart: z.iso.datetime({ offset: true }),
  host: z.strictObject({ name: z.string().trim().min(1).max(64) }).optional(),
});

export const joinBody = z.strictObject({ name: z.string().trim().min(1).max(64).optional() });

/** `POST …/start` and `…/end`: with `syntheticHost: true`, start has a built-in host send audio. */
export const hostActionBody = z.strictObject({ syntheticHost: z.boolean().optional() });

/** `GET /api/v1/spaces?limit=&after=`: a page of at most `limit` (1 to maxPage) spaces after the space `after`. */
export const listSpacesQuery = (maxPage: number) =>
  z.strictObject({
    limit: z.coerce.number().int().min(1).max(maxPage).optional(),
    after: z.string().regex(/^[A-Za-z0-9_-]{1,64}$/).optional(),
  });

/** Parses a request body with its schema, or throws 400 BAD_REQUEST naming every issue. */
export function parseBody<S extends z.ZodType>(schema: S, body: unknown, what: string): z.output<S> {
  const r = schema.safeParse(body);
  if (!r.success) throw new ApiError('BAD_REQUEST', what, { issues: zodIssues(r.error, '(body)') });
  return r.data;
}
