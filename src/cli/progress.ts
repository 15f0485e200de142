/** Progress display: a redrawn bar on a terminal, periodic plain lines otherwise. */

export interface Progress {
  update(done: number, extra?: string): void;
  finish(extra?: string): void;
}

function formatSeconds(s: number): string {
  if (!Number.isFinite(s)) return '?';
  if (s < 60) return `${s.toFixed(0)}s`;
  const m = Math.floor(s / 60);
  return m < 60 ? `${m}m${String(Math.round(s % 60)).padStart(2, '0')}s` : `${Math.floor(m / 60)}h${String(m % 60).padStart(2, '0')}m`;
}

/**
 * `unit` names what is counted (images, files); rate and time left come from
 * the elapsed time. Plain output prints at most every `plainEverySeconds`.
 */
export function progress(label: string, total: number, unit: string, stream: NodeJS.WriteStream = process.stderr, plainEverySeconds = 10): Progress {
  const start = performance.now();
  const tty = stream.isTTY === true;
  let lastPlain = start;
  let last = 0;
  const line = (done: number, extra: string) => {
    const elapsed = (performance.now() - start) / 1000;
    const rate = done / Math.max(elapsed, 1e-9);
    const left = (total - done) / rate;
    const frac = total ? done / total : 1;
    const stats = `${done}/${total} ${unit}, ${rate.toFixed(rate < 10 ? 2 : 0)} ${unit}/s, ${formatSeconds(elapsed)} elapsed, ${done < total ? `${formatSeconds(left)} left` : 'done'}${extra ? `, ${extra}` : ''}`;
    if (!tty) return `${label}: ${stats}`;
    const width = 24;
    const filled = Math.round(frac * width);
    return `${label} [${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${(frac * 100).toFixed(0).padStart(3)}% ${stats}`;
  };
  return {
    update(done, extra = '') {
      last = done;
      if (tty) {
        stream.write(`\r\x1b[2K${line(done, extra)}`);
      } else if (performance.now() - lastPlain >= plainEverySeconds * 1000) {
        lastPlain = performance.now();
        stream.write(`${line(done, extra)}\n`);
      }
    },
    finish(extra = '') {
      stream.write(tty ? `\r\x1b[2K${line(last, extra)}\n` : `${line(last, extra)}\n`);
    },
  };
}
