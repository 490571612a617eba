/**
 * Fixtures for the data-pipeline tests: small assertion helpers, temp dirs, and writers of tiny IDX
 * pairs, CIFAR archives/folders, JPEG folders and hand-built greyscale / Adobe CMYK JPEGs.
 */
import { gzipSync } from "fflate";
import { join } from "../src/util/std.ts";
import { Rng } from "../src/util/rng.ts";
import { encodeIdx, encodeJpeg, writeTar } from "../src/data/mod.ts";

export function assert(cond: unknown, msg = "assertion failed"): asserts cond {
  if (!cond) throw new Error(msg);
}

export function assertEquals(a: unknown, b: unknown, msg = ""): void {
  const sa = JSON.stringify(a, (_, v) => ArrayBuffer.isView(v) ? [...(v as Uint8Array)] : v);
  const sb = JSON.stringify(b, (_, v) => ArrayBuffer.isView(v) ? [...(v as Uint8Array)] : v);
  if (sa !== sb) {
    throw new Error(`${msg ? msg + ": " : ""}expected ${sb.slice(0, 300)}, got ${sa.slice(0, 300)}`);
  }
}

/** Asserts `fn` throws an error whose message contains `part`. */
export function assertThrowsMsg(fn: () => unknown, part: string): void {
  try {
    fn();
  } catch (e) {
    const m = (e as Error).message;
    if (!m.includes(part)) throw new Error(`error message lacks "${part}": ${m}`);
    return;
  }
  throw new Error(`expected an error containing "${part}"`);
}

/** Asserts the promise rejects with a message containing `part`. */
export async function assertRejectsMsg(fn: () => Promise<unknown>, part: string): Promise<void> {
  try {
    await fn();
  } catch (e) {
    const m = (e as Error).message;
    if (!m.includes(part)) throw new Error(`error message lacks "${part}": ${m}`);
    return;
  }
  throw new Error(`expected a rejection containing "${part}"`);
}

export function bytes(a: number[]): Uint8Array {
  return Uint8Array.from(a);
}

export function tmpDir(): string {
  return Deno.makeTempDirSync({ prefix: "ctm_data_test_" });
}

function randBytes(rng: Rng, n: number, max = 256): Uint8Array {
  const a = new Uint8Array(n);
  for (let i = 0; i < n; i++) a[i] = rng.int(max);
  return a;
}

/** Writes `<prefix>-images-idx3-ubyte[.gz]` and `<prefix>-labels-idx1-ubyte[.gz]` with random content. */
export function writeIdxPair(
  dir: string,
  prefix: string,
  n: number,
  h: number,
  w: number,
  gz: boolean,
  seed: number,
) {
  const rng = new Rng(seed);
  const images = randBytes(rng, n * h * w), labels = randBytes(rng, n, 10);
  Deno.mkdirSync(dir, { recursive: true });
  const enc = (a: Uint8Array) => gz ? gzipSync(a) : a;
  const sfx = gz ? ".gz" : "";
  Deno.writeFileSync(join(dir, `${prefix}-images-idx3-ubyte${sfx}`), enc(encodeIdx([n, h, w], images)));
  Deno.writeFileSync(join(dir, `${prefix}-labels-idx1-ubyte${sfx}`), enc(encodeIdx([n], labels)));
  return { images, labels };
}

/**
 * Writes a tiny CIFAR dataset under `dir`: `cifar-10-binary.tar.gz` / `cifar-100-binary.tar.gz` when
 * `archive`, else the extracted folder. Returns the raw records (label byte(s) + 3072 CHW pixels).
 */
