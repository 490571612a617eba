/**
 * safetensors read/write: an 8-byte little-endian header length, a JSON header mapping names to
 * `{dtype, shape, data_offsets}` (plus an optional `__metadata__` of string → string), then the
 * raw little-endian data. Byte-level {@link encodeSafetensors}/{@link decodeSafetensors} work on
 * host arrays; {@link saveSafetensors}/{@link loadSafetensors} move GPU tensors (F16/BF16/F64
 * become f32, I64 and small integer types become i32 on load).
 */
import { fromArray } from "../ops/creation.ts";
import type { Shape, Tensor } from "../tensor/tensor.ts";

/** Element types understood in files. */
export type SafetensorsDType =
  | "F64"
  | "F32"
  | "F16"
  | "BF16"
  | "I64"
  | "I32"
  | "U32"
  | "I16"
  | "I8"
  | "U8"
  | "BOOL";

const SIZES: Record<SafetensorsDType, number> = {
  F64: 8,
  F32: 4,
  F16: 2,
  BF16: 2,
  I64: 8,
  I32: 4,
  U32: 4,
  I16: 2,
  I8: 1,
  U8: 1,
  BOOL: 1,
};

/** One tensor on the host: dtype, shape and its raw little-endian bytes. */
export interface HostTensor {
  /** Element type in the file. */
  dtype: SafetensorsDType;
  /** Sizes per dim. */
  shape: number[];
  /** Raw bytes (length = elements × dtype size). */
  data: Uint8Array;
}

/** A decoded file. */
export interface SafetensorsFile {
  /** Tensors by name, in header order. */
  tensors: Map<string, HostTensor>;
  /** The `__metadata__` map (empty when absent). */
  metadata: Record<string, string>;
}

if (new Uint8Array(new Uint16Array([1]).buffer)[0] !== 1) {
  throw new Error("safetensors: this module assumes a little-endian host");
}

const count = (s: readonly number[]) => s.reduce((a, b) => a * b, 1);
const fmt = (s: readonly number[]) => `[${s.join(", ")}]`;

/** Encodes tensors and metadata into the bytes of a safetensors file (8-byte aligned data). */
export function encodeSafetensors(
  tensors: Map<string, HostTensor>,
  metadata: Record<string, string> = {},
): Uint8Array {
  // Larger element sizes first, then by name (keeps every tensor aligned to its element size).
  const names = [...tensors.keys()].sort((a, b) => {
    const d = SIZES[tensors.get(b)!.dtype] - SIZES[tensors.get(a)!.dtype];
    return d !== 0 ? d : a < b ? -1 : a > b ? 1 : 0;
  });
  const header: Record<string, unknown> = {};
  if (Object.keys(metadata).length) {
    for (const [k, v] of Object.entries(metadata)) {
      if (typeof v !== "string") throw new Error(`safetensors: metadata '${k}' must be a string`);
    }
    header.__metadata__ = metadata;
  }
  let at = 0;
  for (const n of names) {
    if (n === "__metadata__") throw new Error("safetensors: '__metadata__' is not a valid tensor name");
    const t = tensors.get(n)!;
    if (!(t.dtype in SIZES)) throw new Error(`safetensors: tensor '${n}' has unknown dtype ${t.dtype}`);
    const bytes = count(t.shape) * SIZES[t.dtype];
    if (t.data.byteLength !== bytes) {
      throw new Error(
        `safetensors: tensor '${n}' ${t.dtype} ${
          fmt(t.shape)
        } needs ${bytes} bytes, got ${t.data.byteLength}`,
      );
    }
    header[n] = { dtype: t.dtype, shape: t.shape, data_offsets: [at, at + bytes] };
    at += bytes;
  }
  let json = new TextEncoder().encode(JSON.stringify(header));
  const padded = Math.ceil(json.length / 8) * 8;
  if (padded !== json.length) {
    const p = new Uint8Array(padded).fill(0x20);
    p.set(json);
    json = p;
  }
  const out = new Uint8Array(8 + json.length + at);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
  out.set(json, 8);
  let off = 8 + json.length;
  for (const n of names) {
    const d = tensors.get(n)!.data;
    out.set(d, off);
    off += d.byteLength;
  }
  return out;
}

