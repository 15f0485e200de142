/** The embedded default data set, made on first use when no caches exist. */
import { DataError } from '../data/errors.js';

export async function ensureDefaultData(dataDir: string): Promise<void> {
  throw new DataError(`no data caches in ${dataDir}: run npm run data (with --synthetic for the embedded data set)`);
}
