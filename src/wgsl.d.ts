// WGSL sources are imported as strings: esbuild's "text" loader in the builds,
// a small plugin in vitest.config.ts for the tests.
declare module '*.wgsl' {
  const source: string;
  export default source;
}
