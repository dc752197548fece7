/** A Markdown table; cells are written as given. */
export function table(headers: string[], rows: string[][]): string {
  const line = (cells: string[]) => `| ${cells.join(' | ')} |`;
  return [line(headers), line(headers.map(() => '---')), ...rows.map(line)].join('\n');
}

/** Milliseconds for a table cell: "n/a" for NaN, one decimal below 10 ms. */
export function ms(value: number): string {
  if (!Number.isFinite(value)) return 'n/a';
  return value < 10 ? value.toFixed(1) : Math.round(value).toLocaleString('en-US');
}

export function num(value: number, digits = 0): string {
  if (!Number.isFinite(value)) return 'n/a';
  return value.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

/** "3 network_error, 2 closed_by_hub:1013", or "none". */
export function counts(record: Record<string, number>): string {
  const entries = Object.entries(record)
    .filter(([, n]) => n > 0)
    .sort((a, b) => b[1] - a[1]);
  return entries.length ? entries.map(([k, n]) => `${n} ${k}`).join(', ') : 'none';
}
