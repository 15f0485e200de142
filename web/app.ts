/**
 * The browser page: shows the WebGPU adapter, runs a checkpoint on a dropped
 * TIFF or PNG frame (mask outline and probability map), and trains a small
 * U-Net on synthetic frames with live loss and Dice charts, offering the
 * weights as a checkpoint that `npm run predict -- --model <file>` reads.
 *
 * `window.wgslUnetPage` mirrors the page's state (for the end-to-end test
 * and for anyone curious in the console).
 */
import {
  Adam,
  type AdapterDescription,
  CHECKPOINT_FORMAT,
  type CheckpointMeta,
  FRAME_HEIGHT,
  FRAME_WIDTH,
  type Gpu,
  type GrayImage,
  type ImageSet,
  Rng,
  Trainer,
  type UNet,
  createBrowserGpu,
  createUNet,
  decodeFrameFile,
  encodeCheckpoint,
  encodeTiffGray8,
  formatAdapter,
  generateFrame,
  masksToUnit,
  meanStd,
  modelFromCheckpoint,
  normalize,
  resizeStack,
  type SegmentSettings,
  segmentFrames,
  segmentSettings,
  fit,
  defaultPrecision,
  precisionOf,
  setPrecision,
} from '../src/browser.js';
import { version } from '../package.json';
import { decodeCheckpoint, encodeCheckpointTensors, foreignModelFormat } from '../src/model/checkpoint.js';
import type { ImportChoices, ModelFile } from '../src/model/export/import.js';
import { drawChart } from './chart.js';
import { drawFrame, drawPlaceholder, drawProbabilities } from './render.js';

const VALIDATION_SPLIT = 0.2;
/** Synthetic frames per synthetic subject: several subjects, each seen from a few probe positions. */
const FRAMES_PER_SUBJECT = 6;

interface ActiveModel {
  model: UNet;
  adam?: Adam;
  /** How frames are prepared for it (its training frames' normalisation and anti-aliasing) and its maps made masks. */
  settings: SegmentSettings;
  /** Where it came from, for the page: a file name, a URL, or "trained in this page". */
  source: string;
  /** Metadata to write when downloading (models trained here). */
  meta?: CheckpointMeta;
}

interface EpochEntry {
  epoch: number;
  loss: number;
  dice: number;
  val_loss: number;
  val_dice: number;
  /** Seconds since training began (data generation included). */
  seconds: number;
}

export interface PageState {
  state: 'starting' | 'no-webgpu' | 'ready' | 'busy' | 'error';
  message: string;
  adapter: AdapterDescription | null;
  model: { source: string; baseWidth: number; inputSize: number; activation: string; mean: number; std: number; threshold: number; minArea: number } | null;
  prediction: { seq: number; name: string; size: number; probabilities: Float32Array; area: number; max: number } | null;
  training: { running: boolean; done: boolean; epochs: EpochEntry[]; plannedEpochs: number; stepsPerEpoch: number; steps: { step: number; epoch: number; loss: number }[]; dataSeconds: number };
  errors: string[];
}

declare global {
  interface Window {
    wgslUnetPage: PageState;
  }
}

const page: PageState = {
  state: 'starting',
  message: '',
  adapter: null,
  model: null,
  prediction: null,
  training: { running: false, done: false, epochs: [], plannedEpochs: 0, stepsPerEpoch: 0, steps: [], dataSeconds: 0 },
  errors: [],
};
window.wgslUnetPage = page;

function $<T extends HTMLElement>(id: string): T {
  const el = document.getElementById(id);
  if (!el) throw new Error(`the page has no element #${id}`);
  return el as T;
}