/**
 * Parses the bytes of a safetensors file, checking the header length, the JSON, every entry's
 * dtype, shape and offsets against the data size. Tensor data are views into `bytes`.
 */
export function decodeSafetensors(bytes: Uint8Array): SafetensorsFile {
  if (bytes.byteLength < 8) {
    throw new Error(`safetensors: file too short (${bytes.byteLength} bytes) for the header length`);
  }
  const n = new DataView(bytes.buffer, bytes.byteOffset, 8).getBigUint64(0, true);
  if (n > BigInt(bytes.byteLength - 8)) {
    throw new Error(
      `safetensors: header length ${n} exceeds the ${bytes.byteLength - 8} bytes after it (truncated file?)`,
    );
  }
  const hlen = Number(n);
  let header: unknown;
  try {
    header = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes.subarray(8, 8 + hlen)));
  } catch (e) {
    throw new Error(`safetensors: the header is not valid JSON: ${(e as Error).message}`);
  }
  if (header === null || typeof header !== "object" || Array.isArray(header)) {
    throw new Error("safetensors: the header must be a JSON object");
  }
  const data = bytes.subarray(8 + hlen);
  const tensors = new Map<string, HostTensor>();
  let metadata: Record<string, string> = {};
  const ranges: [number, number, string][] = [];
  for (const [name, e] of Object.entries(header as Record<string, unknown>)) {
    if (name === "__metadata__") {
      if (e === null || typeof e !== "object" || Object.values(e).some((v) => typeof v !== "string")) {
        throw new Error("safetensors: __metadata__ must map strings to strings");
      }
      metadata = { ...(e as Record<string, string>) };
      continue;
    }
    const bad = (why: string) => new Error(`safetensors: tensor '${name}': ${why}`);
    if (e === null || typeof e !== "object") throw bad("entry is not an object");
    const { dtype, shape, data_offsets: offs } = e as Record<string, unknown>;
    if (typeof dtype !== "string" || !(dtype in SIZES)) {
      throw bad(`unsupported dtype ${JSON.stringify(dtype)}`);
    }
    if (!Array.isArray(shape) || shape.some((d) => !Number.isInteger(d) || d < 0)) throw bad("bad shape");
    if (
      !Array.isArray(offs) || offs.length !== 2 || offs.some((o) => !Number.isInteger(o) || o < 0) ||
      offs[1] < offs[0]
    ) {
      throw bad("bad data_offsets");
    }
    const [b, end] = offs as number[];
    const need = count(shape) * SIZES[dtype as SafetensorsDType];
    if (end - b !== need) {
      throw bad(`${dtype} ${fmt(shape)} needs ${need} bytes, data_offsets give ${end - b}`);
    }
    if (end > data.byteLength) {
      throw bad(`data ends at byte ${end}, past the ${data.byteLength} data bytes (truncated file?)`);
    }
    ranges.push([b, end, name]);
    tensors.set(name, { dtype: dtype as SafetensorsDType, shape: [...shape], data: data.subarray(b, end) });
  }
  ranges.sort((x, y) => x[0] - y[0] || x[1] - y[1]);
  for (let i = 1; i < ranges.length; i++) {
    if (ranges[i][0] < ranges[i - 1][1]) {
      throw new Error(`safetensors: tensors '${ranges[i - 1][2]}' and '${ranges[i][2]}' overlap`);
    }
  }
  return { tensors, metadata };
}

/** Copies `bytes` into a fresh, aligned buffer viewed as `T`. */
function aligned<T>(bytes: Uint8Array, make: (b: ArrayBuffer) => T): T {
  return make(bytes.slice().buffer);
}

