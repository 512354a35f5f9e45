/** Topic names derive from one prefix so several Arbiter installations (or test runs) can share a cluster. */
export interface TopicNames {
  requests: string;
  outcomes: string;
  observations: string;
  deadLetter: string;
  /** Agents submit and cancel plans here (keyed by plan id). */
  planCommands: string;
  /** Every plan state change, keyed by plan id. */
  planEvents: string;
  /** Each finding of the inconsistency detector, once. */
  inconsistencies: string;
}

export function topicNames(prefix = 'arbiter'): TopicNames {
  return {
    requests: `${prefix}.requests`,
    outcomes: `${prefix}.outcomes`,
    observations: `${prefix}.observations`,
    deadLetter: `${prefix}.dead-letter`,
    planCommands: `${prefix}.plan-commands`,
    planEvents: `${prefix}.plan-events`,
    inconsistencies: `${prefix}.inconsistencies`,
  };
}

/** Confluent TopicNameStrategy: the value subject of topic T is `T-value`. */
export function valueSubject(topic: string): string {
  return `${topic}-value`;
}

/** Headers Arbiter sets on records it writes. */
export const HEADERS = {
  error: 'arbiter-error',
  errorCode: 'arbiter-error-code',
  sourceTopic: 'arbiter-source-topic',
  sourcePartition: 'arbiter-source-partition',
  sourceOffset: 'arbiter-source-offset',
  reroutedFrom: 'arbiter-rerouted-from',
} as const;
