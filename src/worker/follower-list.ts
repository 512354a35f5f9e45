import type { RemediationRequest } from '../contract/request.ts';

/** What answering a request needs of it (toOutcome): a follower keeps only this, not its request. */
export type AnsweredRequest = Pick<RemediationRequest, 'requestId' | 'agentId' | 'resourceArn' | 'action' | 'requestedAt'>;

/** A request coalesced into a primary that is still pending; it receives the primary's outcome. */
export interface Follower {
  request: AnsweredRequest;
  scope: string;
}

/** The primary a list belongs to: what its followers share with it. */
export interface FollowedPrimary {
  request: Pick<RemediationRequest, 'resourceArn' | 'action'>;
  scope: string;
}

// One follower in 28 bytes: its request id as 16 bytes, requestedAt as a float64, its agent as an
// index into the worker's table of agent names.
const ID_BYTES = 16;
const RECORD_BYTES = ID_BYTES + 8 + 4;
const FIRST_CAPACITY = 4;
/** Agent names kept by index, at most: past it (an open deployment's made-up names), a follower is kept whole. */
const MAX_AGENTS = 65_536;

const agentIndex = new Map<string, number>();
const agentNames: string[] = [];

function indexOfAgent(agentId: string): number {
  let index = agentIndex.get(agentId);
  if (index === undefined && agentNames.length < MAX_AGENTS) {
    index = agentNames.length;
    agentNames.push(agentId);
    agentIndex.set(agentId, index);
  }
  return index ?? -1;
}

/**
 * The duplicates waiting in flight for one primary, packed. A storm holds them by the hundred
 * thousand: as objects (an id string, an agent string, two objects each) they cost ~190 bytes and
 * made a partition's budget small enough that most primaries spilled, and PostgreSQL paid for
 * reading 55 % of a storm's duplicates back (docs/BENCHMARKS.md, issue 12 sixth pass). Packed, a
 * follower costs 28 bytes (56 at most while the buffer doubles).
 *
 * A follower's ARN, action and scope are its primary's (that is what coalescing matched); one that
 * differs anyway, has an id that is not a lower-case UUID, or an agent past the table's limit, is
 * kept whole on the side, so every follower comes back exactly as it went in.
 */
export class FollowerList {
  private records: Buffer | null = null;
  private count = 0;
  /** Followers kept whole, by position. */
  private whole: Map<number, Follower> | null = null;

  constructor(private readonly primary: FollowedPrimary) {}

  get length(): number {
    return this.count;
  }

  push(request: AnsweredRequest, scope: string): void {
    const at = this.count * RECORD_BYTES;
    const records = this.room(at + RECORD_BYTES);
    const agent = indexOfAgent(request.agentId);
    const packable =
      agent >= 0 &&
      request.resourceArn === this.primary.request.resourceArn &&
      request.action === this.primary.request.action &&
      scope === this.primary.scope &&
      writeUuid(records, at, request.requestId);
    if (packable) {
      records.writeDoubleLE(request.requestedAt, at + ID_BYTES);
      records.writeInt32LE(agent, at + ID_BYTES + 8);
    } else {
      records.writeInt32LE(-1, at + ID_BYTES + 8);
      (this.whole ??= new Map()).set(this.count, { request: pick(request), scope });
    }
    this.count++;
  }

  /** The follower at `index`, as it was pushed. */
  at(index: number): Follower {
    const kept = this.whole?.get(index);
    if (kept) return kept;
    const records = this.records!;
    const at = index * RECORD_BYTES;
    return {
      request: {
        requestId: readUuid(records, at),
        agentId: agentNames[records.readInt32LE(at + ID_BYTES + 8)]!,
        requestedAt: records.readDoubleLE(at + ID_BYTES),
        resourceArn: this.primary.request.resourceArn,
        action: this.primary.request.action,
      },
      scope: this.primary.scope,
    };
  }

  map<T>(fn: (follower: Follower) => T): T[] {
    const out = new Array<T>(this.count);
    for (let i = 0; i < this.count; i++) out[i] = fn(this.at(i));
    return out;
  }

  toArray(): Follower[] {
    return this.map((f) => f);
  }

  has(requestId: string): boolean {
    for (const kept of this.whole?.values() ?? []) if (kept.request.requestId === requestId) return true;
    if (!this.records || !writeUuid(probe, 0, requestId)) return false;
    for (let i = 0; i < this.count; i++) {
      const at = i * RECORD_BYTES;
      if (!this.whole?.has(i) && this.records.compare(probe, 0, ID_BYTES, at, at + ID_BYTES) === 0) return true;
    }
    return false;
  }

  /** Forgets every follower (the primary spilled: they are read back from PostgreSQL). */
  clear(): void {
    this.records = null;
    this.whole = null;
    this.count = 0;
  }

  private room(bytes: number): Buffer {
    if (this.records && this.records.length >= bytes) return this.records;
    const grown = Buffer.alloc(Math.max(bytes, (this.records?.length ?? FIRST_CAPACITY * RECORD_BYTES / 2) * 2));
    this.records?.copy(grown);
    this.records = grown;
    return grown;
  }
}

function pick(request: AnsweredRequest): AnsweredRequest {
  const { requestId, agentId, requestedAt, resourceArn, action } = request;
  return { requestId, agentId, requestedAt, resourceArn, action };
}

// Written here rather than with the uuid package's parse and stringify, which validate and allocate
// on every call: measured over 500,000 followers, 1.15 against 0.38 µs to push one and 0.46 against
// 0.20 to read it back, on the path every in-flight duplicate of a storm takes.
// Positions of the 32 hex digits in a UUID's 36 characters.
const HEX_AT = [0, 2, 4, 6, 9, 11, 14, 16, 19, 21, 24, 26, 28, 30, 32, 34];
const DASH_AT = [8, 13, 18, 23];

function hexValue(code: number): number {
  if (code >= 48 && code <= 57) return code - 48;
  if (code >= 97 && code <= 102) return code - 87;
  return -1;
}

/** Writes a lower-case UUID's 16 bytes at `at`; false (nothing meaningful written) for anything else. */
function writeUuid(into: Buffer, at: number, id: string): boolean {
  if (id.length !== 36) return false;
  for (const d of DASH_AT) if (id.charCodeAt(d) !== 45) return false;
  for (let i = 0; i < ID_BYTES; i++) {
    const high = hexValue(id.charCodeAt(HEX_AT[i]!));
    const low = hexValue(id.charCodeAt(HEX_AT[i]! + 1));
    if (high < 0 || low < 0) return false;
    into[at + i] = (high << 4) | low;
  }
  return true;
}

const scratch = Buffer.alloc(36, '-');
/** A request id looked for, as 16 bytes. */
const probe = Buffer.alloc(ID_BYTES);
const HEX = '0123456789abcdef';

function readUuid(from: Buffer, at: number): string {
  for (let i = 0; i < ID_BYTES; i++) {
    const byte = from[at + i]!;
    scratch[HEX_AT[i]!] = HEX.charCodeAt(byte >> 4);
    scratch[HEX_AT[i]! + 1] = HEX.charCodeAt(byte & 15);
  }
  return scratch.toString('latin1', 0, 36);
}
