import Table from 'cli-table3';

export interface TableOptions {
  /** Fixed column widths (long cells wrap); by default each column fits its widest cell. */
  colWidths?: number[];
}

/** A boxed terminal table: the one table renderer of the CLI and of the tools around it. */
export function renderTable(head: string[], rows: ReadonlyArray<ReadonlyArray<string | number>>, options: TableOptions = {}): string {
  const table = new Table({ head, wordWrap: true, ...(options.colWidths ? { colWidths: options.colWidths } : {}) });
  for (const row of rows) table.push([...row]);
  return table.toString();
}
