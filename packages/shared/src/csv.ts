/**
 * RFC 4180 CSV: comma-separated, fields optionally in double quotes, `""` is a quote inside
 * a quoted field, quoted fields may span lines, CRLF or LF line ends. A UTF-8 BOM is
 * dropped (spreadsheets write one). Blank lines are skipped. Small enough to own rather
 * than add a dependency for catalog manifests.
 */
export function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let field = '';
  let quoted = false;
  let i = text.charCodeAt(0) === 0xfeff ? 1 : 0;
  const endRow = () => {
    row.push(field);
    if (row.length > 1 || row[0] !== '') rows.push(row);
    row = [];
    field = '';
  };
  for (; i < text.length; i++) {
    const char = text[i]!;
    if (quoted) {
      if (char !== '"') field += char;
      else if (text[i + 1] === '"') {
        field += '"';
        i += 1;
      } else quoted = false;
    } else if (char === '"' && field === '') quoted = true;
    else if (char === ',') {
      row.push(field);
      field = '';
    } else if (char === '\n') endRow();
    else if (char === '\r') {
      if (text[i + 1] !== '\n') endRow();
    } else field += char;
  }
  if (quoted) throw new CsvError('a quoted field is not closed');
  if (field !== '' || row.length > 0) endRow();
  return rows;
}

export class CsvError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CsvError';
  }
}

/**
 * Spreadsheets run a cell that starts with one of these as a formula (`=HYPERLINK(…)`,
 * `+1+1`, `@SUM(…)`; tab and CR are read as such a start by some). A client controls
 * client_ref and error text, and whoever opens the CSV is someone else.
 */
const FORMULA_START = /^[=+\-@\t\r]/;

/**
 * One field as RFC 4180 writes it: quoted when it holds a comma, quote or line break; a
 * field a spreadsheet would run as a formula gets a leading `'` (OWASP's advice), which
 * spreadsheets show as text.
 */
export function csvField(value: string): string {
  const text = FORMULA_START.test(value) ? `'${value}` : value;
  return /[",\r\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

export const csvLine = (values: readonly string[]): string => `${values.map(csvField).join(',')}\r\n`;