const ui = {
  adapterText: $('adapter-text'),
  banner: $('banner'),
  modelInfo: $('model-info'),
  modelFile: $<HTMLInputElement>('model-file'),
  importOptions: $<HTMLDetailsElement>('import-options'),
  importMean: $<HTMLInputElement>('import-mean'),
  importStd: $<HTMLInputElement>('import-std'),
  importSize: $<HTMLInputElement>('import-size'),
  importActivation: $<HTMLSelectElement>('import-activation'),
  importAgain: $<HTMLButtonElement>('import-again'),
  dropZone: $('drop-zone'),
  frameFile: $<HTMLInputElement>('frame-file'),
  frameCanvas: $<HTMLCanvasElement>('frame-canvas'),
  probCanvas: $<HTMLCanvasElement>('prob-canvas'),
  predictInfo: $('predict-info'),
  trainForm: $<HTMLFormElement>('train-form'),
  trainStart: $<HTMLButtonElement>('train-start'),
  trainStop: $<HTMLButtonElement>('train-stop'),
  download: $<HTMLButtonElement>('download'),
  downloadMask: $<HTMLButtonElement>('download-mask'),
  maskFormat: $<HTMLSelectElement>('mask-format'),
  downloadFormat: $<HTMLSelectElement>('download-format'),
  trainInfo: $('train-info'),
  lossChart: $<HTMLCanvasElement>('loss-chart'),
  diceChart: $<HTMLCanvasElement>('dice-chart'),
  status: $('status'),
};

let gpu: Gpu | null = null;
let active: ActiveModel | null = null;
let frame: { name: string; image: GrayImage } | null = null;
let stopRequested = false;

// ---- status and errors -----------------------------------------------------

function setStatus(state: PageState['state'], message: string): void {
  page.state = state;
  page.message = message;
  ui.status.dataset.state = state;
  ui.status.textContent = message;
}

function errorText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

function reportError(where: string, e: unknown, target?: HTMLElement): void {
  const text = `${where}: ${errorText(e)}`;
  page.errors.push(text);
  console.error(text, e);
  if (target) {
    target.textContent = text;
    target.classList.add('error');
  }
  setStatus('error', text);
}

/** GPU work runs one piece at a time: a prediction waits for training to finish, and so on. */
let gpuQueue: Promise<unknown> = Promise.resolve();
function exclusive<T>(work: () => Promise<T>): Promise<T> {
  const run = gpuQueue.then(work);
  gpuQueue = run.catch(() => undefined);
  return run;
}

const formFields = () => Array.from(ui.trainForm.querySelectorAll<HTMLInputElement | HTMLSelectElement>('input, select'));
const fmt = (v: number, digits = 4) => (Number.isFinite(v) ? v.toFixed(digits) : '–');
const escapeHtml = (s: string) => s.replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]!);

// ---- the adapter -----------------------------------------------------------

function showAdapter(a: AdapterDescription, precision: string): void {
  // Some adapters (SwiftShader among them) report no description: say so rather than show a blank.
  const described = a.description && a.description !== '(no description)';
  const field = (name: string, value: string) => `<span class="field"><span class="key">${name}</span> ${value ? escapeHtml(value) : '<em>none given</em>'}</span>`;
  ui.adapterText.innerHTML =
    field('description', described ? a.description : '') +
    field('vendor', a.vendor) +
    field('architecture', a.architecture) +
    field('precision', precision === 'mixed' ? 'mixed (f16 activations on f16 subgroup matrices, f32 sums)' : 'fp32') +
    `<span class="badge${a.isSoftware ? ' software' : ''}">${a.isSoftware ? 'software (runs on the CPU)' : 'hardware'}</span>`;
  ui.adapterText.title = formatAdapter(a);
}

function showNoWebGpu(reason: string): void {
  ui.banner.hidden = false;
  ui.banner.innerHTML =
    '<strong>WebGPU is not available, so this page cannot run the model.</strong>' +
    `${escapeHtml(reason)} Open the page in a browser with WebGPU turned on (a recent Chrome or Edge; Firefox or Safari where WebGPU is enabled).`;
  ui.adapterText.textContent = 'none: WebGPU is not available';
  for (const el of [ui.modelFile, ui.frameFile, ui.trainStart, ui.trainStop, ui.download]) el.disabled = true;
  for (const el of formFields()) el.disabled = true;
  setStatus('no-webgpu', `WebGPU is not available: ${reason}`);
}

// ---- models ----------------------------------------------------------------

