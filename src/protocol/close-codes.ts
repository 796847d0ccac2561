/**
 * Every WebSocket close code Stampede sends, with whether a client may reconnect.
 * 4000–4499 may reconnect, 4500–4999 must not (docs/protocol.md).
 */
export const CLOSE = {
  GOING_AWAY: 1001,
  /** A frame-level violation (ws closes with it on a receiving error). */
  PROTOCOL_ERROR: 1002,
  INVALID_PAYLOAD: 1007,
  POLICY: 1008,
  TOO_BIG: 1009,
  TRY_AGAIN_LATER: 1013,
  SLOW_CONSUMER: 4001,
  REPLACED: 4002,
  /** The space crashed under its listeners (a replay's crash): reconnect, to the room that reopens in its place if there is one. */
  SPACE_CRASHED: 4003,
  SPACE_ENDED: 4500,
} as const;

export type CloseCode = (typeof CLOSE)[keyof typeof CLOSE];

/** A closed set of label values for metrics: any other code (e.g. 1006 from the peer) becomes "other". */
export function closeCodeLabel(code: number): string {
  for (const v of Object.values(CLOSE)) if (v === code) return String(code);
  // codes a peer may close with, or that the client library reports (1006: no close frame)
  if (code === 1000 || code === 1005 || code === 1006) return String(code);
  return 'other';
}

export function mayReconnect(code: number): boolean {
  if (code >= 4500 && code <= 4999) return false;
  // a replaced connection must not come back and replace its replacement
  return code !== CLOSE.PROTOCOL_ERROR && code !== CLOSE.POLICY && code !== CLOSE.TOO_BIG && code !== CLOSE.INVALID_PAYLOAD && code !== CLOSE.REPLACED;
}
