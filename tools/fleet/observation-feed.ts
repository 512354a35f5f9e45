import type { FleetObservation, Fleet } from './fleet.ts';

/** Where observations go: an ArbiterClient (its observeMany publishes them keyed by scope). */
export interface ObservationSink {
  observeMany(observations: FleetObservation[]): Promise<unknown>;
}

const CHUNK = 500;

/**
 * Publishes what the fleet looks like, as a real executor would: one observation after every
 * change, and a snapshot of every resource every `snapshotMs`. Arbiter's detector compares them
 * with the changes it verified.
 */
export class ObservationFeed {
  private pending: FleetObservation[] = [];
  private flushing: Promise<void> | null = null;
  private timer: NodeJS.Timeout | null = null;

  constructor(
    private readonly fleet: Fleet,
    private readonly sink: ObservationSink,
    private readonly snapshotMs: number,
    private readonly onError: (error: unknown) => void = () => {},
  ) {}

  start(): void {
    this.fleet.onChange = (observation) => {
      this.pending.push(observation);
      this.flushing ??= new Promise<void>((resolve) => setImmediate(resolve)).then(() => this.flush());
    };
    if (this.snapshotMs > 0) this.timer = setInterval(() => this.publish(this.fleet.reportAll()), this.snapshotMs);
  }

  async stop(): Promise<void> {
    this.fleet.onChange = null;
    if (this.timer) clearInterval(this.timer);
    await this.flushing;
  }

  private async flush(): Promise<void> {
    const batch = this.pending;
    this.pending = [];
    this.flushing = null;
    await this.publish(batch);
  }

  private async publish(observations: FleetObservation[]): Promise<void> {
    for (let i = 0; i < observations.length; i += CHUNK) {
      await this.sink.observeMany(observations.slice(i, i + CHUNK)).catch(this.onError);
    }
  }
}
