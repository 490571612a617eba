import { fromArray } from "../src/ops/creation.ts";
import {
  arrayToHost,
  decodeSafetensors,
  encodeSafetensors,
  f16ToF32,
  f32ToF16,
  type HostTensor,
  hostToArray,
  loadSafetensors,
  readSafetensors,
  saveSafetensors,
  uploadSafetensors,
} from "../src/io/safetensors.ts";
import type { Tensor } from "../src/tensor/tensor.ts";
import { keep } from "../src/tensor/scope.ts";
import { AdamW } from "../src/optim/adamw.ts";
import type { OptimizerMeta } from "../src/optim/optimizer.ts";
import { assertClose, gpuTest, Rng } from "./helpers.ts";

async function expectReject(f: () => Promise<unknown> | unknown, ...texts: string[]): Promise<void> {
  try {
    await f();
  } catch (e) {
    if (texts.every((t) => String(e).includes(t))) return;
    throw new Error(`expected [${texts.join(" | ")}], got ${e}`);
  }
  throw new Error(`expected an error containing [${texts.join(" | ")}]`);
}

/** Builds a file by hand: header JSON (unpadded) and raw data bytes. */
function handBuilt(header: string, data: Uint8Array): Uint8Array {
  const h = new TextEncoder().encode(header);
  const out = new Uint8Array(8 + h.length + data.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(h.length), true);
  out.set(h, 8);
  out.set(data, 8 + h.length);
  return out;
}

function bytesOf(a: ArrayBufferView): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}

Deno.test("hand-built file: header, metadata, dtype conversions", () => {
  const data = new Uint8Array(16 + 4 + 2 + 4);
  const dv = new DataView(data.buffer);
  dv.setBigInt64(0, 7n, true);
  dv.setBigInt64(8, -3n, true);
  dv.setUint16(16, 0x3c00, true); // 1.0
  dv.setUint16(18, 0xc000, true); // -2.0
  dv.setUint16(20, 0x3fc0, true); // bf16 1.5
  dv.setFloat32(22, 0.25, true); // unaligned F32
  const header = JSON.stringify({
    __metadata__: { format: "pt", note: "hand" },
    b: { dtype: "I64", shape: [2], data_offsets: [0, 16] },
    a: { dtype: "F16", shape: [2, 1], data_offsets: [16, 20] },
    c: { dtype: "BF16", shape: [], data_offsets: [20, 22] },
    d: { dtype: "F32", shape: [1, 1], data_offsets: [22, 26] },
  });
  const f = decodeSafetensors(handBuilt(header, data));
  if (f.metadata.format !== "pt" || f.metadata.note !== "hand") throw new Error("metadata");
  if ([...f.tensors.keys()].join() !== "b,a,c,d") throw new Error("names");
  const a = f.tensors.get("a")!;
  if (a.dtype !== "F16" || a.shape.join() !== "2,1") throw new Error("entry a");
  assertClose(hostToArray("b", f.tensors.get("b")!), [7, -3]);
  if (!(hostToArray("b", f.tensors.get("b")!) instanceof Int32Array)) throw new Error("I64 → i32");
  assertClose(hostToArray("a", a), [1, -2]);
  assertClose(hostToArray("c", f.tensors.get("c")!), [1.5]);
  assertClose(hostToArray("d", f.tensors.get("d")!), [0.25]);
});

Deno.test("f16 conversion: known values and every f16 bit pattern round-trips", () => {
  const cases: [number, number][] = [
    [1, 0x3c00],
    [-2, 0xc000],
    [65504, 0x7bff],
    [65520, 0x7c00],
    [1e9, 0x7c00],
    [0.1, 0x2e66],
    [-0, 0x8000],
    [6e-8, 0x0001],
    [1e-8, 0x0000],
    [2 ** -14, 0x0400],
    [Infinity, 0x7c00],
    [-Infinity, 0xfc00],
  ];
  for (const [x, h] of cases) {
    if (f32ToF16(x) !== h) {
      throw new Error(`f32ToF16(${x}) = ${f32ToF16(x).toString(16)}, expected ${h.toString(16)}`);
    }
  }
  if ((f32ToF16(NaN) & 0x7c00) !== 0x7c00 || (f32ToF16(NaN) & 0x3ff) === 0) throw new Error("NaN");
  for (let h = 0; h < 65536; h++) {
    const x = f16ToF32(h);
    if (Number.isNaN(x)) continue;
    if (f32ToF16(x) !== h) throw new Error(`f16 ${h.toString(16)} → ${x} → ${f32ToF16(x).toString(16)}`);
  }
});

