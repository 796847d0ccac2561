/**
 * The one catalogue of errors a client can see over HTTP. Callers never invent ad-hoc messages:
 * they pick a code and add details. docs/protocol.md lists the same table.
 */
export const API_ERRORS = {
  BAD_JSON: { status: 400, message: 'the body is not valid JSON' },
  BAD_REQUEST: { status: 400, message: 'the request has the wrong shape' },
  BODY_TOO_LARGE: { status: 413, message: 'the body is too large' },
  UNSUPPORTED_MEDIA_TYPE: { status: 415, message: 'the body must be application/json' },
  UNAUTHORIZED: { status: 401, message: 'this action needs a token (Authorization: Bearer <token>)' },
  FORBIDDEN: { status: 403, message: 'the token does not allow this action' },
  ORIGIN_FORBIDDEN: { status: 403, message: 'pages from this origin may not use this server' },
  TICKET_INVALID: { status: 401, message: 'the ticket is missing, unknown, already used or expired' },
  SPACE_NOT_FOUND: { status: 404, message: 'no such space' },
  NOT_FOUND: { status: 404, message: 'no such route' },
  METHOD_NOT_ALLOWED: { status: 405, message: 'method not allowed on this route' },
  INVALID_TRANSITION: { status: 409, message: 'the space cannot make that transition' },
  SPACE_ENDED: { status: 409, message: 'the space has ended' },
  SPACE_LIMIT: { status: 409, message: 'the server holds as many spaces as it may: end one first' },
  RECORDING_QUOTA: { status: 507, message: 'the recordings have reached their disk quota' },
  RECORDING_NOT_READY: { status: 409, message: 'the recording is published when the space ends' },
  RECORDING_LOST: { status: 410, message: 'the recording was lost: a write failed while the space was live' },
  CHUNK_NOT_FOUND: { status: 404, message: 'no such audio chunk: not yet sent, or out of the live window' },
  RATE_LIMITED: { status: 429, message: 'too many joins right now' },
  TOO_MANY_CONNECTIONS: { status: 429, message: 'too many connections from this address' },
  TOO_MANY_TICKETS: { status: 429, message: 'this address holds too many unused join tickets' },
  CAPACITY: { status: 503, message: 'the space is at its listener cap' },
  OVERLOADED: { status: 503, message: 'the server is shedding load' },
  JOIN_FAILED: { status: 503, message: 'This Space is not available' },
  DRAINING: { status: 503, message: 'the server is shutting down' },
  INTERNAL: { status: 500, message: 'internal error' },
} as const satisfies Record<string, { status: number; message: string }>;

export type ApiErrorCode = keyof typeof API_ERRORS;

export interface ErrorBody {
  v: 1;
  error: {
    code: ApiErrorCode;
    message: string;
    retryAfterMs?: number;
    issues?: { path: string; message: string }[];
  };
}

export class ApiError extends Error {
  readonly status: number;
  constructor(
    readonly code: ApiErrorCode,
    message?: string,
    readonly extra: { retryAfterMs?: number; issues?: { path: string; message: string }[]; allow?: string[] } = {},
  ) {
    super(message ?? API_ERRORS[code].message);
    this.name = 'ApiError';
    this.status = API_ERRORS[code].status;
  }

  body(): ErrorBody {
    const error: ErrorBody['error'] = { code: this.code, message: this.message };
    if (this.extra.retryAfterMs !== undefined) error.retryAfterMs = this.extra.retryAfterMs;
    if (this.extra.issues) error.issues = this.extra.issues;
    return { v: 1, error };
  }
}