function setActive(next: ActiveModel): void {
  if (active && active.model !== next.model) {
    active.model.dispose();
    active.adam?.dispose();
  }
  active = next;
  ui.download.disabled = !next.meta || page.training.running;
  const c = next.model.config;
  const { mean, std, threshold, minArea } = next.settings;
  page.model = { source: next.source, baseWidth: c.baseWidth, inputSize: c.inputSize, activation: c.activation ?? 'relu', mean, std, threshold, minArea };
  ui.modelInfo.classList.remove('error');
  ui.modelInfo.innerHTML =
    `<strong>${escapeHtml(next.source)}</strong>: base width ${c.baseWidth}, input ${c.inputSize}×${c.inputSize}, ` +
    `${next.model.parameters.count.toLocaleString('en-US')} parameters; normalisation mean ${mean.toFixed(2)}, std ${std.toFixed(2)}; ` +
    `mask threshold ${threshold}, minimum area ${minArea} px.`;
}

async function loadModelBytes(bytes: Uint8Array, name: string, source: string): Promise<void> {
  setStatus('busy', `loading ${name}…`);
  await exclusive(async () => {
    if (!gpu) throw new Error('no GPU device');
    const { model, checkpoint } = modelFromCheckpoint(gpu, bytes, name);
    const trained = checkpoint.meta.epoch ? `, ${checkpoint.meta.epoch} epoch(s)` : '';
    setActive({
      model,
      settings: segmentSettings(checkpoint.meta),
      source: `${source}${trained}`,
    });
  });
  setStatus('ready', `model loaded from ${name}`);
  if (frame) await predict();
}

/** A foreign model that waits for its normalisation (the files as picked). */
let pendingImport: ModelFile[] | null = null;

/** The import fields' values; empty ones are left to the file. */
function importChoices(): ImportChoices {
  const value = (input: HTMLInputElement) => (input.value.trim() === '' ? undefined : Number(input.value));
  const choices: ImportChoices = { mean: value(ui.importMean), std: value(ui.importStd), inputSize: value(ui.importSize) };
  for (const [key, v] of Object.entries(choices)) if (v !== undefined && !Number.isFinite(v)) throw new Error(`the ${key} given is not a number`);
  const activation = ui.importActivation.value;
  return activation === 'relu' || activation === 'elu' ? { ...choices, activation } : choices;
}

/**
 * Loads what the model picker gave: a checkpoint, or a model from Keras,
 * ONNX or TensorFlow.js, made into a checkpoint as `import` makes one (the
 * readers loaded here on first use). A model that does not record how its
 * frames were normalised waits for the fields below the picker.
 */
async function loadModelFiles(files: ModelFile[]): Promise<void> {
  if (files.length === 1 && !foreignModelFormat(files[0]!.bytes, files[0]!.name)) {
    pendingImport = null;
    ui.importAgain.disabled = true;
    return loadModelBytes(files[0]!.bytes, files[0]!.name, files[0]!.name);
  }
  setStatus('busy', `reading ${files.map((f) => f.name).join(', ')}…`);
  const { importPicked } = await import('../src/model/export/import.js');
  const result = await importPicked(files, importChoices(), version);
  if (result.kind === 'needs-normalization') {
    pendingImport = files;
    ui.importAgain.disabled = false;
    ui.importOptions.open = true;
    ui.modelInfo.classList.add('error');
    ui.modelInfo.textContent = `${result.name} does not record how its frames were normalised: give the training frames' mean and std below, then "Load it with these".`;
    ui.importMean.focus();
    setStatus('ready', `${result.name} needs its frames' mean and std`);
    return;
  }
  pendingImport = null;
  ui.importAgain.disabled = true;
  await loadModelBytes(encodeCheckpointTensors(result.checkpoint.weights, result.checkpoint.meta), result.name, `${result.name} (imported from ${result.format})`);
  const said = [...(result.notes.length ? [`carried over: ${result.notes.join('; ')}`] : []), ...(result.assumed.length ? [`assumed: ${result.assumed.join('; ')} (the input size field sets it)`] : [])];
  if (said.length) setStatus('ready', `model imported from ${result.name}; ${said.join('; ')}`);
}