/** f16 bits to a float. */
export function f16ToF32(h: number): number {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const m = h & 0x3ff;
  if (e === 0) return s * m * 2 ** -24;
  if (e === 31) return m ? NaN : s * Infinity;
  return s * (1 + m / 1024) * 2 ** (e - 15);
}

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** A float to f16 bits (round to nearest even; overflow to ±∞). */
export function f32ToF16(x: number): number {
  f32[0] = x;
  const b = u32[0];
  const sign = (b >>> 16) & 0x8000;
  const e = (b >>> 23) & 0xff;
  let m = b & 0x7fffff;
  if (e === 255) return sign | 0x7c00 | (m ? 0x200 : 0);
  const ue = e - 127 + 15;
  if (ue >= 31) return sign | 0x7c00;
  if (ue <= 0) {
    if (ue < -10) return sign;
    m |= 0x800000;
    const shift = 14 - ue;
    const half = 1 << (shift - 1);
    let r = m >>> shift;
    const rest = m & ((1 << shift) - 1);
    if (rest > half || (rest === half && (r & 1))) r++;
    return sign | r;
  }
  let r = (ue << 10) | (m >>> 13);
  const rest = m & 0x1fff;
  if (rest > 0x1000 || (rest === 0x1000 && (r & 1))) r++;
  return sign | r;
}

/** Converts a host tensor to the engine's dtypes: f32 for floats, i32 for integers and bools. */
export function hostToArray(name: string, t: HostTensor): Float32Array | Int32Array | Uint32Array {
  const n = count(t.shape);
  switch (t.dtype) {
    case "F32":
      return aligned(t.data, (b) => new Float32Array(b));
    case "I32":
      return aligned(t.data, (b) => new Int32Array(b));
    case "U32":
      return aligned(t.data, (b) => new Uint32Array(b));
    case "F64":
      return Float32Array.from(aligned(t.data, (b) => new Float64Array(b)));
    case "F16": {
      const h = aligned(t.data, (b) => new Uint16Array(b));
      const out = new Float32Array(n);
      for (let i = 0; i < n; i++) out[i] = f16ToF32(h[i]);
      return out;
    }
    case "BF16": {
      const h = aligned(t.data, (b) => new Uint16Array(b));
      const bits = new Uint32Array(n);
      for (let i = 0; i < n; i++) bits[i] = h[i] << 16;
      return new Float32Array(bits.buffer);
    }
    case "I64": {
      const v = aligned(t.data, (b) => new BigInt64Array(b));
      const out = new Int32Array(n);
      for (let i = 0; i < n; i++) {
        if (v[i] > 2147483647n || v[i] < -2147483648n) {
          throw new Error(
            `safetensors: tensor '${name}' (I64) holds ${v[i]} at element ${i}, outside the i32 range`,
          );
        }
        out[i] = Number(v[i]);
      }
      return out;
    }
    case "I16":
      return Int32Array.from(aligned(t.data, (b) => new Int16Array(b)));
    case "I8":
      return Int32Array.from(new Int8Array(t.data.buffer, t.data.byteOffset, n));
    case "U8":
    case "BOOL":
      return Int32Array.from(t.data);
  }
}

/** How {@link saveSafetensors} stores each engine dtype. */
export interface SaveOptions {
  /** Store f32 tensors as F32 (default), F16 or BF16. */
  float?: "F32" | "F16" | "BF16";
  /** Store i32 tensors as I32 (default) or I64 (PyTorch's index dtype). */
  int?: "I32" | "I64";
}

/** Encodes one host array as a host tensor in the requested file dtype. */
export function arrayToHost(
  data: Float32Array | Int32Array | Uint32Array,
  shape: readonly number[],
  opts: SaveOptions = {},
): HostTensor {
  const bytes = (a: ArrayBufferView) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
  if (data instanceof Float32Array) {
    const fl = opts.float ?? "F32";
    if (fl === "F32") return { dtype: "F32", shape: [...shape], data: bytes(data) };
    const h = new Uint16Array(data.length);
    if (fl === "F16") { for (let i = 0; i < data.length; i++) h[i] = f32ToF16(data[i]); }
    else {
      const u = new Uint32Array(data.buffer, data.byteOffset, data.length);
      for (let i = 0; i < data.length; i++) {
        const b = u[i];
        h[i] = (b & 0x7fffffff) > 0x7f800000 ? (b >>> 16) | 0x40 : (b + 0x7fff + ((b >>> 16) & 1)) >>> 16;
      }
    }
    return { dtype: fl, shape: [...shape], data: bytes(h) };
  }
  if (data instanceof Uint32Array) return { dtype: "U32", shape: [...shape], data: bytes(data) };
  if ((opts.int ?? "I32") === "I32") return { dtype: "I32", shape: [...shape], data: bytes(data) };
  return { dtype: "I64", shape: [...shape], data: bytes(BigInt64Array.from(data, (v) => BigInt(v))) };
}

