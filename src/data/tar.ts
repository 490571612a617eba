/**
 * A minimal reader of tar archives (POSIX ustar, with GNU long names and pax `path` records): enough
 * for the dataset archives users download (CIFAR's `*-binary.tar.gz`). Gzip is undone with `fflate`.
 */
import { gunzipSync } from "fflate";

/** One regular file of an archive: its path and a view of its bytes inside the archive buffer. */
export interface TarEntry {
  /** Path inside the archive, e.g. "cifar-10-batches-bin/data_batch_1.bin". */
  name: string;
  /** The file's bytes (a subarray of the archive; copy it to keep it past the archive). */
  data: Uint8Array;
}

const BLOCK = 512;
const dec = new TextDecoder();

function cString(b: Uint8Array, off: number, len: number): string {
  let end = off;
  while (end < off + len && b[end] !== 0) end++;
  return dec.decode(b.subarray(off, end));
}

/** Parses a numeric header field: octal text, or GNU base-256 when the top bit is set. */
function numField(b: Uint8Array, off: number, len: number): number {
  if (b[off] & 0x80) {
    let v = b[off] & 0x7f;
    for (let i = 1; i < len; i++) v = v * 256 + b[off + i];
    return v;
  }
  const s = cString(b, off, len).trim();
  return s === "" ? 0 : parseInt(s, 8);
}

function checksumOk(b: Uint8Array, off: number): boolean {
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 32 : b[off + i];
  return sum === numField(b, off + 148, 8);
}

function paxPath(data: Uint8Array): string | undefined {
  const text = dec.decode(data);
  let i = 0, path: string | undefined;
  while (i < text.length) {
    const sp = text.indexOf(" ", i);
    if (sp < 0) break;
    const len = parseInt(text.slice(i, sp), 10);
    if (!(len > 0)) break;
    const rec = text.slice(sp + 1, i + len - 1);
    const eq = rec.indexOf("=");
    if (rec.slice(0, eq) === "path") path = rec.slice(eq + 1);
    i += len;
  }
  return path;
}

/**
 * Lists the regular files of an uncompressed tar archive. `what` names the archive in errors.
 * Throws when a header's checksum is wrong or a file runs past the end (truncated download).
 */
export function readTar(bytes: Uint8Array, what = "archive"): TarEntry[] {
  const out: TarEntry[] = [];
  let off = 0, longName: string | undefined, ended = false;
  while (off + BLOCK <= bytes.length) {
    let zero = true;
    for (let i = 0; i < BLOCK && zero; i++) zero = bytes[off + i] === 0;
    if (zero) {
      ended = true; // end-of-archive marker
      break;
    }
    if (!checksumOk(bytes, off)) {
      throw new Error(`${what}: not a tar archive, or corrupt (bad header checksum at byte ${off})`);
    }
    const size = numField(bytes, off + 124, 12);
    const type = String.fromCharCode(bytes[off + 156] || 48);
    const start = off + BLOCK;
    if (start + size > bytes.length) {
      throw new Error(
        `${what}: truncated (an entry needs ${size} bytes past byte ${start}); download it again`,
      );
    }
    const data = bytes.subarray(start, start + size);
    off = start + Math.ceil(size / BLOCK) * BLOCK;
    if (type === "L") {
      longName = cString(data, 0, data.length);
      continue;
    }
    if (type === "x") {
      longName = paxPath(data) ?? longName;
      continue;
    }
    let name = cString(bytes, start - BLOCK, 100);
    const magic = cString(bytes, start - BLOCK + 257, 6);
    if (magic.startsWith("ustar")) {
      const prefix = cString(bytes, start - BLOCK + 345, 155);
      if (prefix) name = `${prefix}/${name}`;
    }
    if (longName !== undefined) name = longName;
    longName = undefined;
    if (type === "0" || type === "7") out.push({ name: name.replace(/^\.\//, ""), data });
  }
  if (!ended && off !== bytes.length) {
    throw new Error(`${what}: truncated (ends inside an entry); download it again`);
  }
  return out;
}

/** True when `bytes` start with the gzip magic number. */
export function isGzip(bytes: Uint8Array): boolean {
  return bytes.length >= 2 && bytes[0] === 0x1f && bytes[1] === 0x8b;
}

/** Un-gzips `bytes` when they are gzip data; returns them unchanged otherwise. */
export function maybeGunzip(bytes: Uint8Array, what = "file"): Uint8Array {
  if (!isGzip(bytes)) return bytes;
  try {
    return gunzipSync(bytes);
  } catch (e) {
    throw new Error(
      `${what}: gzip data is corrupt or truncated (${(e as Error).message}); download it again`,
    );
  }
}

/** Reads a `.tar` or `.tar.gz` file and lists its regular files. */
export function readTarFile(path: string): TarEntry[] {
  return readTar(maybeGunzip(Deno.readFileSync(path), path), path);
}

/** Builds an uncompressed ustar archive from files (tests and tools; names ≤ 100 bytes). */
export function writeTar(files: { name: string; data: Uint8Array }[]): Uint8Array {
  const enc = new TextEncoder();
  let total = 2 * BLOCK;
  for (const f of files) total += BLOCK + Math.ceil(f.data.length / BLOCK) * BLOCK;
  const out = new Uint8Array(total);
  let off = 0;
  const put = (s: string, at: number) => out.set(enc.encode(s), off + at);
  for (const f of files) {
    if (enc.encode(f.name).length > 100) throw new Error(`writeTar: name longer than 100 bytes: ${f.name}`);
    put(f.name, 0);
    put("0000644\0", 100);
    put("0000000\0", 108);
    put("0000000\0", 116);
    put(f.data.length.toString(8).padStart(11, "0") + "\0", 124);
    put("00000000000\0", 136);
    put("        ", 148);
    put("0", 156);
    put("ustar\0" + "00", 257);
    let sum = 0;
    for (let i = 0; i < BLOCK; i++) sum += out[off + i];
    put(sum.toString(8).padStart(6, "0") + "\0 ", 148);
    out.set(f.data, off + BLOCK);
    off += BLOCK + Math.ceil(f.data.length / BLOCK) * BLOCK;
  }
  return out;
}
