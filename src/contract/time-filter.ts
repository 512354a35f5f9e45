import { ArbiterError } from './errors.ts';

const UNITS: Record<string, number> = { s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 };

/** `--since`/`--until` of the CLI: an ISO 8601 time, or a duration ago (90s, 15m, 2h, 1d, 1w). */
export function parseTimeFilter(text: string, now: number = Date.now()): Date {
  const ago = /^(\d+)([smhdw])$/.exec(text.trim());
  if (ago !== null) return new Date(now - Number(ago[1]) * UNITS[ago[2]!]!);
  const at = new Date(text);
  if (Number.isNaN(at.getTime())) throw new ArbiterError('INVALID_REQUEST', `"${text}" is neither an ISO 8601 time nor a duration ago like 15m`);
  return at;
}
