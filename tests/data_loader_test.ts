/**
 * The batched loader: seeded shuffles, batches identical with 0 and 2 workers (and for any batch
 * size), dropLast, normalisation against raw bytes, errors from workers, early exit, and the real
 * Fashion-MNIST from Debian's package when it is installed.
 */
import { join } from "../src/util/std.ts";
import {
  ArrayImageDataset,
  type Batch,
  DATASET_STATS,
  FASHION_MNIST_CLASSES,
  hasFashionMnist,
  ImageLoader,
  type LoaderOptions,
  openImageDataset,
  presetTransform,
  randomCrop,
  randomHorizontalFlip,
  randomResizedCrop,
} from "../src/data/mod.ts";
import { encodeJpeg } from "../src/data/jpeg.ts";
import type { ImageDataset } from "../src/data/types.ts";
import {
  assert,
  assertEquals,
  assertRejectsMsg,
  assertThrowsMsg,
  tmpDir,
  writeIdxPair,
  writeJpegFolder,
} from "./data_fixtures.ts";

async function collect(ds: ImageDataset, opts: LoaderOptions, epoch: number): Promise<Batch[]> {
  const loader = new ImageLoader(ds, opts);
  try {
    const out: Batch[] = [];
    for await (const b of loader.epoch(epoch)) out.push(b);
    return out;
  } finally {
    loader.close();
  }
}

const cat = (bs: Batch[], f: (b: Batch) => ArrayLike<number>) => bs.flatMap((b) => Array.from(f(b)));

