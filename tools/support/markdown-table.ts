/** A GitHub-flavoured Markdown table (reports, docs/BENCHMARKS.md); `|` inside a cell is escaped. */
export function markdownTable(head: readonly string[], rows: ReadonlyArray<ReadonlyArray<string>>): string {
  const line = (cells: readonly string[]) => `| ${cells.map((cell) => cell.replaceAll('|', '\\|')).join(' | ')} |`;
  return [line(head), `|${head.map(() => '---').join('|')}|`, ...rows.map(line)].join('\n');
}