/**
 * Writes GPU tensors to a safetensors file: reads them all back (in parallel), encodes, writes a
 * temporary file next to `path` and renames it over `path` (atomic on one file system).
 */
export async function saveSafetensors(
  path: string,
  tensors: Map<string, Tensor> | Record<string, Tensor>,
  metadata: Record<string, string> = {},
  opts: SaveOptions = {},
): Promise<void> {
  const entries = tensors instanceof Map ? [...tensors] : Object.entries(tensors);
  const arrays = await Promise.all(entries.map(([, t]) => t.toArray()));
  const host = new Map<string, HostTensor>();
  entries.forEach(([n, t], i) => host.set(n, arrayToHost(arrays[i], t.shape, opts)));
  const bytes = encodeSafetensors(host, metadata);
  const tmp = `${path}.tmp-${Deno.pid}-${Math.random().toString(36).slice(2)}`;
  try {
    await Deno.writeFile(tmp, bytes);
    await Deno.rename(tmp, path);
  } catch (e) {
    await Deno.remove(tmp).catch(() => {});
    throw e;
  }
}

/** Options of {@link loadSafetensors}. */
export interface LoadOptions {
  /** Expected names and shapes: each must be present with that shape. */
  expect?: Map<string, Shape> | Record<string, Shape>;
  /** With `expect`, also reject names that are not expected (default false). */
  strict?: boolean;
  /** Only upload these names (default: all). */
  names?: readonly string[];
}

/** Checks a decoded file against expected names/shapes; throws naming every problem. */
export function checkSafetensors(file: SafetensorsFile, expect: Map<string, Shape>, strict = false): void {
  const problems: string[] = [];
  for (const [n, s] of expect) {
    const t = file.tensors.get(n);
    if (!t) problems.push(`'${n}' is missing`);
    else if (t.shape.length !== s.length || t.shape.some((d, i) => d !== s[i])) {
      problems.push(`'${n}' has shape ${fmt(t.shape)}, expected ${fmt(s)}`);
    }
  }
  if (strict) {
    for (const n of file.tensors.keys()) {
      if (!expect.has(n)) problems.push(`'${n}' is unexpected`);
    }
  }
  if (problems.length) throw new Error(`safetensors: ${problems.join("; ")}`);
}

/** Uploads host tensors (all or `names`) as GPU tensors. */
export function uploadSafetensors(file: SafetensorsFile, names?: readonly string[]): Map<string, Tensor> {
  const out = new Map<string, Tensor>();
  for (const n of names ?? file.tensors.keys()) {
    const t = file.tensors.get(n);
    if (!t) throw new Error(`safetensors: tensor '${n}' is not in the file`);
    out.set(n, fromArray(hostToArray(n, t), t.shape));
  }
  return out;
}

/** Reads and parses a file (host side only). */
export async function readSafetensors(path: string): Promise<SafetensorsFile> {
  const bytes = await Deno.readFile(path);
  try {
    return decodeSafetensors(bytes);
  } catch (e) {
    throw new Error(`${path}: ${(e as Error).message}`);
  }
}

/**
 * Loads a safetensors file into GPU tensors (f32 or i32), optionally checking expected names and
 * shapes first. The caller owns (and disposes) the returned tensors.
 */
export async function loadSafetensors(path: string, opts: LoadOptions = {}): Promise<Map<string, Tensor>> {
  const file = await readSafetensors(path);
  if (opts.expect) {
    const exp = opts.expect instanceof Map ? opts.expect : new Map(Object.entries(opts.expect));
    try {
      checkSafetensors(file, exp, opts.strict ?? false);
    } catch (e) {
      throw new Error(`${path}: ${(e as Error).message}`);
    }
  }
  return uploadSafetensors(file, opts.names);
}
