/** Test-only view of the handle bit layout in docs/raw-contract.md, to forge handles of every wrong kind. */
export interface HandleParts {
  env: number;
  backend: number;
  kind: number;
  generation: number;
  slot: number;
}

export function decodeHandle(handle: number): HandleParts {
  const h = BigInt(handle);
  const tag = Number((h >> 41n) & 0xfn);
  return {
    env: Number(h >> 45n),
    backend: tag >> 2,
    kind: tag & 3,
    generation: Number((h >> 22n) & 0x7ffffn),
    slot: Number(h & 0x3fffffn),
  };
}

export function encodeHandle(p: HandleParts): number {
  const tag = BigInt((p.backend << 2) | p.kind);
  return Number((BigInt(p.env) << 45n) | (tag << 41n) | (BigInt(p.generation) << 22n) | BigInt(p.slot));
}

export const BACKEND_ID = { cpp: 1, rust: 2 } as const;
export const KIND = { string: 1, subscription: 2 } as const;