async function loadModelFromUrl(url: string): Promise<void> {
  setStatus('busy', `fetching the model ${url}…`);
  let response: Response;
  try {
    response = await fetch(url);
  } catch (e) {
    throw new Error(`could not fetch the model ${url} (${errorText(e)})`);
  }
  if (!response.ok) throw new Error(`could not fetch the model ${url}: HTTP ${response.status} ${response.statusText}`);
  const name = decodeURIComponent(new URL(url, location.href).pathname.split('/').pop() || url);
  await loadModelBytes(new Uint8Array(await response.arrayBuffer()), name, `${name} (from ${url})`);
}

// ---- frames and prediction -------------------------------------------------

let predictionSeq = 0;
/** The open frame's latest mask, for Download mask. */
let lastMask: { name: string; mask: Uint8Array; width: number; height: number } | null = null;

async function openFrame(file: File): Promise<void> {
  setStatus('busy', `reading ${file.name}…`);
  const image = await decodeFrameFile(file, file.name);
  frame = { name: file.name, image };
  drawFrame(ui.frameCanvas, image, null);
  ui.predictInfo.classList.remove('error');
  ui.predictInfo.textContent = `${file.name}: ${image.width} × ${image.height}.` + (active ? '' : ' Load or train a model to segment it.');
  setStatus('ready', `opened ${file.name}`);
  if (active) await predict();
}

async function predict(): Promise<void> {
  if (!frame) return;
  const current = frame;
  if (page.training.running) {
    ui.predictInfo.textContent = `${current.name}: the prediction runs when training ends.`;
  }
  setStatus('busy', `segmenting ${current.name}…`);
  const t0 = performance.now();
  const result = await exclusive(async () => {
    if (!active) return null;
    const [segmentation] = await segmentFrames(active.model, [current.image], active.settings, { batchSize: 1 });
    return { ...segmentation!, model: active };
  });
  if (!result) return;
  const ms = performance.now() - t0;
  const size = result.model.model.config.inputSize;
  const { width, height, mask, area, probabilities } = result;
  let max = 0;
  for (const p of probabilities) max = Math.max(max, p);
  drawFrame(ui.frameCanvas, current.image, mask);
  drawProbabilities(ui.probCanvas, probabilities, size);
  lastMask = { name: current.name, mask, width, height };
  ui.downloadMask.disabled = false;
  page.prediction = { seq: ++predictionSeq, name: current.name, size, probabilities, area, max };
  ui.predictInfo.classList.remove('error');
  ui.predictInfo.innerHTML =
    `<strong>${escapeHtml(current.name)}</strong>: ` +
    (area ? `nerve predicted, ${area.toLocaleString('en-US')} px` : 'no nerve predicted') +
    ` (probability > ${result.model.settings.threshold}, minimum area ${result.model.settings.minArea} px at ${width} × ${height}); ` +
    `highest probability ${max.toFixed(3)}; ${ms.toFixed(0)} ms. Model: ${escapeHtml(result.model.source)}.`;
  setStatus('ready', `segmented ${current.name}`);
}

// ---- training --------------------------------------------------------------

interface TrainOptions {
  baseWidth: number;
  inputSize: number;
  frames: number;
  epochs: number;
  batchSize: number;
  lr: number;
  seed: number;
}

function readTrainOptions(): TrainOptions {
  const value = (id: string) => ($<HTMLInputElement | HTMLSelectElement>(id).value ?? '').trim();
  const int = (id: string, what: string, min: number, max: number) => {
    const v = Number(value(id));
    if (!Number.isInteger(v) || v < min || v > max) throw new Error(`${what} must be a whole number from ${min} to ${max}, got "${value(id)}"`);
    return v;
  };
  const frames = int('train-frames', 'Frames', 5, 2000);
  const batchSize = int('train-batch', 'Batch', 1, 256);
  const trainCount = frames - Math.max(1, Math.round(frames * VALIDATION_SPLIT));
  if (batchSize > trainCount) throw new Error(`Batch (${batchSize}) is larger than the ${trainCount} training frames (the other ${frames - trainCount} are for validation); use more frames or a smaller batch`);
  const lr = Number(value('train-lr'));
  if (!(lr > 0 && lr < 1)) throw new Error(`Learning rate must be a number between 0 and 1, got "${value('train-lr')}"`);
  return {
    baseWidth: int('train-width', 'Base width', 1, 64),
    inputSize: int('train-size', 'Input size', 16, 256),
    frames,
    epochs: int('train-epochs', 'Epochs', 1, 500),
    batchSize,
    lr,
    seed: int('train-seed', 'Seed', -2147483648, 2147483647),
  };
}

