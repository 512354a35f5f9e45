import { renderTable } from '../../src/cli/index.ts';
import { markdownTable } from '../support/index.ts';
import type { RunResult } from './results.ts';

const fmtCounts = (counts: Record<string, number>) =>
  Object.entries(counts)
    .filter(([, n]) => n > 0)
    .map(([k, n]) => `${k} ${n}`)
    .join(', ') || '0';

const fmtLatency = (p: { p50: number; p99: number } | null) => (p ? `${p.p50} / ${p.p99}` : '-');

const COLUMNS = ['scenario', 'mode', 'requests', 'executions', 'coalesced', 'rejected', 'deferred', 'violations', 'findings', 'decision ms p50/p99', 'outcome ms p50/p99'];

function row(r: RunResult): string[] {
  return [
    r.scenario,
    r.mode,
    String(r.requests),
    String(r.executions),
    String(r.coalesced),
    fmtCounts(r.rejected),
    String(r.deferred),
    r.violationsTotal ? fmtCounts(r.violations) : '0',
    fmtCounts(r.findings),
    fmtLatency(r.decisionLatencyMs),
    fmtLatency(r.outcomeLatencyMs),
  ];
}

/** The side-by-side table, for the terminal. */
export function resultsTable(results: RunResult[]): string {
  return renderTable(COLUMNS, results.map(row));
}

export function renderMarkdown(results: RunResult[], meta: Record<string, string | number>): string {
  const lines = [
    '# Race lab report',
    '',
    ...Object.entries(meta).map(([k, v]) => `- **${k}**: ${v}`),
    '',
    markdownTable(COLUMNS, results.map(row)),
    '',
    '![violations and executions per scenario](chart.svg)',
    '',
  ];
  return lines.join('\n');
}

/** A grouped bar chart: violations (and executions) per scenario, uncoordinated next to Arbiter. */
export function renderChart(results: RunResult[]): string {
  const scenarios = [...new Set(results.map((r) => r.scenario))];
  const find = (s: string, mode: string) => results.find((r) => r.scenario === s && r.mode === mode);
  const series = [
    { label: 'violations, uncoordinated', color: '#d9534f', value: (s: string) => find(s, 'uncoordinated')?.violationsTotal ?? 0 },
    { label: 'violations, through Arbiter', color: '#2e7d32', value: (s: string) => find(s, 'arbiter')?.violationsTotal ?? 0 },
    { label: 'executions, uncoordinated', color: '#f0ad4e', value: (s: string) => find(s, 'uncoordinated')?.executions ?? 0 },
    { label: 'executions, through Arbiter', color: '#5b9bd5', value: (s: string) => find(s, 'arbiter')?.executions ?? 0 },
  ];
  const max = Math.max(1, ...scenarios.flatMap((s) => series.map((x) => x.value(s))));
  const groupWidth = 170;
  const barWidth = 32;
  const chartHeight = 260;
  const left = 50;
  const top = 50;
  const width = left + scenarios.length * groupWidth + 20;
  const height = top + chartHeight + 90;
  const y = (v: number) => top + chartHeight - (v / max) * chartHeight;
  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="sans-serif" font-size="12">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    `<text x="${left}" y="24" font-size="16" font-weight="bold">Race lab: what agents did to the fleet, with and without Arbiter</text>`,
    `<line x1="${left}" y1="${top + chartHeight}" x2="${width - 10}" y2="${top + chartHeight}" stroke="#333"/>`,
  ];
  for (let t = 0; t <= 4; t++) {
    const v = Math.round((max * t) / 4);
    parts.push(`<text x="${left - 6}" y="${y(v) + 4}" text-anchor="end" fill="#666">${v}</text>`);
    parts.push(`<line x1="${left}" y1="${y(v)}" x2="${width - 10}" y2="${y(v)}" stroke="#eee"/>`);
  }
  scenarios.forEach((s, gi) => {
    const x0 = left + gi * groupWidth + 10;
    series.forEach((serie, si) => {
      const v = serie.value(s);
      const x = x0 + si * (barWidth + 4);
      parts.push(`<rect x="${x}" y="${y(v)}" width="${barWidth}" height="${top + chartHeight - y(v)}" fill="${serie.color}"><title>${serie.label}: ${v}</title></rect>`);
      parts.push(`<text x="${x + barWidth / 2}" y="${y(v) - 4}" text-anchor="middle" font-size="10">${v}</text>`);
    });
    parts.push(`<text x="${x0 + (4 * (barWidth + 4)) / 2}" y="${top + chartHeight + 18}" text-anchor="middle">${s}</text>`);
  });
  series.forEach((serie, i) => {
    const x = left + (i % 2) * 260;
    const yy = top + chartHeight + 45 + Math.floor(i / 2) * 18;
    parts.push(`<rect x="${x}" y="${yy - 10}" width="12" height="12" fill="${serie.color}"/><text x="${x + 18}" y="${yy}">${serie.label}</text>`);
  });
  parts.push('</svg>');
  return parts.join('\n');
}
