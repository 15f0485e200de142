/**
 * Prints the statistics of the real training masks that src/data/synthetic/mask-stats.ts
 * embeds as REAL_MASK_STATS, derived from the competition's train_masks.csv.
 *   npx tsx scripts/derive-mask-stats.ts [path/to/train_masks.csv]
 * (default: ../shared/fixtures/kaggle-sample/train_masks.csv beside the repository)
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { deriveMaskStatistics } from '../src/data/synthetic.js';

const path = process.argv[2] ?? fileURLToPath(new URL('../../shared/fixtures/kaggle-sample/train_masks.csv', import.meta.url));
const stats = deriveMaskStatistics(readFileSync(path, 'utf8'), path);
// One quantile point per line keeps the constant readable and diffable.
const json = JSON.stringify(stats, null, 2)
  .replace(/\{\s*"p": ([\d.]+),\s*"value": ([\d.]+)\s*\}/g, '{ p: $1, value: $2 }')
  .replace(/"(\w+)":/g, '$1:');
console.log(`export const REAL_MASK_STATS: MaskStatistics = ${json};`);
