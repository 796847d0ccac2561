/**
 * The browser-facing policy (docs/reliability.md #26): which Origins may open a WebSocket or call the
 * API across origins. A request without an Origin header is not from a browser page and is not
 * subject to it; a page served by this server (same host) and a loopback page always are allowed.
 */
export function originAllowed(origin: string | undefined, host: string | undefined, allowed: readonly string[]): boolean {
  if (origin === undefined) return true;
  if (allowed.includes('*')) return true;
  let u: URL;
  try {
    u = new URL(origin);
  } catch {
    return false;
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') return false;
  if (host !== undefined && u.host === host.toLowerCase()) return true;
  const h = u.hostname.replace(/^\[|\]$/g, '');
  if (h === 'localhost' || h === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h)) return true;
  return allowed.some((a) => a.replace(/\/$/, '').toLowerCase() === u.origin);
}

/** The methods and request headers a preflight from an allowed origin may use. */
const CORS_METHODS = 'GET, HEAD, POST, OPTIONS';
const CORS_HEADERS = 'authorization, content-type, x-request-id';

/**
 * CORS headers for a request (docs/reliability.md #26): an allowed cross-origin caller gets its own
 * origin echoed (never `*`, so credentials-free clients and caches stay exact); same-origin and
 * non-browser requests need none. `Vary: Origin` whenever the answer depends on it.
 */
export function corsHeaders(origin: string | undefined, preflight: boolean): Record<string, string> {
  if (origin === undefined) return {};
  const h: Record<string, string> = { 'access-control-allow-origin': origin, vary: 'Origin' };
  if (preflight) {
    h['access-control-allow-methods'] = CORS_METHODS;
    h['access-control-allow-headers'] = CORS_HEADERS;
    h['access-control-max-age'] = '600';
  }
  return h;
}
