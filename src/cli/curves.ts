/** An SVG chart of the training curves: loss and Dice per epoch, training and validation. */

export type { EpochLog } from '../model/fit.js';
import type { EpochLog } from '../model/fit.js';

const W = 640;
const H = 300;
const PAD = 44;

function panel(x0: number, title: string, series: { name: string; color: string; values: number[] }[], epochs: number[]): string {
  const pw = W / 2 - PAD * 1.5;
  const ph = H - PAD * 2;
  const all = series.flatMap((s) => s.values).filter(Number.isFinite);
  let lo = Math.min(...all);
  let hi = Math.max(...all);
  if (!(hi > lo)) {
    lo -= 0.5;
    hi += 0.5;
  }
  const e0 = epochs[0] ?? 1;
  const e1 = Math.max(epochs.at(-1) ?? 1, e0 + 1);
  const px = (e: number) => x0 + PAD + ((e - e0) / (e1 - e0)) * pw;
  const py = (v: number) => PAD + (1 - (v - lo) / (hi - lo)) * ph;
  const parts = [
    `<text x="${x0 + PAD}" y="${PAD - 16}" font-size="14" font-family="sans-serif">${title}</text>`,
    `<rect x="${x0 + PAD}" y="${PAD}" width="${pw}" height="${ph}" fill="none" stroke="#999"/>`,
    `<text x="${x0 + PAD - 4}" y="${PAD + 4}" font-size="10" text-anchor="end" font-family="sans-serif">${hi.toFixed(3)}</text>`,
    `<text x="${x0 + PAD - 4}" y="${PAD + ph}" font-size="10" text-anchor="end" font-family="sans-serif">${lo.toFixed(3)}</text>`,
    `<text x="${x0 + PAD}" y="${PAD + ph + 14}" font-size="10" font-family="sans-serif">epoch ${e0}</text>`,
    `<text x="${x0 + PAD + pw}" y="${PAD + ph + 14}" font-size="10" text-anchor="end" font-family="sans-serif">${e1}</text>`,
  ];
  series.forEach((s, i) => {
    const pts = s.values.map((v, k) => (Number.isFinite(v) ? `${px(epochs[k]!).toFixed(1)},${py(v).toFixed(1)}` : '')).filter(Boolean);
    if (pts.length) parts.push(`<polyline fill="none" stroke="${s.color}" stroke-width="2" points="${pts.join(' ')}"/>`);
    for (const p of pts) parts.push(`<circle cx="${p.split(',')[0]}" cy="${p.split(',')[1]}" r="2.5" fill="${s.color}"/>`);
    parts.push(`<text x="${x0 + PAD + 8}" y="${PAD + 16 + 14 * i}" font-size="11" fill="${s.color}" font-family="sans-serif">${s.name}</text>`);
  });
  return parts.join('\n');
}

export function curvesSvg(log: readonly EpochLog[]): string {
  const epochs = log.map((e) => e.epoch);
  const body = [
    panel(0, 'loss (−Dice)', [
      { name: 'train', color: '#1f77b4', values: log.map((e) => e.loss) },
      { name: 'validation', color: '#d62728', values: log.map((e) => e.val_loss) },
    ], epochs),
    panel(W / 2, 'Dice', [
      { name: 'train', color: '#1f77b4', values: log.map((e) => e.dice) },
      { name: 'validation', color: '#d62728', values: log.map((e) => e.val_dice) },
    ], epochs),
  ];
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}">\n<rect width="100%" height="100%" fill="white"/>\n${body.join('\n')}\n</svg>\n`;
}
