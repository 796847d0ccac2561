import { z } from 'zod';
import { REACTIONS } from '../space/index.js';

/**
 * What instances say to each other over Redis. Audio travels as one binary envelope per chunk (the
 * chunk's bytes untouched); everything else is small JSON, validated on the way in: a message from
 * Redis is trusted no more than one from a client, so decoding never throws.
 */
export const ENVELOPE_VERSION = 1;
const ID = /^[A-Za-z0-9_-]{1,64}$/;

/** [version u8][from length u8][from][space length u8][space][chunk bytes…] */
export function encodeAudioEnvelope(from: string, spaceId: string, chunk: Buffer): Buffer {
  const f = Buffer.from(from);
  const s = Buffer.from(spaceId);
  if (f.length > 255 || s.length > 255) throw new RangeError('instance and space ids are at most 255 bytes');
  const head = Buffer.allocUnsafe(3 + f.length + s.length);
  head.writeUInt8(ENVELOPE_VERSION, 0);
  head.writeUInt8(f.length, 1);
  f.copy(head, 2);
  head.writeUInt8(s.length, 2 + f.length);
  s.copy(head, 3 + f.length);
  return Buffer.concat([head, chunk]);
}

export function decodeAudioEnvelope(buf: Buffer): { from: string; spaceId: string; chunk: Buffer } | null {
  if (buf.length < 3 || buf[0] !== ENVELOPE_VERSION) return null;
  const fl = buf[1]!;
  if (buf.length < 3 + fl) return null;
  const sl = buf[2 + fl]!;
  const start = 3 + fl + sl;
  if (buf.length < start) return null;
  const from = buf.toString('utf8', 2, 2 + fl);
  const spaceId = buf.toString('utf8', 3 + fl, start);
  if (!ID.test(from) || !ID.test(spaceId)) return null;
  return { from, spaceId, chunk: buf.subarray(start) };
}

const id = z.string().regex(ID);
const count = z.number().int().min(0).max(1e10);
const ms = z.number().int().min(0).max(8.64e15).nullable();

export const spaceAnnouncement = z.strictObject({
  id,
  title: z.string().min(1).max(200),
  hostName: z.string().min(1).max(64),
  scheduledStart: z.number().int().min(0).max(8.64e15),
  state: z.enum(['scheduled', 'live', 'ended']),
  startedAt: ms,
  endedAt: ms,
  /** SHA-256 of the host token, hex: any instance can check a host without the token itself travelling. */
  hostTokenHash: z.string().regex(/^[0-9a-f]{64}$/),
  /** The instance that owns the space: it announces it, holds its lease and writes its recording. */
  owner: id,
  /** A built-in synthetic host speaks in it (the one who takes the space over starts it again). */
  synthetic: z.boolean(),
  /** Audio chunks the space has taken so far; on the owner's "ended" it is the final count, the recording's length. */
  chunks: count,
  /** On "ended": the close code the owner closed its listeners with (4003 when the room crashed); every instance closes its own with it. */
  closeCode: z.number().int().min(1000).max(4999).optional(),
});
export type SpaceAnnouncement = z.infer<typeof spaceAnnouncement>;

/**
 * A scenario audio fault in force on the instance a replay drives, for every instance's fan-out: the
 * replay's instance has no listeners of its own on a cluster (docs/cluster.md). A null space: every space.
 */
export const sharedFault = z.discriminatedUnion('kind', [
  z.strictObject({ kind: z.literal('drop'), spaceId: id.nullable(), share: z.number().min(0).max(1) }),
  z.strictObject({ kind: z.literal('stall'), spaceId: id.nullable() }),
  z.strictObject({ kind: z.literal('duplicate'), spaceId: id.nullable(), delayChunks: z.number().int().min(1).max(600) }),
]);
export type SharedFault = z.infer<typeof sharedFault>;

export const instanceCounts = z.strictObject({
  /** Real listeners on the sending instance, per space. */
  real: z.record(id, count),
  /** Modelled listeners per space, from the instance the replay drives (others send none). */
  virtual: z.record(id, count),
  simTime: z.string().max(40).nullable(),
  /** The IANA time zone of the replay's night, from the instance the replay drives (others send none). */
  simTimeZone: z.string().min(1).max(64).optional(),
  /** The replay model's verdict on the join path, from the instance the replay drives (others send none): every instance gates real joins by it. */
  gate: z.strictObject({ availability: z.number().min(0).max(1), latencyMs: z.number().min(0).max(3_600_000) }).optional(),
  /** The replay's audio faults in force now, from the instance the replay drives: every instance plays them on its own fan-out. */
  faults: z.array(sharedFault).max(32).optional(),
});
export type InstanceCounts = z.infer<typeof instanceCounts>;

export const reactionCounts = z.partialRecord(z.enum(REACTIONS), count);
export type ReactionCounts = z.infer<typeof reactionCounts>;

export const controlMessage = z.discriminatedUnion('t', [
  z.strictObject({ t: z.literal('space'), from: id, space: spaceAnnouncement }),
  z.strictObject({ t: z.literal('counts'), from: id, counts: instanceCounts }),
  z.strictObject({ t: z.literal('reactions'), from: id, spaceId: id, counts: reactionCounts }),
]);
export type ControlMessage = z.infer<typeof controlMessage>;

export function encodeControl(msg: ControlMessage): string {
  return JSON.stringify(msg);
}

export function decodeControl(buf: Buffer | string): ControlMessage | null {
  let raw: unknown;
  try {
    raw = JSON.parse(buf.toString());
  } catch {
    return null;
  }
  const r = controlMessage.safeParse(raw);
  return r.success ? r.data : null;
}

/** What each instance says about itself, under its own key with a short expiry (GET /api/v1/cluster). */
export const instanceStatus = z.strictObject({
  id,
  url: z.string().max(300),
  state: z.enum(['ready', 'draining', 'shedding']),
  listeners: count,
  connections: count,
  startedAt: z.number().int(),
  at: z.number().int(),
});
export type InstanceStatus = z.infer<typeof instanceStatus>;

export function decodeInstanceStatus(s: string): InstanceStatus | null {
  try {
    const r = instanceStatus.safeParse(JSON.parse(s));
    return r.success ? r.data : null;
  } catch {
    return null;
  }
}
