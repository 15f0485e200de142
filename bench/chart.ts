/** An SVG bar chart: per kernel, how many times faster ours is than tfjs-webgpu (log scale). */
import { type Sample, ratioToOurs } from './harness.js';

export function chartSvg(samples: Sample[], adapter: string): string {
  const rows = samples
    .filter((s) => s.impl === 'ours')
    .map((o) => {
      const t = samples.find((s) => s.op === o.op && s.shape === o.shape && s.impl.startsWith('tfjs-webgpu'));
      return t ? { label: `${o.op} ${o.shape}`, ratio: ratioToOurs(t, o) } : null;
    })
    .filter((r): r is { label: string; ratio: number } => r !== null);
  const barH = 16;
  const left = 330;
  const width = 900;
  const top = 40;
  const height = top + rows.length * (barH + 4) + 40;
  const maxLog = Math.max(1, ...rows.map((r) => Math.abs(Math.log10(r.ratio))));
  const scale = (width - left - 60) / 2 / maxLog;
  const zero = left + (width - left - 60) / 2;
  const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;');
  const parts = [
    `<text x="10" y="20" font-size="14" font-family="sans-serif">ours vs tfjs-webgpu, same adapter (${esc(adapter)}): × faster (log scale; right of the line = ours faster)</text>`,
    `<line x1="${zero}" y1="${top - 6}" x2="${zero}" y2="${height - 30}" stroke="#333"/>`,
  ];
  rows.forEach((r, i) => {
    const y = top + i * (barH + 4);
    const w = Math.log10(r.ratio) * scale;
    const x = w >= 0 ? zero : zero + w;
    parts.push(`<text x="${left - 6}" y="${y + barH - 4}" font-size="11" text-anchor="end" font-family="monospace">${esc(r.label)}</text>`);
    parts.push(`<rect x="${x.toFixed(1)}" y="${y}" width="${Math.abs(w).toFixed(1)}" height="${barH}" fill="${w >= 0 ? '#2ca02c' : '#d62728'}"/>`);
    parts.push(`<text x="${(w >= 0 ? zero + w + 4 : zero + 4).toFixed(1)}" y="${y + barH - 4}" font-size="11" font-family="sans-serif">×${r.ratio.toFixed(2)}</text>`);
  });
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}">\n<rect width="100%" height="100%" fill="white"/>\n${parts.join('\n')}\n</svg>\n`;
}
