import { pipeline } from 'node:stream/promises';
import { CsvError as ParseError, parse, type Options } from 'csv-parse';
import { parse as parseSync } from 'csv-parse/sync';

/**
 * RFC 4180 CSV as csv-parse reads it: comma-separated, fields optionally in double quotes,
 * `""` is a quote inside a quoted field, quoted fields may span lines, CRLF, LF or CR line
 * ends (mixed too). A UTF-8 BOM is dropped (spreadsheets write one), blank lines are
 * skipped, rows may have fewer or more fields than the header, and a quote inside an
 * unquoted field is kept as a character.
 */
const READ_OPTIONS: Options = {
  bom: true,
  skip_empty_lines: true,
  relax_column_count: true,
  relax_quotes: true,
  record_delimiter: ['\r\n', '\n', '\r'],
};

/** A CSV that cannot be read; `row` counts records from 1 (the header), blank lines not counted. */
export class CsvError extends Error {
  readonly row?: number;
  constructor(message: string, row?: number) {
    super(row === undefined ? message : `${message} (row ${row})`);
    this.name = 'CsvError';
    this.row = row;
  }
}

/** What a client reads for each csv-parse failure; the library's own text names its options. */
const PARSE_PROBLEMS: Partial<Record<ParseError['code'], (maxRowBytes: number) => string>> = {
  CSV_QUOTE_NOT_CLOSED: () => 'a quoted field is not closed',
  CSV_MAX_RECORD_SIZE: (maxRowBytes) => `a row is longer than ${maxRowBytes} bytes`,
  CSV_INVALID_CLOSING_QUOTE: () => 'a closing quote is followed by other characters',
};

function fromParseError(error: unknown, maxRowBytes = 0): unknown {
  if (!(error instanceof ParseError)) return error;
  const records = typeof error.records === 'number' ? error.records : undefined;
  const problem = PARSE_PROBLEMS[error.code]?.(maxRowBytes) ?? 'it cannot be parsed';
  return new CsvError(problem, records === undefined ? undefined : records + 1);
}

export interface CsvStreamLimits {
  /** Longest row, in bytes, before the CSV is refused: what bounds the parser's memory. */
  maxRowBytes: number;
}

/**
 * The rows of a CSV as they stream in, one array of fields at a time: memory holds one row
 * and the parser's small buffers, whatever the size of the file. Stopping the iteration
 * stops reading `source`. Throws CsvError for bad CSV; errors of `source` pass through.
 */
export async function* csvRows(
  source: AsyncIterable<Buffer>,
  { maxRowBytes }: CsvStreamLimits,
): AsyncGenerator<string[]> {
  const parser = parse({ ...READ_OPTIONS, max_record_size: maxRowBytes });
  // Its errors reach the loop below through the parser, which pipeline destroys with them.
  pipeline(source, parser).catch(() => undefined);
  try {
    for await (const row of parser) yield row as string[];
  } catch (error) {
    throw fromParseError(error, maxRowBytes);
  }
}

/** A whole CSV text, read with the same rules as `csvRows` (for CSVs Cutout wrote itself, and tests). */
export function parseCsv(text: string): string[][] {
  try {
    return parseSync(text, READ_OPTIONS) as string[][];
  } catch (error) {
    throw fromParseError(error);
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
function csvField(value: string): string {
  const text = FORMULA_START.test(value) ? `'${value}` : value;
  return /[",\r\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

export const csvLine = (values: readonly string[]): string => `${values.map(csvField).join(',')}\r\n`;
