// Reads the real Kaggle samples in ../shared/fixtures/kaggle-sample (beside the
// repository, locally and in CI). They are never copied into the repository.
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export const KAGGLE_SAMPLE_DIR = fileURLToPath(new URL('../../../shared/fixtures/kaggle-sample/', import.meta.url));

export function readFixture(name: string): Uint8Array {
  const path = KAGGLE_SAMPLE_DIR + name;
  if (!existsSync(path)) {
    throw new Error(`fixture ${path} is missing: the tests expect the shared fixtures in ../shared beside the repository`);
  }
  const bytes = readFileSync(path);
  return new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

export function readFixtureText(name: string): string {
  return new TextDecoder().decode(readFixture(name));
}

/** The rows of train_masks.csv: subject, image and RLE field, with their line numbers. */
export function trainMasks(): { subject: number; img: number; pixels: string; line: number }[] {
  const lines = readFixtureText('train_masks.csv').split('\n');
  if (lines[0] !== 'subject,img,pixels') throw new Error(`train_masks.csv has header ${lines[0]}`);
  return lines
    .slice(1)
    .map((text, i) => ({ text, line: i + 2 }))
    .filter(({ text }) => text !== '')
    .map(({ text, line }) => {
      const [subject, img, pixels] = text.split(',');
      return { subject: Number(subject), img: Number(img), pixels: pixels ?? '', line };
    });
}
