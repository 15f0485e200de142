/**
 * The one error type of the data layer: bad input files, malformed strings and
 * mismatched arrays. Messages name the file (or string) at fault, what is wrong
 * with it, and what to do about it.
 */
export class DataError extends Error {
  override name = 'DataError';
}