Deno.test("byte-level round trip of every dtype; data 8-byte aligned", () => {
  const m = new Map<string, HostTensor>([
    ["f64", { dtype: "F64", shape: [2], data: bytesOf(new Float64Array([1.5, -1e300])) }],
    ["f32", { dtype: "F32", shape: [3], data: bytesOf(new Float32Array([1, 2, 3])) }],
    ["f16", { dtype: "F16", shape: [1], data: bytesOf(new Uint16Array([0x3555])) }],
    ["i64", { dtype: "I64", shape: [1], data: bytesOf(new BigInt64Array([-5n])) }],
    ["u8", { dtype: "U8", shape: [3], data: new Uint8Array([1, 2, 255]) }],
    ["i8", { dtype: "I8", shape: [2], data: bytesOf(new Int8Array([-128, 5])) }],
    ["i16", { dtype: "I16", shape: [1], data: bytesOf(new Int16Array([-300])) }],
    ["bool", { dtype: "BOOL", shape: [2], data: new Uint8Array([1, 0]) }],
  ]);
  const bytes = encodeSafetensors(m, { k: "v" });
  const hlen = Number(new DataView(bytes.buffer).getBigUint64(0, true));
  if (hlen % 8 !== 0) throw new Error("header not padded to 8 bytes");
  const back = decodeSafetensors(bytes);
  for (const [n, t] of m) {
    const b = back.tensors.get(n)!;
    if (b.dtype !== t.dtype || b.shape.join() !== t.shape.join() || b.data.join() !== t.data.join()) {
      throw new Error(`round trip of ${n}`);
    }
  }
  assertClose(hostToArray("i8", back.tensors.get("i8")!), [-128, 5]);
  assertClose(hostToArray("i16", back.tensors.get("i16")!), [-300]);
  assertClose(hostToArray("u8", back.tensors.get("u8")!), [1, 2, 255]);
  if (back.metadata.k !== "v") throw new Error("metadata");
});

Deno.test("malformed files give clear errors", async () => {
  const good = encodeSafetensors(new Map([["w", arrayToHost(new Float32Array([1, 2, 3, 4]), [2, 2])]]));
  await expectReject(() => decodeSafetensors(good.subarray(0, 5)), "too short");
  await expectReject(() => decodeSafetensors(good.subarray(0, 20)), "exceeds", "truncated");
  await expectReject(() => decodeSafetensors(good.subarray(0, good.length - 4)), "'w'", "truncated");
  await expectReject(() => decodeSafetensors(handBuilt("{not json", new Uint8Array())), "not valid JSON");
  await expectReject(() => decodeSafetensors(handBuilt("[1]", new Uint8Array())), "JSON object");
  const entry = (e: unknown) => handBuilt(JSON.stringify({ x: e }), new Uint8Array(16));
  await expectReject(
    () => decodeSafetensors(entry({ dtype: "Q8", shape: [1], data_offsets: [0, 1] })),
    "'x'",
    "dtype",
  );
  await expectReject(
    () => decodeSafetensors(entry({ dtype: "F32", shape: [3], data_offsets: [0, 8] })),
    "'x'",
    "needs 12 bytes",
  );
  await expectReject(
    () => decodeSafetensors(entry({ dtype: "F32", shape: [-1], data_offsets: [0, 4] })),
    "bad shape",
  );
  await expectReject(
    () => decodeSafetensors(entry({ dtype: "F32", shape: [1], data_offsets: [4] })),
    "data_offsets",
  );
  const overlap = handBuilt(
    JSON.stringify({
      p: { dtype: "F32", shape: [2], data_offsets: [0, 8] },
      q: { dtype: "F32", shape: [2], data_offsets: [4, 12] },
    }),
    new Uint8Array(12),
  );
  await expectReject(() => decodeSafetensors(overlap), "overlap");
  const big = handBuilt(
    JSON.stringify({ idx: { dtype: "I64", shape: [2], data_offsets: [0, 16] } }),
    bytesOf(new BigInt64Array([1n, 1n << 40n])),
  );
  await expectReject(
    () => hostToArray("idx", decodeSafetensors(big).tensors.get("idx")!),
    "'idx'",
    "outside the i32 range",
  );
});

