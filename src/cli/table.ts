import Table from 'cli-table3';

export interface TableOptions {
  /** Fixed column widths (long cells wrap); by default each column fits its widest cell. */
  colWidths?: number[];
}

/** A boxed terminal table: the one table renderer of the CLI and of the tools around it. */
export function renderTable(head: string[], rows: ReadonlyArray<ReadonlyArray<string | number>>, options: TableOptions = {}): string {
  // No colour codes: tables are read in terminals, but also piped to files and other tools.
  const table = new Table({ head, wordWrap: true, style: { head: [], border: [] }, ...(options.colWidths ? { colWidths: options.colWidths } : {}) });
  for (const row of rows) table.push([...row]);
  return table.toString();
}