/** Thrown when Stop is pressed before training began (while generating the data). */
class StoppedEarly extends Error {
  override name = 'StoppedEarly';
}

const nextTask = () => new Promise<void>((ok) => setTimeout(ok, 0));

/** Synthetic frames resized to the model's input, normalised with the training part's statistics. */
async function syntheticSet(o: TrainOptions): Promise<{ set: ImageSet; trainCount: number; mean: number; std: number }> {
  const px = o.inputSize * o.inputSize;
  const images = new Uint8Array(o.frames * px);
  const masks = new Uint8Array(o.frames * px);
  let nerves = 0;
  for (let i = 0; i < o.frames; i++) {
    if (stopRequested) throw new StoppedEarly('stopped while generating the synthetic frames; the model in use is unchanged');
    const subject = 1 + Math.floor(i / FRAMES_PER_SUBJECT);
    const f = generateFrame(subject, 1 + (i % FRAMES_PER_SUBJECT), o.seed);
    images.set(resizeStack(f.image, 1, FRAME_WIDTH, FRAME_HEIGHT, o.inputSize), i * px);
    masks.set(resizeStack(f.mask, 1, FRAME_WIDTH, FRAME_HEIGHT, o.inputSize), i * px);
    if (f.mask.some((v) => v !== 0)) nerves++;
    ui.trainInfo.textContent = `Generating synthetic frames: ${i + 1} of ${o.frames} (${nerves} with a nerve so far)…`;
    await nextTask();
  }
  const trainCount = o.frames - Math.max(1, Math.round(o.frames * VALIDATION_SPLIT));
  const { mean, std } = meanStd(images, px, 0, trainCount);
  return { set: { images: normalize(images, mean, std), masks: masksToUnit(masks), count: o.frames, size: o.inputSize }, trainCount, mean, std };
}

function drawCharts(): void {
  const t = page.training;
  const spe = t.stepsPerEpoch || 1;
  drawChart(ui.lossChart, {
    title: 'Loss (−Dice)',
    xLabel: 'step',
    xMax: spe * Math.max(1, t.plannedEpochs),
    series: [
      { label: 'training (per step)', color: '#4c78a8', points: t.steps.map((s) => [s.step, s.loss] as const), lineWidth: 1.25 },
      { label: 'validation (per epoch)', color: '#e4572e', points: t.epochs.map((e) => [e.epoch * spe, e.val_loss] as const), dots: true },
    ],
  });
  drawChart(ui.diceChart, {
    title: 'Dice',
    xLabel: 'epoch',
    yMin: 0,
    yMax: 1,
    xMax: Math.max(1, t.plannedEpochs),
    series: [
      { label: 'training (epoch mean)', color: '#4c78a8', points: t.epochs.filter((e) => e.epoch > 0).map((e) => [e.epoch, e.dice] as const), dots: true },
      { label: 'validation', color: '#e4572e', points: t.epochs.map((e) => [e.epoch, e.val_dice] as const), dots: true },
    ],
  });
}

let chartPending = false;
function scheduleCharts(): void {
  if (chartPending) return;
  chartPending = true;
  requestAnimationFrame(() => {
    chartPending = false;
    drawCharts();
  });
}

function setTraining(running: boolean): void {
  page.training.running = running;
  ui.trainStart.disabled = running;
  ui.trainStop.disabled = !running;
  ui.modelFile.disabled = running;
  for (const el of formFields()) el.disabled = running;
  if (running) ui.download.disabled = true;
}

