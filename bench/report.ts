/** The benchmark's results as Markdown, for bench/README.md. */
import type { AdapterDescription } from '../src/gpu/gpu.js';
import { type Sample, gpuTimeRatio, ratioToOurs } from './harness.js';
import type { Skipped } from './main.js';

export interface Report {
  adapter: AdapterDescription;
  date: string;
  versions: { tfjs: string; node: string };
  ceilingGflops: number;
  memory?: { peakLiveBytes: number; poolBytes: number };
  missing: { op: string; peer: string; kernels: string[] }[];
  skipped: Skipped[];
  peerBudgetS: number;
  samples: Sample[];
}

export function markdownReport(r: Report, peers: string[]): string {
  const ours = r.samples.filter((s) => s.impl === 'ours');
  const withGpu = ours.some((o) => gpuTimeRatio(r.samples, o) !== null);
  const lines = [
    `Adapter: **${r.adapter.description}** (vendor ${r.adapter.vendor || '?'}, architecture ${r.adapter.architecture || '?'}${r.adapter.isSoftware ? ', software' : ''}); ${r.date.slice(0, 10)}; tfjs ${r.versions.tfjs}, Node ${r.versions.node}.`,
    `Measured FMA ceiling of the adapter: ${r.ceilingGflops.toFixed(1)} GFLOP/s.`,
    '',
    `| op | shape | ours ms | ours rate | % of ceiling | ${peers.map((p) => `${p} ms | × ${p}`).join(' | ')} |${withGpu ? ' × tfjs-webgpu, GPU time |' : ''}`,
    `| --- | --- | ---: | ---: | ---: | ${peers.map(() => '---: | ---:').join(' | ')} |${withGpu ? ' ---: |' : ''}`,
  ];
  for (const o of ours) {
    const rate = o.images_per_s !== undefined ? `${o.images_per_s.toFixed(2)} img/s` : o.gbps !== undefined ? `${o.gbps.toFixed(2)} GB/s` : `${o.gflops.toFixed(2)} GFLOP/s`;
    const cells = peers.map((p) => {
      const t = r.samples.find((s) => s.op === o.op && s.shape === o.shape && s.impl.startsWith(p));
      if (t) return `${t.median_ms.toFixed(1)} | ×${ratioToOurs(t, o).toFixed(2)}`;
      return r.skipped.some((k) => k.op === o.op && k.shape === o.shape && k.peer.startsWith(p)) ? 'skipped | -' : 'n/a | -';
    });
    const gpuCell = withGpu ? ` ${((x) => (x === null ? '-' : `×${x.toFixed(2)}`))(gpuTimeRatio(r.samples, o))} |` : '';
    lines.push(`| ${o.op} | ${o.shape} | ${o.median_ms.toFixed(1)} | ${rate} | ${o.gflops > 0 ? `${((100 * o.gflops) / r.ceilingGflops).toFixed(0)} %` : '-'} | ${cells.join(' | ')} |${gpuCell}`);
  }
  if (r.missing.length) {
    lines.push('');
    const seen = new Set<string>();
    for (const m of r.missing) {
      const key = `${m.peer}:${m.kernels.join()}`;
      if (seen.has(key)) continue;
      seen.add(key);
      lines.push(`- ${m.peer} has no ${m.kernels.join(', ')} kernel, so it cannot run ${[...new Set(r.missing.filter((x) => x.peer === m.peer && x.kernels.join() === m.kernels.join()).map((x) => x.op))].join(', ')}.`);
    }
  }
  for (const o of r.samples.filter((s) => s.op.startsWith('training_step') && s.epoch_s !== undefined)) {
    lines.push('', `- Training step, ${o.impl}: an epoch of the tutorial's recipe (4,508 images) at this rate takes ${o.epoch_s!.toFixed(0)} s.`);
  }
  if (r.skipped.length) {
    lines.push('', `- Skipped (estimated from the same case at a smaller batch to take over ${r.peerBudgetS} s a run): ${r.skipped.map((k) => `${k.peer} ${k.op} ${k.shape} (about ${k.estimated_s.toFixed(0)} s)`).join('; ')}.`);
  }
  if (r.memory) lines.push('', `Training step, ours: peak live GPU memory ${(r.memory.peakLiveBytes / 2 ** 20).toFixed(1)} MiB (buffer pool after the step: ${(r.memory.poolBytes / 2 ** 20).toFixed(1)} MiB).`);
  return `${lines.join('\n')}\n`;
}