export function writeCifar(
  dir: string,
  kind: "cifar10" | "cifar100",
  opts: { archive: boolean; perTrainFile: number; test: number },
): { train: Uint8Array[]; test: Uint8Array[] } {
  const rng = new Rng(kind === "cifar10" ? 11 : 12);
  const ten = kind === "cifar10";
  const rec = () => {
    const r = randBytes(rng, (ten ? 1 : 2) + 3072);
    r[0] = rng.int(ten ? 10 : 20);
    if (!ten) r[1] = rng.int(100);
    return r;
  };
  const cat = (rs: Uint8Array[]) => {
    const out = new Uint8Array(rs.reduce((a, r) => a + r.length, 0));
    rs.reduce((o, r) => (out.set(r, o), o + r.length), 0);
    return out;
  };
  const train: Uint8Array[] = [], files: { name: string; data: Uint8Array }[] = [];
  const folder = ten ? "cifar-10-batches-bin" : "cifar-100-binary";
  const enc = new TextEncoder();
  const trainFiles = ten ? [1, 2, 3, 4, 5].map((i) => `data_batch_${i}.bin`) : ["train.bin"];
  for (const f of trainFiles) {
    const rs = Array.from({ length: opts.perTrainFile }, rec);
    train.push(...rs);
    files.push({ name: `${folder}/${f}`, data: cat(rs) });
  }
  const test = Array.from({ length: opts.test }, rec);
  files.push({ name: `${folder}/${ten ? "test_batch.bin" : "test.bin"}`, data: cat(test) });
  if (ten) {
    const names = [
      "plane-from-meta",
      "automobile",
      "bird",
      "cat",
      "deer",
      "dog",
      "frog",
      "horse",
      "ship",
      "truck",
    ];
    files.push({ name: `${folder}/batches.meta.txt`, data: enc.encode(names.join("\n") + "\n\n") });
  } else {
    const fine = Array.from({ length: 100 }, (_, i) => `fine-${i}`).join("\n");
    files.push({ name: `${folder}/fine_label_names.txt`, data: enc.encode(fine + "\n") });
  }
  Deno.mkdirSync(dir, { recursive: true });
  if (opts.archive) {
    Deno.writeFileSync(
      join(dir, `${folder.replace("-batches-bin", "-binary")}.tar.gz`),
      gzipSync(writeTar(files)),
    );
  } else {
    Deno.mkdirSync(join(dir, folder), { recursive: true });
    for (const f of files) Deno.writeFileSync(join(dir, f.name), f.data);
  }
  return { train, test };
}

/** Writes `<dir>/<split>/<class>/<i>.JPEG` smooth random-colour images; returns the class names. */
export function writeJpegFolder(
  dir: string,
  split: string,
  classes: string[],
  perClass: number,
  h: number,
  w: number,
  seed = 1,
): void {
  const rng = new Rng(seed);
  for (const c of classes) {
    Deno.mkdirSync(join(dir, split, c), { recursive: true });
    for (let i = 0; i < perClass; i++) {
      const [r0, g0, b0] = [rng.int(200), rng.int(200), rng.int(200)];
      const pixels = new Uint8Array(h * w * 3);
      for (let y = 0; y < h; y++) {
        for (let x = 0; x < w; x++) {
          pixels.set([r0 + (x * 50) / w, g0 + (y * 50) / h, b0 + ((x + y) % 40)], (y * w + x) * 3);
        }
      }
      Deno.writeFileSync(join(dir, split, c, `${i}.JPEG`), encodeJpeg({ pixels, h, w, c: 3 }, 85));
    }
  }
}

/**
 * A hand-built baseline JPEG of one 8×8 block per component, each a constant `levels[k]`:
 * 1 component = greyscale; 4 components = CMYK with an Adobe APP14 marker (transform 0).
 */
export function tinyJpeg(levels: number[]): Uint8Array {
  const nc = levels.length, out: number[] = [0xff, 0xd8];
  const seg = (marker: number, body: number[]) =>
    out.push(0xff, marker, (body.length + 2) >> 8, (body.length + 2) & 255, ...body);
  if (nc === 4) seg(0xee, [..."Adobe"].map((ch) => ch.charCodeAt(0)).concat([0, 100, 0, 0, 0, 0, 0]));
  seg(0xdb, [0, ...new Array(64).fill(1)]);
  seg(0xc0, [8, 0, 8, 0, 8, nc, ...levels.flatMap((_, k) => [k + 1, 0x11, 0])]);
  const dcCounts = new Array(16).fill(0);
  dcCounts[3] = 12; // twelve 4-bit codes: category k ↦ code k
  seg(0xc4, [0x00, ...dcCounts, ...Array.from({ length: 12 }, (_, i) => i)]);
  const acCounts = new Array(16).fill(0);
  acCounts[0] = 1; // one 1-bit code: EOB
  seg(0xc4, [0x10, ...acCounts, 0x00]);
  seg(0xda, [nc, ...levels.flatMap((_, k) => [k + 1, 0x00]), 0, 63, 0]);
  const bits: number[] = [];
  const put = (v: number, n: number) => {
    for (let i = n - 1; i >= 0; i--) bits.push((v >> i) & 1);
  };
  for (const level of levels) {
    const dc = (level - 128) * 8, cat = dc === 0 ? 0 : Math.floor(Math.log2(Math.abs(dc))) + 1;
    put(cat, 4);
    if (cat) put(dc >= 0 ? dc : dc + (1 << cat) - 1, cat);
    put(0, 1); // EOB
  }
  while (bits.length % 8) bits.push(1);
  for (let i = 0; i < bits.length; i += 8) {
    const b = bits.slice(i, i + 8).reduce((a, v) => a * 2 + v, 0);
    out.push(b);
    if (b === 0xff) out.push(0);
  }
  out.push(0xff, 0xd9);
  return Uint8Array.from(out);
}