async function train(): Promise<void> {
  if (!gpu) return;
  const o = readTrainOptions();
  stopRequested = false;
  page.training = { running: true, done: false, epochs: [], plannedEpochs: o.epochs, stepsPerEpoch: 0, steps: [], dataSeconds: 0 };
  setTraining(true);
  ui.trainInfo.classList.remove('error');
  setStatus('busy', 'training…');
  const t0 = performance.now();
  try {
    const data = await syntheticSet(o);
    const elapsed = () => (performance.now() - t0) / 1000;
    page.training.dataSeconds = elapsed();
    const trainRows = Int32Array.from({ length: data.trainCount }, (_, i) => i);
    const valRows = Int32Array.from({ length: o.frames - data.trainCount }, (_, i) => data.trainCount + i);
    const steps = Math.ceil(data.trainCount / o.batchSize);
    page.training.stepsPerEpoch = steps;
    const g = gpu;
    const trained = await exclusive(async () => {
      const model = createUNet(g, { baseWidth: o.baseWidth, inputSize: o.inputSize, seed: o.seed });
      // Mixed precision scales the loss, as the CLI's training does.
      const adam = new Adam(model.parameters, { lr: o.lr }, precisionOf(g) === 'mixed');
      try {
        const trainer = new Trainer(model, adam, o.batchSize);
        const rng = new Rng(o.seed);
        const where = `${model.parameters.count.toLocaleString('en-US')} parameters, ${data.trainCount} training and ${valRows.length} validation frames, batch ${o.batchSize}`;
        const val0 = await trainer.evaluate(data.set, valRows);
        page.training.epochs.push({ epoch: 0, loss: NaN, dice: NaN, val_loss: val0.loss, val_dice: val0.dice, seconds: elapsed() });
        scheduleCharts();
        let taken = 0;
        const { lastEpoch: epochsDone } = await fit(trainer, {
          set: data.set, trainRows, valRows, epochs: o.epochs, rng, shouldStop: () => stopRequested,
          onEpochStart: (epoch) => (s) => {
            page.training.steps.push({ step: (epoch - 1) * steps + s.step, epoch, loss: s.loss });
            ui.trainInfo.textContent = `Epoch ${epoch} of ${o.epochs}, step ${s.step} of ${s.steps}: loss ${fmt(s.loss)} (${where}).`;
            scheduleCharts();
          },
          onEpochEnd: (entry, progress) => {
            // The charts' time axis is the whole run's, not the epoch's.
            page.training.epochs.push({ ...entry, seconds: elapsed() });
            taken = progress.steps;
            scheduleCharts();
          },
        });
        const last = page.training.epochs[page.training.epochs.length - 1]!;
        const metrics: Record<string, number> = epochsDone ? { loss: last.loss, dice: last.dice, val_loss: last.val_loss, val_dice: last.val_dice } : { val_loss: last.val_loss, val_dice: last.val_dice };
        const meta: CheckpointMeta = {
          format: CHECKPOINT_FORMAT,
          version,
          config: model.config,
          normalization: { mean: data.mean, std: data.std },
          epoch: epochsDone,
          step: taken,
          metrics,
          adapter: formatAdapter(g.adapterInfo),
          precision: precisionOf(g),
          createdAt: new Date().toISOString(),
          training: {
            seed: o.seed,
            batchSize: o.batchSize,
            epochs: o.epochs,
            lr: o.lr,
            validationSplit: VALIDATION_SPLIT,
            preset: 'browser',
            rngState: rng.state(),
            count: o.frames,
            trainCount: data.trainCount,
            data: `synthetic frames generated in the browser (seed ${o.seed})`,
          },
        };
        return { model, adam, meta, epochsDone, where };
      } catch (e) {
        model.dispose();
        adam.dispose();
        throw e;
      }
    });
    const seconds = (performance.now() - t0) / 1000;
    setActive({
      model: trained.model,
      adam: trained.adam,
      settings: segmentSettings(trained.meta),
      source: `trained in this page (${trained.epochsDone} epoch(s))`,
      meta: trained.meta,
    });
    const first = page.training.epochs[0]!;
    const last = page.training.epochs[page.training.epochs.length - 1]!;
    page.training.done = true;
    ui.trainInfo.textContent =
      `${stopRequested ? 'Stopped' : 'Done'} after ${trained.epochsDone} epoch(s) in ${seconds.toFixed(1)} s (${trained.where}): ` +
      `validation Dice ${fmt(first.val_dice)} → ${fmt(last.val_dice)}. Frames are now segmented with this model.`;
    setStatus('ready', 'training finished');
  } catch (e) {
    if (!(e instanceof StoppedEarly)) throw e;
    ui.trainInfo.textContent = `Stopped: ${e.message}.`;
    setStatus('ready', 'training stopped');
    return;
  } finally {
    setTraining(false);
    ui.download.disabled = !active?.meta;
    drawCharts();
  }
  if (frame) await predict();
}

