/** The engine's version: package.json's, recorded in checkpoints and in the files export writes. */
export const VERSION = '0.1.0';