gpuTest("GPU save/load round trip of every stored dtype, atomically", async () => {
  const dir = await Deno.makeTempDir();
  const path = `${dir}/w.safetensors`;
  const rng = new Rng(9);
  const vals = Float32Array.from(rng.uniformArray(37, -3, 3));
  const idx = Int32Array.from([0, -7, 2147483647, -2147483648]);
  const tensors: Record<string, Tensor> = {
    "layer.0.weight": fromArray(vals, [37]),
    "buf.idx": fromArray(idx),
    "u": fromArray(new Uint32Array([1, 4000000000])),
  };
  for (const opts of [{}, { float: "F16" as const, int: "I64" as const }, { float: "BF16" as const }]) {
    await saveSafetensors(path, tensors, { step: "12" }, opts);
    const entries = [...Deno.readDirSync(dir)].map((e) => e.name);
    if (entries.join() !== "w.safetensors") throw new Error(`temp files left: ${entries}`);
    const file = await readSafetensors(path);
    const want = opts.float ?? "F32";
    if (file.tensors.get("layer.0.weight")!.dtype !== want) throw new Error("float dtype");
    if (file.tensors.get("buf.idx")!.dtype !== (opts.int ?? "I32")) throw new Error("int dtype");
    if (file.metadata.step !== "12") throw new Error("metadata");
    const back = await loadSafetensors(path, { expect: { "layer.0.weight": [37], "buf.idx": [4] } });
    const w = back.get("layer.0.weight")!;
    const tol = want === "F32" ? 0 : want === "F16" ? 1e-3 : 8e-3;
    assertClose(await w.toArray(), vals, { atol: 0, rtol: tol, msg: want });
    const i = back.get("buf.idx")!;
    if (i.dtype !== "i32") throw new Error("indices should load as i32");
    assertClose(await i.toArray(), idx, { atol: 0, rtol: 0 });
    assertClose(await back.get("u")!.toArray(), [1, 4000000000], { atol: 0, rtol: 0 });
    for (const t of back.values()) t.dispose();
  }
  await expectReject(
    () => loadSafetensors(path, { expect: { "layer.1.weight": [37] } }),
    "'layer.1.weight' is missing",
  );
  await expectReject(
    () => loadSafetensors(path, { expect: { "layer.0.weight": [36] } }),
    "'layer.0.weight' has shape [37], expected [36]",
  );
  await expectReject(
    () => loadSafetensors(path, { expect: { "buf.idx": [4] }, strict: true }),
    "'u' is unexpected",
  );
  await Deno.writeFile(path, (await Deno.readFile(path)).subarray(0, 50));
  await expectReject(() => loadSafetensors(path), "w.safetensors", "truncated");
  for (const t of Object.values(tensors)) t.dispose();
  await Deno.remove(dir, { recursive: true });
});

gpuTest("an optimizer checkpoint survives a safetensors round trip (metadata as JSON)", async () => {
  const dir = await Deno.makeTempDir();
  const path = `${dir}/opt.safetensors`;
  const mk = (v: number[]) => keep(fromArray(v).requireGrad());
  const grad = (p: Tensor, g: number[]) => {
    p.grad?.dispose();
    p.grad = keep(fromArray(g));
  };
  const a = mk([1, 2, 3]);
  const opt = new AdamW([a], { lr: 0.1 });
  grad(a, [0.5, -1, 2]);
  opt.step();
  const sd = opt.stateDict();
  await saveSafetensors(path, sd.tensors, { optimizer: JSON.stringify(sd.meta) });
  const file = await readSafetensors(path);
  const meta = JSON.parse(file.metadata.optimizer) as OptimizerMeta;
  const b = mk(Array.from(await a.toArray()));
  const opt2 = new AdamW([b], { lr: 0.1 });
  const loaded = uploadSafetensors(file);
  opt2.loadStateDict({ meta, tensors: loaded });
  for (const t of loaded.values()) t.dispose();
  for (const [p, o] of [[a, opt], [b, opt2]] as const) {
    grad(p, [1, 1, -1]);
    o.step();
  }
  assertClose(await b.toArray(), await a.toArray(), { atol: 0, rtol: 0 });
  for (const x of [opt, opt2]) x.dispose();
  a.dispose();
  b.dispose();
  await Deno.remove(dir, { recursive: true });
});
