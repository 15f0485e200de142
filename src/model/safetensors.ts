/**
 * The safetensors format (float32 only): an 8-byte little-endian header
 * length, a JSON header naming each tensor's dtype, shape and byte range,
 * optional string metadata under "__metadata__", then the raw little-endian
 * data. PyTorch (safetensors.torch.load_file), Hugging Face tools and a few
 * lines of TypeScript read it; see README.md.
 */

export interface NamedTensor {
  readonly shape: readonly number[];
  readonly data: Float32Array;
}

export class SafetensorsError extends Error {
  override name = 'SafetensorsError';
}

/**
 * Which tensor holds a NaN or an infinity, in words for an error message
 * (the first such tensor, how many it holds and where the first is), or
 * undefined when every value is finite: a model with one gives NaN maps,
 * which thresholds read as no nerve anywhere.
 */
export function nonFiniteTensor(tensors: ReadonlyMap<string, NamedTensor>): string | undefined {
  for (const [name, t] of tensors) {
    let count = 0;
    let index = -1;
    for (let i = 0; i < t.data.length; i++) {
      // v - v is 0 for every finite v, NaN for NaN and ±Infinity.
      const v = t.data[i]!;
      if (v - v !== 0) {
        if (index < 0) index = i;
        count++;
      }
    }
    if (count) return `tensor ${name} holds ${count} value${count === 1 ? '' : 's'} that ${count === 1 ? 'is' : 'are'} not finite (the first, ${t.data[index]}, at index ${index})`;
  }
  return undefined;
}

export function encodeSafetensors(tensors: ReadonlyMap<string, NamedTensor>, metadata: Record<string, string> = {}): Uint8Array {
  const header: Record<string, unknown> = {};
  if (Object.keys(metadata).length) header.__metadata__ = metadata;
  let offset = 0;
  for (const [name, t] of tensors) {
    const n = t.shape.reduce((a, b) => a * b, 1);
    if (n !== t.data.length) throw new SafetensorsError(`tensor "${name}": shape [${t.shape.join(', ')}] needs ${n} values, got ${t.data.length}`);
    header[name] = { dtype: 'F32', shape: [...t.shape], data_offsets: [offset, offset + n * 4] };
    offset += n * 4;
  }
  let json = new TextEncoder().encode(JSON.stringify(header));
  const padded = Math.ceil(json.length / 8) * 8; // keeps the data 8-byte aligned
  if (padded !== json.length) {
    const p = new Uint8Array(padded).fill(0x20);
    p.set(json);
    json = p;
  }
  const out = new Uint8Array(8 + json.length + offset);
  const dv = new DataView(out.buffer);
  dv.setBigUint64(0, BigInt(json.length), true);
  out.set(json, 8);
  let pos = 8 + json.length;
  for (const t of tensors.values()) {
    writeLittleEndianF32(out, pos, t.data);
    pos += t.data.length * 4;
  }
  return out;
}

export function decodeSafetensors(bytes: Uint8Array, name: string): { tensors: Map<string, NamedTensor>; metadata: Record<string, string> } {
  if (bytes.length < 8) throw new SafetensorsError(`${name}: too short to be a safetensors file (${bytes.length} bytes)`);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerLength = Number(dv.getBigUint64(0, true));
  if (headerLength > bytes.length - 8 || headerLength > 100 * 2 ** 20) {
    throw new SafetensorsError(`${name}: header length ${headerLength} does not fit a ${bytes.length}-byte file: the file is truncated or not safetensors`);
  }
  let header: Record<string, unknown>;
  try {
    header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + headerLength))) as Record<string, unknown>;
  } catch (e) {
    throw new SafetensorsError(`${name}: the header is not valid JSON (${(e as Error).message})`);
  }
  const dataStart = 8 + headerLength;
  const tensors = new Map<string, NamedTensor>();
  let metadata: Record<string, string> = {};
  for (const [key, value] of Object.entries(header)) {
    if (key === '__metadata__') {
      metadata = value as Record<string, string>;
      continue;
    }
    const v = value as { dtype?: string; shape?: number[]; data_offsets?: [number, number] };
    if (v.dtype !== 'F32') throw new SafetensorsError(`${name}: tensor "${key}" has dtype ${v.dtype}; only F32 is supported`);
    const [begin, end] = v.data_offsets ?? [NaN, NaN];
    const shape = v.shape ?? [];
    const n = shape.reduce((a, b) => a * b, 1);
    if (!(begin >= 0 && end - begin === n * 4 && dataStart + end <= bytes.length)) {
      throw new SafetensorsError(`${name}: tensor "${key}" [${shape.join(', ')}] has byte range ${begin}..${end} that does not match its shape or the file size (truncated file?)`);
    }
    tensors.set(key, { shape, data: readLittleEndianF32(bytes, dataStart + begin, n) });
  }
  return { tensors, metadata };
}

const littleEndian = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

function writeLittleEndianF32(out: Uint8Array, pos: number, data: Float32Array): void {
  if (littleEndian) {
    out.set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength), pos);
    return;
  }
  const dv = new DataView(out.buffer, out.byteOffset);
  for (let i = 0; i < data.length; i++) dv.setFloat32(pos + 4 * i, data[i]!, true);
}

function readLittleEndianF32(bytes: Uint8Array, pos: number, n: number): Float32Array {
  const out = new Float32Array(n);
  if (littleEndian) {
    new Uint8Array(out.buffer).set(bytes.subarray(pos, pos + n * 4));
    return out;
  }
  const dv = new DataView(bytes.buffer, bytes.byteOffset);
  for (let i = 0; i < n; i++) out[i] = dv.getFloat32(pos + 4 * i, true);
  return out;
}
