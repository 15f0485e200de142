/**
 * `wgsl-unet serve`: a small static HTTP server for the browser page, on the
 * loopback interface only. It serves dist/web/ at /, dist/browser/ (the
 * library bundle) at /browser/, and optionally a checkpoint at
 * /model.safetensors, which the page loads with ?model=/model.safetensors.
 */
import { createReadStream, existsSync, statSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { dirname, extname, join, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type OptionSpec, UsageError, parseArgs, usage } from './args.js';

const SPEC: Record<string, OptionSpec> = {
  port: { type: 'number', help: 'TCP port; 0 picks a free one', default: 8080 },
  host: { type: 'string', help: 'loopback address to listen on: 127.0.0.1, ::1 or localhost', default: '127.0.0.1' },
  model: { type: 'string', help: 'checkpoint (.safetensors) to serve at /model.safetensors' },
  root: { type: 'string', help: 'the build folder holding web/ and browser/ (default: the folder of this script, dist/)' },
};

const LOOPBACK = new Set(['127.0.0.1', '::1', 'localhost']);

const CONTENT_TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.tif': 'image/tiff',
  '.tiff': 'image/tiff',
  '.ico': 'image/x-icon',
  '.wasm': 'application/wasm',
  '.safetensors': 'application/octet-stream',
};

export interface ServeOptions {
  /** Folder with web/ and browser/ (normally dist/). */
  root: string;
  port: number;
  host: string;
  /** Checkpoint served at /model.safetensors. */
  model?: string;
}

export interface RunningServer {
  server: Server;
  /** http://host:port/ */
  url: string;
  close(): Promise<void>;
}

/** Maps a request path to a file, or null when it is outside the served folders. */
function resolveFile(opts: ServeOptions, pathname: string): string | null {
  if (pathname === '/model.safetensors') return opts.model ?? null;
  let base = join(opts.root, 'web');
  let rest = pathname;
  if (pathname.startsWith('/browser/')) {
    base = join(opts.root, 'browser');
    rest = pathname.slice('/browser'.length);
  }
  if (rest.endsWith('/')) rest += 'index.html';
  const file = resolve(base, `.${rest}`);
  return file.startsWith(base + sep) ? file : null;
}

function handle(opts: ServeOptions, req: IncomingMessage, res: ServerResponse): void {
  const send = (status: number, text: string) => {
    res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', 'cache-control': 'no-store' });
    res.end(req.method === 'HEAD' ? undefined : `${text}\n`);
  };
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    res.setHeader('allow', 'GET, HEAD');
    return send(405, `${req.method} is not supported; this server only serves files (GET, HEAD)`);
  }
  const raw = (req.url ?? '/').split(/[?#]/)[0]!;
  let pathname: string;
  try {
    pathname = decodeURIComponent(raw);
  } catch {
    return send(400, `bad request path: ${req.url}`);
  }
  if (!pathname.startsWith('/')) return send(400, `bad request path: ${req.url}`);
  const file = pathname.includes('\0') ? null : resolveFile(opts, pathname);
  if (!file) {
    return send(404, pathname === '/model.safetensors' ? 'no model is served: start the server with --model <file.safetensors>' : `not found: ${pathname}`);
  }
  let size: number;
  try {
    const st = statSync(file);
    if (!st.isFile()) return send(404, `not found: ${pathname}`);
    size = st.size;
  } catch {
    return send(404, `not found: ${pathname}`);
  }
  res.writeHead(200, {
    'content-type': CONTENT_TYPES[extname(file).toLowerCase()] ?? 'application/octet-stream',
    'content-length': String(size),
    'cache-control': 'no-store',
    'x-content-type-options': 'nosniff',
  });
  if (req.method === 'HEAD') return void res.end();
  createReadStream(file)
    .on('error', (e) => res.destroy(e))
    .pipe(res);
}

/** Starts the server and resolves once it listens. */
export async function startServer(opts: ServeOptions): Promise<RunningServer> {
  if (!LOOPBACK.has(opts.host)) throw new UsageError(`--host must be a loopback address (127.0.0.1, ::1 or localhost), got "${opts.host}"; this server is for local use only`);
  if (!Number.isInteger(opts.port) || opts.port < 0 || opts.port > 65535) throw new UsageError(`--port must be an integer from 0 to 65535, got ${opts.port}`);
  for (const sub of ['web', 'browser']) {
    const dir = join(opts.root, sub);
    if (!existsSync(join(dir, sub === 'web' ? 'index.html' : 'wgsl-unet.js'))) {
      throw new UsageError(`${dir} is missing or incomplete: build first (npm run build), or point --root at a build folder`);
    }
  }
  if (opts.model !== undefined && !(existsSync(opts.model) && statSync(opts.model).isFile())) {
    throw new UsageError(`--model: checkpoint not found: ${opts.model}`);
  }
  const server = createServer((req, res) => handle(opts, req, res));
  await new Promise<void>((ok, fail) => {
    server.once('error', (e: NodeJS.ErrnoException) => {
      fail(e.code === 'EADDRINUSE' ? new UsageError(`port ${opts.port} on ${opts.host} is in use: pick another with --port, or --port 0 for a free one`) : e);
    });
    server.listen(opts.port, opts.host, () => ok());
  });
  const addr = server.address() as AddressInfo;
  const host = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;
  return {
    server,
    url: `http://${host}:${addr.port}/`,
    close: () => new Promise<void>((ok) => server.close(() => ok())),
  };
}

export async function serve(argv: string[]): Promise<void> {
  if (argv.includes('--help')) return void console.log(usage('serve', 'Serves the browser page (dist/web) and library (dist/browser) on a loopback address.', SPEC));
  const { options: o, positional } = parseArgs(argv, SPEC);
  if (positional.length) throw new UsageError(`unexpected argument "${positional[0]}"; serve takes only options`);
  const here = dirname(fileURLToPath(import.meta.url));
  const model = o.model === undefined ? undefined : resolve(o.model as string);
  const running = await startServer({
    root: resolve((o.root as string | undefined) ?? here),
    port: o.port as number,
    host: o.host as string,
    ...(model === undefined ? {} : { model }),
  });
  console.log(`serving the page at ${running.url}`);
  console.log(`  the library bundle at ${running.url}browser/wgsl-unet.js`);
  if (model) console.log(`  ${model} at ${running.url}model.safetensors; open ${running.url}?model=/model.safetensors`);
  console.log('press Ctrl-C to stop');
  const stop = () => {
    void running.close().then(() => process.exit(0));
    setTimeout(() => process.exit(0), 1000).unref();
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}
