/**
 * Dataset readers on small files generated in a temp dir: IDX (.gz and raw), tar, CIFAR-10/100
 * (archive and extracted folder), ImageNet-style JPEG folders, JPEG/PNG decoding (including
 * hand-built greyscale and Adobe CMYK JPEGs), and the clear errors for missing or malformed data.
 */
import { gzipSync } from "fflate";
import { join } from "../src/util/std.ts";
import { Rng } from "../src/util/rng.ts";
import { encodePng } from "../src/plot/png.ts";
import {
  CIFAR100_CLASSES,
  decodeImage,
  encodeIdx,
  encodeJpeg,
  openFromDescription,
  openImageDataset,
  parseIdx,
  readTar,
  writeTar,
} from "../src/data/mod.ts";
import {
  assert,
  assertEquals,
  assertThrowsMsg,
  bytes,
  tinyJpeg,
  tmpDir,
  writeCifar,
  writeIdxPair,
} from "./data_fixtures.ts";

Deno.test("data: IDX pairs (gzip in the root, raw in raw/) read back exactly, and re-open from their description", () => {
  const dir = tmpDir();
  try {
    const train = writeIdxPair(dir, "train", 7, 5, 4, true, 1);
    const test = writeIdxPair(join(dir, "raw"), "t10k", 3, 5, 4, false, 2);
    const ds = openImageDataset("mnist", dir, "train");
    assertEquals([ds.length, ds.height, ds.width, ds.channels, ds.classes.length], [7, 5, 4, 1, 10]);
    for (let i = 0; i < 7; i++) {
      const s = ds.get(i);
      assertEquals([s.h, s.w, s.c, s.label], [5, 4, 1, train.labels[i]]);
      assertEquals([...s.pixels], [...train.images.subarray(i * 20, (i + 1) * 20)]);
    }
    const te = openImageDataset("mnist", dir, "test");
    assertEquals([te.length, [...te.labels]], [3, [...test.labels]]);
    const again = openFromDescription(te.description!);
    assertEquals([...again.get(2).pixels], [...te.get(2).pixels]);
    assertThrowsMsg(() => ds.get(7), "out of range");
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("data: malformed or missing IDX files give errors naming the path and the layout", () => {
  const dir = tmpDir();
  try {
    assertThrowsMsg(() => openImageDataset("mnist", dir, "train"), `MNIST`.toLowerCase());
    assertThrowsMsg(() => openImageDataset("mnist", dir, "train"), "expected train-images-idx3-ubyte.gz");
    assertThrowsMsg(() => openImageDataset("fashion-mnist", dir, "test"), "t10k-labels-idx1-ubyte.gz");
    writeIdxPair(dir, "train", 4, 3, 3, true, 3);
    Deno.writeFileSync(join(dir, "train-labels-idx1-ubyte.gz"), gzipSync(encodeIdx([5], new Uint8Array(5))));
    assertThrowsMsg(() => openImageDataset("mnist", dir, "train"), "4 images but 5 labels");
    Deno.writeFileSync(join(dir, "train-labels-idx1-ubyte.gz"), bytes([1, 2, 3, 4, 5]));
    assertThrowsMsg(() => openImageDataset("mnist", dir, "train"), "not an IDX file");
    assertThrowsMsg(() => parseIdx(encodeIdx([3, 2], new Uint8Array(5)), "x.idx"), "need 6 bytes");
    Deno.writeFileSync(
      join(dir, "train-labels-idx1-ubyte.gz"),
      gzipSync(encodeIdx([4], bytes([0, 1, 2, 10]))),
    );
    assertThrowsMsg(() => openImageDataset("mnist", dir, "train"), "label 10 is out of range");
    assertThrowsMsg(() => openImageDataset("nope", dir), "unknown dataset");
    assertThrowsMsg(() => openImageDataset("mnist", dir, "dev"), "unknown split");
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("data: tar round trip, and corrupt or truncated archives are reported", () => {
  const files = [{ name: "a/b.bin", data: bytes([1, 2, 3]) }, {
    name: "c.txt",
    data: new Uint8Array(700).fill(7),
  }];
  const tar = writeTar(files);
  const back = readTar(tar);
  assertEquals(back.map((e) => [e.name, e.data.length, e.data[0]]), [["a/b.bin", 3, 1], ["c.txt", 700, 7]]);
  const bad = tar.slice();
  bad[10] ^= 0xff;
  assertThrowsMsg(() => readTar(bad, "x.tar"), "bad header checksum");
  assertThrowsMsg(() => readTar(tar.subarray(0, 900), "x.tar"), "truncated");
  assertThrowsMsg(() => readTar(tar.subarray(0, 1024 + 512 + 100), "x.tar"), "truncated");
  assertEquals(readTar(tar.subarray(0, 1024)).length, 1); // ends cleanly after a whole entry
});

Deno.test("data: CIFAR-10 from tar.gz (root or archive path) and from the extracted folder agree", () => {
  const dir = tmpDir();
  try {
    const recs = writeCifar(dir, "cifar10", { archive: true, perTrainFile: 3, test: 4 });
    writeCifar(join(dir, "x"), "cifar10", { archive: false, perTrainFile: 3, test: 4 });
    const a = openImageDataset("cifar10", dir, "train");
    const b = openImageDataset("cifar-10", join(dir, "cifar-10-binary.tar.gz"), "train");
    const c = openImageDataset("cifar10", join(dir, "x"), "train");
    const d = openImageDataset("cifar10", join(dir, "x", "cifar-10-batches-bin"), "train");
    assertEquals([a.length, a.channels, a.height, a.width], [15, 3, 32, 32]);
    assertEquals(a.classes[0], "plane-from-meta");
    for (const ds of [a, b, c, d]) {
      for (const i of [0, 4, 14]) {
        const s = ds.get(i), r = recs.train[i];
        assertEquals(s.label, r[0]);
        for (const [y, x, ch] of [[0, 0, 0], [5, 31, 1], [31, 7, 2], [17, 17, 0]]) {
          assertEquals(s.pixels[(y * 32 + x) * 3 + ch], r[1 + ch * 1024 + y * 32 + x]);
        }
      }
    }
    const t = openImageDataset("cifar10", dir, "val");
    assertEquals([t.length, [...t.labels]], [4, recs.test.map((r) => r[0])]);
    assertEquals(openFromDescription(t.description!).get(3).pixels, t.get(3).pixels);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("data: CIFAR-100 uses the fine label (second byte) and fine_label_names.txt", () => {
  const dir = tmpDir();
  try {
    const recs = writeCifar(dir, "cifar100", { archive: true, perTrainFile: 5, test: 2 });
    writeCifar(join(dir, "x"), "cifar100", { archive: false, perTrainFile: 5, test: 2 });
    for (const root of [dir, join(dir, "x")]) {
      const ds = openImageDataset("cifar100", root, "train");
      assertEquals([ds.length, ds.classes.length, ds.classes[99]], [5, 100, "fine-99"]);
      assertEquals([...ds.labels], recs.train.map((r) => r[1]));
      const s = ds.get(3);
      assertEquals([s.pixels[0], s.pixels[1], s.pixels[2]], [
        recs.train[3][2],
        recs.train[3][2 + 1024],
        recs.train[3][2 + 2048],
      ]);
    }
    assertEquals(CIFAR100_CLASSES.length, 100);
    assertEquals(new Set(CIFAR100_CLASSES).size, 100);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("data: missing or malformed CIFAR data gives errors naming the path and the expected layout", () => {
  const dir = tmpDir();
  try {
    assertThrowsMsg(
      () => openImageDataset("cifar10", dir),
      `CIFAR-10 not found at ${dir}: expected cifar-10-binary.tar.gz or cifar-10-batches-bin/data_batch_{1..5}.bin`,
    );
    assertThrowsMsg(
      () => openImageDataset("cifar100", dir),
      "expected cifar-100-binary.tar.gz or cifar-100-binary/train.bin",
    );
    Deno.mkdirSync(join(dir, "cifar-10-batches-py"));
    assertThrowsMsg(() => openImageDataset("cifar10", dir), "Python pickle version");
    writeCifar(join(dir, "ex"), "cifar10", { archive: false, perTrainFile: 2, test: 1 });
    const bin = join(dir, "ex", "cifar-10-batches-bin");
    Deno.removeSync(join(bin, "data_batch_4.bin"));
    assertThrowsMsg(() => openImageDataset("cifar10", join(dir, "ex")), "data_batch_4.bin is missing");
    Deno.writeFileSync(join(bin, "test_batch.bin"), new Uint8Array(3073 + 10));
    assertThrowsMsg(
      () => openImageDataset("cifar10", join(dir, "ex"), "test"),
      "not a whole number of 3073-byte",
    );
    Deno.writeFileSync(join(bin, "test_batch.bin"), new Uint8Array(3073).fill(12));
    assertThrowsMsg(() => openImageDataset("cifar10", join(dir, "ex"), "test"), "label 12, out of range");
    const tgz = join(dir, "cifar-10-binary.tar.gz");
    Deno.writeFileSync(
      tgz,
      gzipSync(writeTar([{ name: "cifar-10-batches-bin/test_batch.bin", data: new Uint8Array(3073) }])),
    );
    assertThrowsMsg(
      () => openImageDataset("cifar10", tgz, "train"),
      "archive has no cifar-10-batches-bin/data_batch_1.bin",
    );
    Deno.writeFileSync(tgz, gzipSync(new Uint8Array(5000)).subarray(0, 30));
    assertThrowsMsg(() => openImageDataset("cifar10", tgz, "train"), "gzip data is corrupt or truncated");
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

/** An h×w RGB image of one colour. */
function solid(h: number, w: number, rgb: number[]) {
  const pixels = new Uint8Array(h * w * 3);
  for (let p = 0; p < h * w; p++) pixels.set(rgb, 3 * p);
  return { pixels, h, w, c: 3 };
}

Deno.test("data: ImageNet-style folder: sorted classes, recursive sorted files, JPEG+PNG decode, val uses train's classes", () => {
  const dir = tmpDir();
  try {
    const put = (rel: string, data: Uint8Array) => {
      Deno.mkdirSync(join(dir, rel, ".."), { recursive: true });
      Deno.writeFileSync(join(dir, rel), data);
    };
    const colours: Record<string, number[]> = { dog: [200, 40, 40], ant: [30, 180, 60], cat: [20, 60, 220] };
    for (const [c, rgb] of Object.entries(colours)) {
      put(`train/${c}/b.JPEG`, encodeJpeg(solid(12, 17, rgb), 95));
      put(`train/${c}/a.jpg`, encodeJpeg(solid(9, 8, rgb), 95));
    }
    put("train/cat/sub/z.jpeg", encodeJpeg(solid(8, 8, [20, 60, 220]), 95));
    put("train/cat/c.png", encodePng({ width: 3, height: 2, data: new Uint8Array(24).fill(77) }));
    put("train/cat/notes.txt", bytes([1, 2]));
    put("val/dog/v1.JPEG", encodeJpeg(solid(10, 10, colours.dog), 95));
    const tr = openImageDataset("imagenet", dir, "train");
    assertEquals(tr.classes, ["ant", "cat", "dog"]);
    const files = (tr as unknown as { files: string[] }).files.map((f) => f.slice(dir.length + 1));
    assertEquals(files, [
      "train/ant/a.jpg",
      "train/ant/b.JPEG",
      "train/cat/a.jpg",
      "train/cat/b.JPEG",
      "train/cat/c.png",
      "train/cat/sub/z.jpeg",
      "train/dog/a.jpg",
      "train/dog/b.JPEG",
    ]);
    assertEquals([...tr.labels], [0, 0, 1, 1, 1, 1, 2, 2]);
    const s = tr.get(1);
    assertEquals([s.h, s.w, s.c, s.label], [12, 17, 3, 0]);
    for (let k = 0; k < 3; k++) {
      assert(Math.abs(s.pixels[(5 * 17 + 9) * 3 + k] - colours.ant[k]) <= 3, `ant colour ${k}`);
    }
    const png = tr.get(4);
    assertEquals([png.h, png.w, png.pixels[0], png.pixels[5]], [2, 3, 77, 77]);
    const val = openImageDataset("imagenet", dir, "test");
    assertEquals([val.length, val.classes.length, val.labels[0]], [1, 3, 2]);
    const re = openFromDescription(val.description!);
    assertEquals([re.length, re.labels[0]], [1, 2]);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("data: bad image folders and files give clear errors", () => {
  const dir = tmpDir();
  try {
    assertThrowsMsg(
      () => openImageDataset("imagefolder", dir, "train"),
      `expected ${dir}/train/<class>/*.JPEG`,
    );
    Deno.mkdirSync(join(dir, "train", "a"), { recursive: true });
    Deno.mkdirSync(join(dir, "train", "b"), { recursive: true });
    Deno.writeFileSync(join(dir, "train", "a", "x.jpg"), bytes([1, 2, 3, 4]));
    assertThrowsMsg(
      () => openImageDataset("imagefolder", dir, "train"),
      "no .jpg/.jpeg/.png files in class folder(s) b",
    );
    Deno.writeFileSync(join(dir, "train", "b", "y.jpg"), encodeJpeg(solid(4, 4, [1, 2, 3])).subarray(0, 40));
    const ds = openImageDataset("imagefolder", dir, "train");
    assertThrowsMsg(
      () => ds.get(0),
      `${join(dir, "train", "a", "x.jpg")}: not a JPEG or PNG file (starts with 01 02 03 04)`,
    );
    assertThrowsMsg(() => ds.get(1), `${join(dir, "train", "b", "y.jpg")}: cannot decode JPEG`);
    Deno.mkdirSync(join(dir, "val"));
    Deno.writeFileSync(join(dir, "val", "ILSVRC2012_val_00000001.JPEG"), bytes([0]));
    assertThrowsMsg(() => openImageDataset("imagefolder", dir, "val"), "found 1 images directly in it");
    Deno.mkdirSync(join(dir, "val", "zebra"));
    assertThrowsMsg(
      () => openImageDataset("imagefolder", dir, "val"),
      "class folders not in the class list (zebra)",
    );
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("data: greyscale and Adobe CMYK JPEGs decode to RGB; RGB JPEGs round-trip closely", () => {
  const grey = decodeImage(tinyJpeg([160]));
  assertEquals([grey.h, grey.w, grey.c], [8, 8, 3]);
  for (const v of grey.pixels) assert(Math.abs(v - 160) <= 1, `grey ${v}`);
  const [c, m, y, k] = [192, 128, 64, 224]; // stored (Adobe-inverted) CMYK values
  const cmyk = decodeImage(tinyJpeg([c, m, y, k]));
  const want = [c * k / 255, m * k / 255, y * k / 255];
  for (let p = 0; p < 64; p++) {
    for (let ch = 0; ch < 3; ch++) assert(Math.abs(cmyk.pixels[3 * p + ch] - want[ch]) <= 1.5, `cmyk ${ch}`);
  }
  const rng = new Rng(5), h = 16, w = 24;
  const img = { pixels: new Uint8Array(h * w * 3), h, w, c: 3 };
  for (let yy = 0; yy < h; yy++) {
    for (let x = 0; x < w; x++) img.pixels.set([x * 10, yy * 15, 128 + rng.int(4)], (yy * w + x) * 3);
  }
  const back = decodeImage(encodeJpeg(img, 100));
  let err = 0;
  back.pixels.forEach((v, i) => (err += Math.abs(v - img.pixels[i])));
  assert(err / back.pixels.length < 3, `mean abs error ${err / back.pixels.length}`);
});
