/**
 * The competition's submission file: header "img,pixels", one row per test
 * frame sorted by id, each with the run-length encoding of its 580 × 420 mask
 * (empty when no nerve is predicted), '\n' line endings.
 */
import { DataError } from './errors.js';
import { encodeRle, parseRle } from './rle.js';

export const SUBMISSION_WIDTH = 580;
export const SUBMISSION_HEIGHT = 420;
export const SUBMISSION_HEADER = 'img,pixels';
/** The pipeline's rule: a predicted mask smaller than this many pixels is submitted as empty. */
export const DEFAULT_MIN_AREA = 10;
/** The pipeline's probability threshold where none was chosen on validation data. */
export const DEFAULT_THRESHOLD = 0.5;

export interface SubmissionMask {
  id: number;
  /** 580 × 420, row-major, nonzero = nerve. */
  mask: Uint8Array;
}

export interface SubmissionRow {
  id: number;
  /** The RLE field as written. */
  pixels: string;
  /** 1-based line number in the file. */
  line: number;
  /** Number of mask pixels the RLE field covers. */
  area: number;
}

/** Writes the submission CSV: rows sorted by id, masks under minArea pixels left empty. */
export function formatSubmission(rows: SubmissionMask[], minArea = DEFAULT_MIN_AREA): string {
  for (const { id, mask } of rows) {
    if (mask.length !== SUBMISSION_WIDTH * SUBMISSION_HEIGHT) {
      throw new DataError(`formatSubmission: the mask of image ${id} has ${mask.length} pixels, not 580 × 420 = 243600; resize predictions to full size first`);
    }
  }
  checkIds(rows.map((r) => r.id), 'formatSubmission');
  return formatEncodedSubmission(rows.map(({ id, mask }) => ({ id, pixels: onPixels(mask) < minArea ? '' : encodeRle(mask, SUBMISSION_WIDTH, SUBMISSION_HEIGHT) })));
}

/** The submission CSV from rows whose pixels fields are already encoded (encodeMasks), sorted by id. */
export function formatEncodedSubmission(rows: { id: number; pixels: string }[]): string {
  checkIds(rows.map((r) => r.id), 'formatEncodedSubmission');
  const lines = [SUBMISSION_HEADER];
  for (const { id, pixels } of [...rows].sort((a, b) => a.id - b.id)) lines.push(`${id},${pixels}`);
  return lines.join('\n') + '\n';
}

function checkIds(ids: number[], where: string): void {
  const seen = new Set<number>();
  for (const id of ids) {
    if (!Number.isSafeInteger(id) || id < 1) throw new DataError(`${where}: image id ${id} is not a positive integer`);
    if (seen.has(id)) throw new DataError(`${where}: image id ${id} appears twice; submit one mask per test image`);
    seen.add(id);
  }
}

function onPixels(mask: Uint8Array): number {
  let count = 0;
  for (let i = 0; i < mask.length; i++) if (mask[i] !== 0) count++;
  return count;
}

/**
 * Reads a submission CSV (or any "img,pixels" file). Accepts '\n' or '\r\n'
 * line endings and a final newline; throws DataError naming `name` and the
 * line for a wrong header, a malformed row, a repeated id or a bad RLE field.
 */
export function parseSubmission(csv: string, name: string): SubmissionRow[] {
  const lines = splitLines(csv);
  if (lines[0] !== SUBMISSION_HEADER) {
    throw new DataError(`${name} line 1: the header is ${JSON.stringify(lines[0] ?? '')}, expected "${SUBMISSION_HEADER}"`);
  }
  const rows: SubmissionRow[] = [];
  const lineOfId = new Map<number, number>();
  for (let i = 1; i < lines.length; i++) {
    const line = i + 1;
    const row = parseRow(lines[i]!, line, `${name} line ${line}`);
    if (typeof row === 'string') throw new DataError(row);
    const earlier = lineOfId.get(row.id);
    if (earlier !== undefined) throw new DataError(`${name} line ${line}: image ${row.id} already appears on line ${earlier}; keep one row per image`);
    lineOfId.set(row.id, line);
    rows.push(row);
  }
  return rows;
}

