/**
 * Spreadsheet formula injection (OWASP "CSV Injection"): a cell that starts with = + - @,
 * a tab or a carriage return may be executed when the results are opened in Excel. Such a
 * cell is prefixed with a single quote, which spreadsheets show as text.
 */
const DANGEROUS_FIRST = /^[=+\-@\t\r]/;

export function safeCell(value: unknown): string {
  if (value === undefined || value === null) return '';
  const text = String(value);
  return DANGEROUS_FIRST.test(text) ? `'${text}` : text;
}
