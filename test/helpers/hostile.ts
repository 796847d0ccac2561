import fc from 'fast-check';

/** Inputs an attacker would try at a decoder: arbitrary text, JSON, and prototype-pollution keys at any depth. */
export const polluted = (): boolean => ({} as Record<string, unknown>).polluted !== undefined || ({} as Record<string, unknown>).isAdmin !== undefined;

/** JSON values with prototype-pollution keys mixed in at any depth. */
export const hostileJson = fc.letrec((tie) => ({
  value: fc.oneof({ depthSize: 'small' }, fc.jsonValue({ maxDepth: 2 }), tie('object'), fc.array(tie('value'), { maxLength: 4 })),
  object: fc
    .array(fc.tuple(fc.oneof(fc.constantFrom('__proto__', 'constructor', 'prototype', 'type', 'title', 'name', 'syntheticHost', 'emoji', 'id'), fc.string({ maxLength: 8 })), tie('value')), { maxLength: 5 })
    .map((entries) => `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${JSON.stringify(v) ?? 'null'}`).join(',')}}`)
    .map((text) => JSON.parse(text) as unknown),
})).value;
export const hostileText = fc.oneof(
  fc.string({ maxLength: 200 }),
  hostileJson.map((v) => JSON.stringify(v) ?? 'null'),
  fc.constantFrom('{"__proto__":{"polluted":1}}', '{"constructor":{"prototype":{"isAdmin":true}}}', 'null', '[]', '""', '1e999', '{"type":"__proto__"}'),
);

