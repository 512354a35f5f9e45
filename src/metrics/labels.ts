/**
 * Bounded label values. Every label of every Arbiter metric goes through one of these, so no
 * input (an agent id, an ARN, an error code from a future version) can grow a metric's series
 * without limit: a value outside the label's set is exported as `other`.
 */

/** The value every label falls back to. */
export const OTHER = 'other';

/** Maps a raw label value to the value exported; `other` always maps to itself. */
export type LabelBound = (value: string) => string;

/** Distinct values a free-form label (agent id, resource type) keeps before the rest count as `other`. */
export const MAX_OPEN_LABEL_VALUES = 100;
/** Longer values are never kept: an id this long is a bug or an attack, not a name to chart. */
export const MAX_LABEL_LENGTH = 128;

/**
 * An open set (agent ids, resource types): the first `max` distinct values are kept, every later
 * one is `other`. Stable: a value once kept stays kept and one once mapped to `other` stays
 * there, so a counter's series never changes under it.
 */
export function firstSeen(max = MAX_OPEN_LABEL_VALUES): LabelBound {
  const seen = new Set<string>();
  return (value) => {
    if (value === OTHER || seen.has(value)) return value;
    if (seen.size >= max || value.length === 0 || value.length > MAX_LABEL_LENGTH) return OTHER;
    seen.add(value);
    return value;
  };
}

/** A closed set (actions, statuses, error codes): anything else is `other`. */
export function oneOf(values: readonly string[]): LabelBound {
  const allowed = new Set(values);
  return (value) => (allowed.has(value) ? value : OTHER);
}

/** A non-negative integer below `limit` (a partition number), written canonically; anything else is `other`. */
export function integerBelow(limit: number): LabelBound {
  return (value) => (/^(0|[1-9]\d{0,8})$/.test(value) && Number(value) < limit ? value : OTHER);
}

type LabelValues = Partial<Record<string, string | number>>;

/** The label names of a metric and the bound of each. */
export type LabelBounds<T extends string> = Readonly<Record<T, LabelBound>>;

/** Applies each label's bound; a label without one (a bug the unit tests catch) is exported as `other`. */
export function boundLabels<T extends string>(bounds: LabelBounds<T>, labels: LabelValues): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(labels)) {
    if (value === undefined) continue;
    const bound = (bounds as Record<string, LabelBound | undefined>)[name];
    out[name] = bound ? bound(String(value)) : OTHER;
  }
  return out;
}

/** The methods of prom-client's Counter, Gauge and Histogram that take labels first (an object, or values in label order). */
const LABELLED_METHODS = ['inc', 'dec', 'set', 'observe', 'zero', 'labels', 'remove'] as const;

/**
 * Makes `metric` bound its labels at every call that takes them, whoever the caller is: code
 * elsewhere keeps calling `metric.inc({ code })` and cannot export an unbounded value.
 * (prom-client's `startTimer` and `labels(...)` children end in these methods, so they are bounded too.)
 */
export function withBoundedLabels<M extends object, T extends string>(metric: M, labelNames: readonly T[], bounds: LabelBounds<T>): M {
  const target = metric as unknown as Record<string, unknown>;
  for (const method of LABELLED_METHODS) {
    const original = target[method];
    if (typeof original !== 'function') continue;
    target[method] = function (this: unknown, ...args: unknown[]) {
      const [first, ...rest] = args;
      if (first !== null && typeof first === 'object' && !Array.isArray(first)) {
        return original.call(this, boundLabels(bounds, first as LabelValues), ...rest);
      }
      if ((method === 'labels' || method === 'remove') && typeof first === 'string') {
        // Positional label values, in labelNames order.
        return original.apply(
          this,
          args.map((value, i) => {
            const name = labelNames[i];
            return name === undefined ? value : bounds[name](String(value));
          }),
        );
      }
      return original.apply(this, args);
    };
  }
  return metric;
}
