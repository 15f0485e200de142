/** A small line chart on a canvas: a few series, axes with round ticks, a legend. */

export interface Series {
  label: string;
  color: string;
  points: readonly (readonly [number, number])[];
  /** Draw a dot at every point (sparse series such as per-epoch values). */
  dots?: boolean;
  lineWidth?: number;
}

export interface ChartOptions {
  title: string;
  xLabel: string;
  series: readonly Series[];
  /** Fixed y range; otherwise fitted to the data. */
  yMin?: number;
  yMax?: number;
  /** Smallest x range shown (so the axis does not rescale at every point). */
  xMax?: number;
}

/** About `count` round tick values covering [lo, hi]. */
function ticks(lo: number, hi: number, count: number): number[] {
  const span = hi - lo || 1;
  const raw = span / count;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => span / s <= count) ?? 10 * mag;
  const out: number[] = [];
  for (let v = Math.ceil(lo / step - 1e-9) * step; v <= hi + step * 1e-9; v += step) out.push(Math.abs(v) < step * 1e-9 ? 0 : v);
  return out;
}

function label(v: number): string {
  return Number.isInteger(v) ? String(v) : v.toFixed(Math.abs(v) < 0.1 ? 3 : 2).replace(/0+$/, '');
}

export function drawChart(canvas: HTMLCanvasElement, o: ChartOptions): void {
  const dpr = window.devicePixelRatio || 1;
  const w = canvas.clientWidth || 360;
  const h = canvas.clientHeight || 200;
  if (canvas.width !== Math.round(w * dpr) || canvas.height !== Math.round(h * dpr)) {
    canvas.width = Math.round(w * dpr);
    canvas.height = Math.round(h * dpr);
  }
  const ctx = canvas.getContext('2d');
  if (!ctx) return;
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  ctx.clearRect(0, 0, w, h);
  const font = (px: number, weight = 400) => `${weight} ${px}px system-ui, -apple-system, 'Segoe UI', Roboto, 'DejaVu Sans', sans-serif`;
  const m = { left: 48, right: 14, top: 30, bottom: 34 };
  const pw = w - m.left - m.right;
  const ph = h - m.top - m.bottom;

  const all = o.series.flatMap((s) => s.points).filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y));
  let xMax = Math.max(o.xMax ?? 1, ...all.map(([x]) => x));
  if (xMax <= 0) xMax = 1;
  let yMin = o.yMin ?? Math.min(...all.map(([, y]) => y));
  let yMax = o.yMax ?? Math.max(...all.map(([, y]) => y));
  if (!Number.isFinite(yMin) || !Number.isFinite(yMax)) [yMin, yMax] = [0, 1];
  if (o.yMin === undefined || o.yMax === undefined) {
    const pad = (yMax - yMin) * 0.08 || 0.05;
    if (o.yMin === undefined) yMin -= pad;
    if (o.yMax === undefined) yMax += pad;
  }
  const X = (x: number) => m.left + (x / xMax) * pw;
  const Y = (y: number) => m.top + (1 - (y - yMin) / (yMax - yMin)) * ph;

  // Grid and axes.
  ctx.font = font(11);
  ctx.lineWidth = 1;
  ctx.fillStyle = '#5e6878';
  ctx.textAlign = 'right';
  ctx.textBaseline = 'middle';
  for (const v of ticks(yMin, yMax, 5)) {
    const y = Math.round(Y(v)) + 0.5;
    ctx.strokeStyle = '#eceef2';
    ctx.beginPath();
    ctx.moveTo(m.left, y);
    ctx.lineTo(m.left + pw, y);
    ctx.stroke();
    ctx.fillText(label(v), m.left - 6, y);
  }
  ctx.textAlign = 'center';
  ctx.textBaseline = 'top';
  for (const v of ticks(0, xMax, 6).filter((t) => Number.isInteger(t))) {
    const x = Math.round(X(v)) + 0.5;
    ctx.strokeStyle = '#c9ced6';
    ctx.beginPath();
    ctx.moveTo(x, m.top + ph);
    ctx.lineTo(x, m.top + ph + 4);
    ctx.stroke();
    ctx.fillText(String(v), x, m.top + ph + 6);
  }
  ctx.strokeStyle = '#c9ced6';
  ctx.strokeRect(m.left + 0.5, m.top + 0.5, pw, ph);
  ctx.fillText(o.xLabel, m.left + pw / 2, h - 14);

  // Title and legend.
  ctx.textAlign = 'left';
  ctx.textBaseline = 'alphabetic';
  ctx.fillStyle = '#1d2330';
  ctx.font = font(13, 600);
  ctx.fillText(o.title, m.left, 18);
  ctx.font = font(11);
  let lx = w - m.right;
  for (const s of [...o.series].reverse()) {
    const tw = ctx.measureText(s.label).width;
    lx -= tw;
    ctx.fillStyle = '#5e6878';
    ctx.fillText(s.label, lx, 18);
    lx -= 20;
    ctx.strokeStyle = s.color;
    ctx.lineWidth = 2;
    ctx.beginPath();
    ctx.moveTo(lx, 14);
    ctx.lineTo(lx + 14, 14);
    ctx.stroke();
    lx -= 14;
  }

  // Series, clipped to the plot.
  ctx.save();
  ctx.beginPath();
  ctx.rect(m.left - 4, m.top - 4, pw + 8, ph + 8); // room for dots on the edges
  ctx.clip();
  for (const s of o.series) {
    const pts = s.points.filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y));
    ctx.strokeStyle = s.color;
    ctx.fillStyle = s.color;
    ctx.lineWidth = s.lineWidth ?? 1.5;
    ctx.lineJoin = 'round';
    ctx.beginPath();
    pts.forEach(([x, y], i) => (i ? ctx.lineTo(X(x), Y(y)) : ctx.moveTo(X(x), Y(y))));
    ctx.stroke();
    if (s.dots) {
      for (const [x, y] of pts) {
        ctx.beginPath();
        ctx.arc(X(x), Y(y), 3, 0, 2 * Math.PI);
        ctx.fill();
      }
    }
  }
  ctx.restore();
  if (!all.length) {
    ctx.fillStyle = '#9aa3b0';
    ctx.textAlign = 'center';
    ctx.font = font(12);
    ctx.fillText('no data yet', m.left + pw / 2, m.top + ph / 2);
  }
}