/**
 * Saves the model trained here: as a checkpoint, or in the format picked
 * beside the button (written as `export` writes it; a TensorFlow.js model is
 * two downloads, model.json and the shard it names, to keep in one folder).
 */
async function downloadWeights(): Promise<void> {
  const current = active;
  if (!current?.meta) throw new Error('no model trained in this page to download');
  const meta = { ...current.meta, createdAt: new Date().toISOString() };
  const bytes = await exclusive(() => encodeCheckpoint(current.model, meta));
  const c = current.model.config;
  const stem = `wgsl-unet-browser-w${c.baseWidth}-${c.inputSize}px`;
  const format = ui.downloadFormat.value;
  if (format === 'safetensors') {
    saveFile(`${stem}.safetensors`, bytes);
    setStatus('ready', `saved ${stem}.safetensors (${(bytes.length / 1024).toFixed(1)} KiB): use it with npm run predict -- --model ${stem}.safetensors`);
    return;
  }
  const { EXPORT_FORMATS, exportModel } = await import('../src/model/export/interop.js');
  if (!(EXPORT_FORMATS as readonly string[]).includes(format)) throw new Error(`unknown download format "${format}"`);
  const files = await exportModel(decodeCheckpoint(bytes, `${stem}.safetensors`), format as (typeof EXPORT_FORMATS)[number], `${stem}.safetensors`);
  // model.json names its shard, so the tfjs files keep their names; a single file takes the model's.
  const named = files.length === 1 ? [{ ...files[0]!, name: `${stem}.${files[0]!.name.split('.').pop()}` }] : files;
  for (const f of named) saveFile(f.name, f.bytes);
  setStatus('ready', `saved ${named.map((f) => `${f.name} (${(f.bytes.length / 1024).toFixed(1)} KiB)`).join(' and ')}`);
}

/**
 * Saves the open frame's mask as <name>_mask.tif (8-bit gray, 0/255, LZW: the
 * competition's training masks' form) or as a PNG of the same values.
 */
async function downloadMask(): Promise<void> {
  const m = lastMask;
  if (!m) throw new Error('no mask yet: open a frame with a model loaded');
  const stem = `${m.name.replace(/\.[^.]*$/, '')}_mask`;
  const gray = m.mask.map((v) => v * 255);
  if (ui.maskFormat.value === 'png') {
    const rgba = new Uint8ClampedArray(m.width * m.height * 4);
    for (let i = 0; i < gray.length; i++) {
      rgba.fill(gray[i]!, 4 * i, 4 * i + 3);
      rgba[4 * i + 3] = 255;
    }
    const canvas = Object.assign(document.createElement('canvas'), { width: m.width, height: m.height });
    canvas.getContext('2d')!.putImageData(new ImageData(rgba, m.width, m.height), 0, 0);
    const blob = await new Promise<Blob | null>((done) => canvas.toBlob(done, 'image/png'));
    if (!blob) throw new Error('this browser cannot encode a PNG');
    saveFile(`${stem}.png`, new Uint8Array(await blob.arrayBuffer()));
  } else {
    saveFile(`${stem}.tif`, encodeTiffGray8(m.width, m.height, gray, { compression: 'lzw' }));
  }
  setStatus('ready', `saved ${stem}.${ui.maskFormat.value}`);
}

