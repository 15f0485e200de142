// The few parts of the untyped `utif` package (UTIF.js) that src/data/tiff.ts uses.
declare module 'utif' {
  /**
   * One image file directory. Tag values are keyed "t<tag number>": SHORT/LONG
   * tags as number arrays, ASCII tags as string arrays, BYTE tags as Uint8Array.
   * decodeImage adds width, height and the decoded (still packed) sample bytes.
   */
  export interface UtifIfd {
    [tag: `t${number}`]: ArrayLike<number | string> | undefined;
    width?: number;
    height?: number;
    data?: Uint8Array;
  }

  interface Utif {
    /** Parses the header and every IFD; pixel data is left undecoded. */
    decode(buffer: ArrayBuffer): UtifIfd[];
    /** Decompresses one IFD's strips or tiles into ifd.data (16-bit samples come out little-endian). */
    decodeImage(buffer: ArrayBuffer, ifd: UtifIfd, ifds: UtifIfd[]): void;
  }

  const UTIF: Utif;
  export default UTIF;
}