Deno.test("loader: same seed gives the same batches with 0 and 2 workers; seeded permutations; dropLast", async () => {
  const dir = tmpDir();
  try {
    const raw = writeIdxPair(dir, "train", 37, 9, 7, true, 4);
    const ds = openImageDataset("mnist", dir, "train");
    const transform = { steps: [randomCrop([6, 6], 2), randomHorizontalFlip()], mean: [0.5], std: [0.25] };
    const base = { batchSize: 8, seed: 5, transform };
    for (const epoch of [0, 1]) {
      const a = await collect(ds, { ...base, workers: 0 }, epoch);
      const b = await collect(ds, { ...base, workers: 2, prefetch: 3 }, epoch);
      assertEquals(
        a.map((x) => [x.size, x.channels, x.height, x.width]),
        [8, 8, 8, 8, 5].map((n) => [n, 1, 6, 6]),
      );
      assertEquals(b.map((x) => x.size), [8, 8, 8, 8, 5]);
      for (let i = 0; i < a.length; i++) {
        assertEquals(b[i].indices, a[i].indices, `epoch ${epoch} batch ${i} indices`);
        assertEquals(b[i].labels, a[i].labels, `epoch ${epoch} batch ${i} labels`);
        assert(a[i].images.every((v, j) => v === b[i].images[j]), `epoch ${epoch} batch ${i}: images differ`);
        assertEquals(a[i].images.length, a[i].size * 36);
        assertEquals([...a[i].labels], [...a[i].indices].map((k) => raw.labels[k]));
      }
      const order = cat(a, (x) => x.indices);
      assertEquals(
        [...order].sort((x, y) => x - y),
        Array.from({ length: 37 }, (_, i) => i),
        "a permutation",
      );
    }
    const e0 = cat(await collect(ds, { ...base }, 0), (x) => x.indices);
    const e1 = cat(await collect(ds, { ...base }, 1), (x) => x.indices);
    const s6 = cat(await collect(ds, { ...base, seed: 6 }, 0), (x) => x.indices);
    assert(
      JSON.stringify(e0) !== JSON.stringify(e1) && JSON.stringify(e0) !== JSON.stringify(s6),
      "orders vary",
    );
    const plain = await collect(ds, {
      batchSize: 10,
      shuffle: false,
      transform: { steps: [], mean: [0.5], std: [0.25] },
    }, 3);
    assertEquals(cat(plain, (x) => x.indices), Array.from({ length: 37 }, (_, i) => i));
    for (let j = 0; j < 63 * 10; j++) {
      const want = (raw.images[j] / 255 - 0.5) / 0.25;
      assert(Math.abs(plain[0].images[j] - want) < 1e-6, `normalised pixel ${j}`);
    }
    const dropped = await collect(ds, { ...base, dropLast: true, workers: 2 }, 0);
    assertEquals(dropped.map((x) => x.size), [8, 8, 8, 8]);
    assertEquals(new ImageLoader(ds, { batchSize: 8, dropLast: true }).batchesPerEpoch, 4);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("loader: a JPEG folder with RandomResizedCrop gives the same samples for any workers and batch size", async () => {
  const dir = tmpDir();
  try {
    writeJpegFolder(dir, "train", ["b", "a", "c"], 4, 30, 40);
    const ds = openImageDataset("imagefolder", dir, "train");
    const transform = { steps: [randomResizedCrop(16), randomHorizontalFlip()], ...DATASET_STATS.imagenet };
    const a = await collect(ds, { batchSize: 5, seed: 9, transform, workers: 0 }, 2);
    const b = await collect(ds, { batchSize: 4, seed: 9, transform, workers: 2 }, 2);
    assertEquals(a.map((x) => [x.size, x.channels, x.height, x.width]), [[5, 3, 16, 16], [5, 3, 16, 16], [
      2,
      3,
      16,
      16,
    ]]);
    assertEquals(cat(a, (x) => x.indices), cat(b, (x) => x.indices));
    assertEquals(cat(a, (x) => x.labels), cat(b, (x) => x.labels));
    const ia = cat(a, (x) => x.images), ib = cat(b, (x) => x.images);
    assert(ia.length === 12 * 3 * 256 && ia.every((v, i) => v === ib[i]), "images equal");
    const c = await collect(ds, { batchSize: 5, seed: 9, transform, workers: 0 }, 3);
    assert(cat(c, (x) => x.images).some((v, i) => v !== ia[i]), "another epoch draws other crops");
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("loader: errors reach the consumer; in-memory data needs workers: 0; early exit and close are clean", async () => {
  const dir = tmpDir();
  try {
    writeJpegFolder(dir, "train", ["x", "y"], 3, 10, 12);
    const bad = join(dir, "train", "y", "1.JPEG");
    Deno.writeFileSync(bad, Deno.readFileSync(bad).subarray(0, 50));
    const ds = openImageDataset("imagefolder", dir, "train");
    const transform = { steps: [randomResizedCrop(8)] };
    for (const workers of [0, 2]) {
      const loader = new ImageLoader(ds, { batchSize: 2, shuffle: false, transform, workers });
      await assertRejectsMsg(async () => {
        for await (const _ of loader.epoch(0)) { /* consume */ }
      }, `${bad}: cannot decode JPEG`);
      loader.close();
    }
    const early = new ImageLoader(ds, { batchSize: 1, transform, workers: 2, prefetch: 4, shuffle: false });
    for await (const b of early.epoch(0)) {
      assertEquals(b.size, 1);
      break;
    }
    early.close(); // the remaining prefetched batches (one of them failing) are dropped quietly
    await new Promise((r) => setTimeout(r, 50));
    const loose = new ImageLoader(ds, { batchSize: 2, workers: 1 }); // no transform: all are 10×12
    assertEquals((await loose.loadBatch([0, 1])).height, 10);
    loose.close();
    await assertRejectsMsg(() => loose.loadBatch([0]), "after close()");
    Deno.writeFileSync(
      join(dir, "train", "x", "big.JPEG"),
      encodeJpeg({ pixels: new Uint8Array(300), h: 10, w: 10, c: 3 }),
    );
    const stale = new ImageLoader(ds, { batchSize: 2, workers: 1 });
    await assertRejectsMsg(
      () => stale.loadBatch([0]),
      "has 7 samples, the loader's dataset has 6 (did the files change?)",
    );
    stale.close();
    const mixed = openImageDataset("imagefolder", dir, "train");
    const ml = new ImageLoader(mixed, { batchSize: 8, shuffle: false });
    await assertRejectsMsg(() => ml.loadBatch([0, 3]), "batches need one size"); // x/big.JPEG is 10×10

    const px = new Uint8Array(6 * 2 * 2 * 3).map((_, i) => i);
    const mem = new ArrayImageDataset(px, [0, 1, 2, 0, 1, 2], { h: 2, w: 2, c: 3 });
    assertThrowsMsg(() => new ImageLoader(mem, { batchSize: 2, workers: 1 }), "use workers: 0");
    const mb = await new ImageLoader(mem, { batchSize: 4, shuffle: false }).loadBatch([5]);
    assertEquals([mb.labels[0], Math.round(mb.images[0] * 255), Math.round(mb.images[4] * 255)], [2, 60, 61]);

    assertThrowsMsg(() => new ImageLoader(ds, { batchSize: 0 }), "batchSize 0");
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test({
  name:
    "loader: real Fashion-MNIST (Debian dataset-fashion-mnist): sizes, classes, balance, mean/std, workers",
  ignore: !hasFashionMnist(),
  fn: async () => {
    const train = openImageDataset("fashion-mnist", undefined, "train");
    const test = openImageDataset("fashion-mnist", undefined, "test");
    assertEquals([train.length, test.length, train.height, train.width, train.channels], [
      60000,
      10000,
      28,
      28,
      1,
    ]);
    assertEquals(train.classes, FASHION_MNIST_CLASSES);
    const counts = new Array(10).fill(0);
    for (const l of test.labels) counts[l]++;
    assertEquals(counts, new Array(10).fill(1000));
    let s = 0, s2 = 0;
    for (let i = 0; i < train.length; i++) {
      for (const v of train.get(i).pixels) {
        s += v / 255;
        s2 += (v / 255) ** 2;
      }
    }
    const n = train.length * 784, mean = s / n, std = Math.sqrt(s2 / n - mean * mean);
    const stats = DATASET_STATS["fashion-mnist"];
    assert(
      Math.abs(mean - stats.mean[0]) < 5e-4 && Math.abs(std - stats.std[0]) < 5e-4,
      `mean ${mean} std ${std}`,
    );
    const opts = { batchSize: 100, seed: 2, transform: presetTransform("fashion-mnist", "train") };
    const a = await new ImageLoader(test, opts).loadBatch(Array.from({ length: 100 }, (_, i) => 99 * i));
    const loader = new ImageLoader(test, { ...opts, workers: 2 });
    try {
      const b = await loader.loadBatch(Array.from({ length: 100 }, (_, i) => 99 * i));
      assert(
        a.images.every((v, i) => v === b.images[i]) && a.labels.every((v, i) => v === b.labels[i]),
        "same batch",
      );
      let m = 0;
      for (const v of b.images) m += v;
      assert(Math.abs(m / b.images.length) < 0.2, "normalised images are roughly centred");
    } finally {
      loader.close();
    }
  },
});