/** Offers `bytes` to the browser as a download named `name`. */
function saveFile(name: string, bytes: Uint8Array): void {
  const url = URL.createObjectURL(new Blob([bytes as Uint8Array<ArrayBuffer>], { type: 'application/octet-stream' }));
  const a = Object.assign(document.createElement('a'), { href: url, download: name });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

// ---- wiring ----------------------------------------------------------------

function wire(): void {
  ui.modelFile.addEventListener('change', () => {
    const files = Array.from(ui.modelFile.files ?? []);
    ui.modelFile.value = '';
    if (!files.length) return;
    const names = files.map((f) => f.name).join(', ');
    void Promise.all(files.map(async (f) => ({ name: f.name, bytes: new Uint8Array(await f.arrayBuffer()) })))
      .then(loadModelFiles)
      .catch((e: unknown) => reportError(`cannot load ${names}`, e, ui.modelInfo));
  });
  ui.importAgain.addEventListener('click', () => {
    const files = pendingImport;
    if (!files) return;
    void loadModelFiles(files).catch((e: unknown) => reportError(`cannot load ${files.map((f) => f.name).join(', ')}`, e, ui.modelInfo));
  });
  const takeFrame = (file: File | undefined) => {
    if (!file) return;
    void openFrame(file).catch((e: unknown) => reportError(`cannot segment ${file.name}`, e, ui.predictInfo));
  };
  ui.frameFile.addEventListener('change', () => {
    takeFrame(ui.frameFile.files?.[0]);
    ui.frameFile.value = '';
  });
  const zone = document.getElementById('frame-card')!;
  zone.addEventListener('dragover', (ev) => {
    ev.preventDefault();
    ui.dropZone.classList.add('over');
  });
  zone.addEventListener('dragleave', () => ui.dropZone.classList.remove('over'));
  zone.addEventListener('drop', (ev) => {
    ev.preventDefault();
    ui.dropZone.classList.remove('over');
    if (!ui.frameFile.disabled) takeFrame(ev.dataTransfer?.files[0]);
  });
  ui.trainStart.addEventListener('click', () => {
    void train().catch((e: unknown) => reportError('training failed', e, ui.trainInfo));
  });
  ui.trainStop.addEventListener('click', () => {
    stopRequested = true;
    ui.trainStop.disabled = true;
    ui.trainInfo.textContent = 'Stopping after this step…';
  });
  ui.download.addEventListener('click', () => {
    void downloadWeights().catch((e: unknown) => reportError('cannot save the weights', e, ui.trainInfo));
  });
  ui.downloadMask.addEventListener('click', () => {
    void downloadMask().catch((e: unknown) => reportError('cannot save the mask', e, ui.predictInfo));
  });
  window.addEventListener('resize', scheduleCharts);
}

/**
 * Training settings that finish in about a minute: on a software adapter
 * (SwiftShader, lavapipe) a step costs seconds, so the model and data are small.
 */
function applyTrainingDefaults(software: boolean): void {
  const defaults = software
    ? { 'train-width': '4', 'train-size': '32', 'train-frames': '30', 'train-epochs': '5', 'train-batch': '4', 'train-lr': '0.01' }
    : { 'train-width': '8', 'train-size': '48', 'train-frames': '100', 'train-epochs': '10', 'train-batch': '8', 'train-lr': '0.003' };
  for (const [id, v] of Object.entries(defaults)) $<HTMLInputElement | HTMLSelectElement>(id).value = v;
  ui.trainInfo.textContent = software
    ? 'The adapter runs on the CPU, so these settings are small (a training step takes about a second or two); larger ones work, slowly.'
    : 'On synthetic frames in the competition\'s format, generated in this page.';
}

async function main(): Promise<void> {
  drawPlaceholder(ui.frameCanvas, 'no frame yet');
  drawCharts();
  try {
    gpu = await createBrowserGpu();
  } catch (e) {
    showNoWebGpu(errorText(e));
    return;
  }
  page.adapter = gpu.adapterInfo;
  // f16 subgroup matrices where the browser offers them (mixed precision), else fp32.
  setPrecision(gpu, defaultPrecision(gpu));
  showAdapter(gpu.adapterInfo, precisionOf(gpu));
  applyTrainingDefaults(gpu.adapterInfo.isSoftware);
  wire();
  setStatus('ready', 'ready: load a checkpoint or train a model, then drop a frame');
  const modelUrl = new URLSearchParams(location.search).get('model');
  if (modelUrl) await loadModelFromUrl(modelUrl).catch((e: unknown) => reportError('cannot load the model', e, ui.modelInfo));
}

void main().catch((e: unknown) => reportError('the page failed to start', e));