/**
 * Checks a submission against every format rule and returns the problems
 * found (empty when it is valid): the header, '\n' line endings, row syntax,
 * RLE fields, repeated, missing and unexpected ids, ascending order, and
 * non-empty masks under minArea pixels (set minArea to 0 to allow them).
 */
export function validateSubmission(csv: string, expectedIds: number[], opts?: { minArea?: number }): string[] {
  const minArea = opts?.minArea ?? DEFAULT_MIN_AREA;
  const problems: string[] = [];
  const malformed: string[] = [];
  const duplicates: string[] = [];
  const unsorted: string[] = [];
  const tooSmall: string[] = [];

  if (csv.includes('\r')) problems.push('line endings: the file contains carriage returns; use "\\n" line endings');
  if (!csv.endsWith('\n')) problems.push('the file does not end with a newline');
  const lines = splitLines(csv);
  if (lines[0] !== SUBMISSION_HEADER) problems.push(`line 1: the header is ${JSON.stringify(lines[0] ?? '')}, expected "${SUBMISSION_HEADER}"`);

  const lineOfId = new Map<number, number>();
  let previousId = -Infinity;
  for (let i = 1; i < lines.length; i++) {
    const line = i + 1;
    const row = parseRow(lines[i]!, line, `line ${line}`);
    if (typeof row === 'string') {
      malformed.push(row);
      continue;
    }
    const earlier = lineOfId.get(row.id);
    if (earlier !== undefined) duplicates.push(`line ${line}: image ${row.id} repeats line ${earlier}`);
    else lineOfId.set(row.id, line);
    if (row.id < previousId) unsorted.push(`line ${line}: image ${row.id} comes after image ${previousId}`);
    previousId = Math.max(previousId, row.id);
    if (row.area > 0 && row.area < minArea) {
      tooSmall.push(`line ${line}: image ${row.id} has a ${row.area}-pixel mask, under the minimum of ${minArea}; write it empty`);
    }
  }

  const expected = new Set(expectedIds);
  const missing = [...expected].filter((id) => !lineOfId.has(id)).sort((a, b) => a - b);
  const extra = [...lineOfId.keys()].filter((id) => !expected.has(id)).sort((a, b) => a - b);
  summarise(problems, 'malformed rows', malformed);
  summarise(problems, 'repeated ids', duplicates);
  summarise(problems, 'rows out of ascending id order', unsorted);
  summarise(problems, 'masks under the minimum area', tooSmall);
  if (missing.length > 0) problems.push(`${missing.length} expected image ids are missing: ${listSome(missing)}`);
  if (extra.length > 0) problems.push(`${extra.length} image ids are not test images: ${listSome(extra)}`);
  return problems;
}

/** Lines without their terminators; a final newline does not make an extra empty line. */
function splitLines(csv: string): string[] {
  const lines = csv.split(/\r?\n/);
  if (lines.length > 1 && lines[lines.length - 1] === '') lines.pop();
  return lines;
}

/** A row, or the message that says what is wrong with it; `where` names the line. */
function parseRow(text: string, line: number, where: string): SubmissionRow | string {
  const fields = text.split(',');
  if (fields.length !== 2) {
    return `${where}: ${JSON.stringify(text.slice(0, 60))} has ${fields.length} fields, expected 2 ("id,pixels")`;
  }
  const [idText, pixels] = fields as [string, string];
  if (!/^[1-9][0-9]*$/.test(idText) || !Number.isSafeInteger(Number(idText))) {
    return `${where}: image id ${JSON.stringify(idText)} is not a positive integer`;
  }
  const id = Number(idText);
  let area = 0;
  try {
    for (const run of parseRle(pixels, SUBMISSION_WIDTH, SUBMISSION_HEIGHT, `${where} (image ${id})`)) area += run.length;
  } catch (error) {
    if (error instanceof DataError) return error.message;
    throw error;
  }
  return { id, pixels, line, area };
}

function summarise(problems: string[], what: string, found: string[]): void {
  if (found.length === 0) return;
  const shown = found.slice(0, 5).join('; ');
  problems.push(`${found.length} ${what}: ${shown}${found.length > 5 ? '; …' : ''}`);
}

function listSome(ids: number[]): string {
  return ids.slice(0, 10).join(', ') + (ids.length > 10 ? ', …' : '');
}
