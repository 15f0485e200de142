/**
 * What the console's error stream is given while `work` runs (it still
 * prints it). HDF5's error stacks reach it through console.error, which
 * h5wasm binds when it loads, so the stream, not console.error, is watched.
 */
export async function stderrWhile<T>(work: () => Promise<T>): Promise<{ value: T; printed: string[] }> {
  const stream = (console as unknown as { _stderr: NodeJS.WritableStream })._stderr;
  const write = stream.write;
  const printed: string[] = [];
  stream.write = ((chunk: unknown, ...rest: unknown[]) => (printed.push(String(chunk)), (write as (...a: unknown[]) => boolean).call(stream, chunk, ...rest))) as typeof write;
  try {
    return { value: await work(), printed };
  } finally {
    stream.write = write;
  }
}
