/**
 * Throughput of the image data pipeline (host only, no GPU): images/s and CPU time per image of
 * decode + augment + normalise with 0 (in-thread), 2 and 4 workers, on
 * - a generated ImageNet-style folder (256 JPEGs of 300×240 → RandomResizedCrop 224 + flip + normalise),
 * - a generated CIFAR-10 test archive (10,000 images → AutoAugment + normalise),
 * - the real Fashion-MNIST train set when installed (60,000 images → normalise).
 *
 * `deno run -A bench/data_bench.ts [--quick]`. Each case runs one warm-up epoch (worker start and
 * dataset opening are excluded) and reports the faster of the next two. CPU time is the whole process (all threads), so
 * CPU µs/img shows the per-image cost and wall img/s the parallel speed-up; the machine's core count
 * bounds the latter.
 */
import process from "node:process";
import { gzipSync } from "fflate";
import { join } from "../src/util/std.ts";
import { Rng } from "../src/util/rng.ts";
import {
  decodeImage,
  encodeJpeg,
  hasFashionMnist,
  type ImageDataset,
  ImageLoader,
  openImageDataset,
  presetTransform,
  type TransformSpec,
  writeTar,
} from "../src/data/mod.ts";
import { applySteps } from "../src/data/transforms.ts";
import { sampleRng } from "../src/data/batch.ts";

const quick = Deno.args.includes("--quick");
const cpuMs = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
};

function makeJpegFolder(dir: string, n: number, h: number, w: number): void {
  const rng = new Rng(1);
  for (let i = 0; i < n; i++) {
    const cls = `c${i % 8}`;
    Deno.mkdirSync(join(dir, "train", cls), { recursive: true });
    const pixels = new Uint8Array(h * w * 3);
    const [r, g, b] = [rng.int(256), rng.int(256), rng.int(256)];
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < w; x++) {
        const o = (y * w + x) * 3, t = rng.int(32);
        pixels[o] = (r + x + t) & 255;
        pixels[o + 1] = (g + y + t) & 255;
        pixels[o + 2] = (b + ((x * y) >> 6)) & 255;
      }
    }
    Deno.writeFileSync(join(dir, "train", cls, `${i}.JPEG`), encodeJpeg({ pixels, h, w, c: 3 }, 90));
  }
}

function makeCifarArchive(dir: string, n: number): void {
  const rng = new Rng(2), rec = new Uint8Array(n * 3073);
  for (let i = 0; i < n; i++) {
    rec[i * 3073] = rng.int(10);
    for (let p = 0; p < 3072; p++) rec[i * 3073 + 1 + p] = (p % 32) * 4 + (p >> 7) + rng.int(64);
  }
  const files = [{ name: "cifar-10-batches-bin/test_batch.bin", data: rec }];
  Deno.writeFileSync(join(dir, "cifar-10-binary.tar.gz"), gzipSync(writeTar(files), { level: 1 }));
}

/** Times epochs 1 and 2 after a warm-up epoch 0; returns the faster as [img/s, CPU µs per image]. */
async function timeLoader(ds: ImageDataset, transform: TransformSpec, workers: number, batchSize: number) {
  const loader = new ImageLoader(ds, {
    batchSize,
    seed: 1,
    transform,
    workers,
    prefetch: 2 * Math.max(workers, 1),
  });
  try {
    for await (const _ of loader.epoch(0)) { /* warm-up: worker start, dataset opening, JIT */ }
    let best = [0, 0];
    for (const e of [1, 2]) {
      const t0 = performance.now(), c0 = cpuMs();
      let n = 0;
      for await (const b of loader.epoch(e)) n += b.size;
      const wall = (performance.now() - t0) / 1000, cpu = cpuMs() - c0;
      if (n / wall > best[0]) best = [n / wall, (cpu * 1000) / n];
    }
    return best;
  } finally {
    loader.close();
  }
}

function row(name: string, workers: number, [ips, cpu]: number[]): void {
  console.log(
    `${name.padEnd(44)} workers ${String(workers).padStart(1)}  ${ips.toFixed(0).padStart(7)} img/s  ` +
      `${cpu.toFixed(0).padStart(6)} CPU µs/img`,
  );
}

const dir = Deno.makeTempDirSync({ prefix: "ctm_data_bench_" });
try {
  console.log(`data pipeline bench (${navigator.hardwareConcurrency} logical CPUs visible)`);
  const nJpeg = quick ? 64 : 256;
  makeJpegFolder(dir, nJpeg, 240, 300);
  const folder = openImageDataset("imagefolder", dir, "train");
  // Stage costs on the calling thread: decode alone, then augment + normalise alone.
  const bytes = (folder as unknown as { files: string[] }).files.map((f) => Deno.readFileSync(f));
  let t = performance.now();
  const decoded = bytes.map((b) => decodeImage(b));
  const decodeMs = (performance.now() - t) / bytes.length;
  const imagenetTrain = presetTransform("imagenet", "train");
  t = performance.now();
  decoded.forEach((img, i) => applySteps(img, imagenetTrain, sampleRng(1, 0, i)));
  const augMs = (performance.now() - t) / decoded.length;
  console.log(
    `JPEG 300×240 decode ${decodeMs.toFixed(2)} ms/img; RandomResizedCrop 224 + flip ${
      augMs.toFixed(2)
    } ms/img`,
  );
  for (const w of [0, 2, 4]) {
    row(`JPEG folder ${nJpeg}×300×240 → RRC224+flip+norm`, w, await timeLoader(folder, imagenetTrain, w, 32));
  }
  const imagenetVal = presetTransform("imagenet", "val");
  row(`JPEG folder ${nJpeg}×300×240 → Resize256+Crop224`, 2, await timeLoader(folder, imagenetVal, 2, 32));

  const nCifar = quick ? 2000 : 10000;
  makeCifarArchive(dir, nCifar);
  const cifar = openImageDataset("cifar10", dir, "test");
  const aa = presetTransform("cifar10", "train");
  for (const w of [0, 2, 4]) {
    row(`CIFAR-10 ${nCifar} (synthetic) → AutoAugment+norm`, w, await timeLoader(cifar, aa, w, 256));
  }

  if (hasFashionMnist()) {
    const fm = openImageDataset("fashion-mnist", undefined, quick ? "test" : "train");
    const norm = presetTransform("fashion-mnist", "train");
    for (const w of [0, 2, 4]) {
      row(`Fashion-MNIST ${fm.length} → normalise`, w, await timeLoader(fm, norm, w, 256));
    }
  } else {
    console.log("Fashion-MNIST not installed (apt install dataset-fashion-mnist): skipped");
  }
} finally {
  Deno.removeSync(dir, { recursive: true });
}
