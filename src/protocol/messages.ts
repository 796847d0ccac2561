import { z } from 'zod';
import { issuePath } from './issues.js';
import { REACTIONS, type SpaceSnapshot, type SpaceState, type Role } from '../space/index.js';

export const PROTOCOL_VERSION = 1;

/** Longest text message a client may send; ws enforces the frame limit, this bounds JSON work. */
export const MAX_CLIENT_TEXT = 4096;

const clientMessage = z.discriminatedUnion('type', [
  z.strictObject({ type: z.literal('react'), emoji: z.enum(REACTIONS) }),
  z.strictObject({ type: z.literal('request_speak') }),
  z.strictObject({ type: z.literal('grant_speak'), listenerId: z.string().min(1).max(64) }),
  z.strictObject({ type: z.literal('ping'), id: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER) }),
]);

export type ClientMessage = z.infer<typeof clientMessage>;
export const CLIENT_TYPES = ['react', 'request_speak', 'grant_speak', 'ping'] as const;

export type ClientDecodeError = 'BAD_MESSAGE' | 'UNKNOWN_TYPE' | 'TOO_LARGE';
export type ClientDecodeResult = { ok: true; msg: ClientMessage } | { ok: false; code: ClientDecodeError; message: string };

/** JSON.parse reviver that refuses prototype-pollution keys anywhere in the document. */
function noProtoKeys(key: string, value: unknown): unknown {
  if (key === '__proto__' || key === 'constructor' || key === 'prototype') throw new SyntaxError(`forbidden key '${key}'`);
  return value;
}

/** Decodes one text message from a client. Never throws: a typed message or a coded error. */
export function decodeClientMessage(text: string): ClientDecodeResult {
  if (text.length > MAX_CLIENT_TEXT) return { ok: false, code: 'TOO_LARGE', message: `text messages are limited to ${MAX_CLIENT_TEXT} characters` };
  let raw: unknown;
  try {
    raw = JSON.parse(text, noProtoKeys);
  } catch (err) {
    return { ok: false, code: 'BAD_MESSAGE', message: `not valid JSON: ${(err as Error).message.slice(0, 120)}` };
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) return { ok: false, code: 'BAD_MESSAGE', message: 'a message must be a JSON object' };
  const type = (raw as { type?: unknown }).type;
  if (typeof type !== 'string') return { ok: false, code: 'BAD_MESSAGE', message: "a message needs a string 'type'" };
  if (!(CLIENT_TYPES as readonly string[]).includes(type)) {
    return { ok: false, code: 'UNKNOWN_TYPE', message: `unknown message type '${type.slice(0, 40)}'; expected one of ${CLIENT_TYPES.join(', ')}` };
  }
  const parsed = clientMessage.safeParse(raw);
  if (!parsed.success) {
    const first = parsed.error.issues[0];
    const where = first ? issuePath(first.path, 'message') : 'message';
    return { ok: false, code: 'BAD_MESSAGE', message: `${type}: ${where}: ${first?.message ?? 'invalid'}` };
  }
  return { ok: true, msg: parsed.data };
}

export type ServerMessage =
  | { type: 'welcome'; listenerId: string; role: Role; space: SpaceSnapshot }
  | { type: 'state'; state: SpaceState; at: string }
  | { type: 'count'; real: number; virtual: number; total: number; simTime: string | null; timeZone?: string }
  | { type: 'reactions'; counts: Record<string, number> }
  | { type: 'speakers'; speakers: { id: string; name: string }[] }
  | { type: 'speak_request'; listenerId: string; name: string }
  | { type: 'error'; code: string; message: string }
  | { type: 'pong'; id: number };

export function encodeServerMessage(msg: ServerMessage): string {
  return JSON.stringify({ v: PROTOCOL_VERSION, ...msg });
}
