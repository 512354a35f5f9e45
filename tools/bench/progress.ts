import cliProgress from 'cli-progress';

/** Phase messages and progress bars go to stderr, so stdout stays the report (or JSON). */
export function note(line: string): void {
  process.stderr.write(`[bench] ${line}\n`);
}

export interface Progress {
  update(value: number, extra?: Record<string, string | number>): void;
  stop(): void;
}

/**
 * A cli-progress bar on stderr; when stderr is not a terminal (a run in the background, output to
 * a file) it prints a line every 5 s instead of redrawing.
 */
export function progressBar(label: string, total: number, extraFormat = ''): Progress {
  const bar = new cliProgress.SingleBar(
    {
      format: `[bench] ${label.padEnd(14)} {bar} {percentage}% | {value}/{total} | {eta_formatted} left${extraFormat ? ` | ${extraFormat}` : ''}`,
      stream: process.stderr,
      hideCursor: true,
      noTTYOutput: true,
      notTTYSchedule: 5_000,
      etaBuffer: 50,
    },
    cliProgress.Presets.shades_classic,
  );
  const placeholders = Object.fromEntries([...extraFormat.matchAll(/\{(\w+)\}/g)].map((m) => [m[1]!, '–']));
  bar.start(total, 0, placeholders);
  return {
    update: (value, extra) => bar.update(value, extra),
    stop: () => bar.stop(),
  };
}
