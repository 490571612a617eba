/**
 * Augmentations against hand-computed expectations: flip, centre crop (Python rounding, padding),
 * ToTensor+Normalize, antialiased bilinear resize on constant and ramp images, RandomResizedCrop's
 * box sampling and fallback, RandomCrop with padding, and every AutoAugment operation.
 */
import { Rng } from "../src/util/rng.ts";
import {
  applyAugOp,
  applyStep,
  autoAugmentCifar10,
  centerCrop,
  CIFAR10_POLICY,
  type Image8,
  magnitude,
  presetTransform,
  randomCrop,
  randomHorizontalFlip,
  randomResizedCrop,
  randomResizedCropBox,
  resize,
  resizeBox,
  roundHalfEven,
  toTensorInto,
} from "../src/data/mod.ts";
import { assert, assertEquals, assertThrowsMsg } from "./data_fixtures.ts";

/** An h×w×c image with pixel (y, x, k) = f(y, x, k). */
function make(h: number, w: number, c: number, f: (y: number, x: number, k: number) => number): Image8 {
  const pixels = new Uint8Array(h * w * c);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) for (let k = 0; k < c; k++) pixels[(y * w + x) * c + k] = f(y, x, k);
  }
  return { pixels, h, w, c };
}

const at = (img: Image8, y: number, x: number, k = 0) => img.pixels[(y * img.w + x) * img.c + k];
const row = (img: Image8, y: number, k = 0) => Array.from({ length: img.w }, (_, x) => at(img, y, x, k));
const col = (img: Image8, x: number, k = 0) => Array.from({ length: img.h }, (_, y) => at(img, y, x, k));
const rng = () => new Rng(1);

Deno.test("transforms: horizontal flip with p=1 mirrors, p=0 keeps", () => {
  const img = make(2, 3, 2, (y, x, k) => 10 * y + x + 100 * k);
  const f = applyStep(img, randomHorizontalFlip(1), rng());
  assertEquals([row(f, 0), row(f, 1, 1)], [[2, 1, 0], [112, 111, 110]]);
  assertEquals(applyStep(img, randomHorizontalFlip(0), rng()).pixels, img.pixels);
});

Deno.test("transforms: centre crop uses Python's round-half-even offsets and zero-pads small images", () => {
  assertEquals([
    roundHalfEven(0.5),
    roundHalfEven(1.5),
    roundHalfEven(2.5),
    roundHalfEven(-0.5),
    roundHalfEven(2.4),
  ], [
    0,
    2,
    2,
    -0,
    2,
  ]);
  const img = make(5, 8, 1, (y, x) => 10 * y + x);
  const c = applyStep(img, centerCrop([2, 3]), rng()); // top round(1.5)=2, left round(2.5)=2
  assertEquals([c.h, c.w, row(c, 0), row(c, 1)], [2, 3, [22, 23, 24], [32, 33, 34]]);
  const p = applyStep(make(2, 2, 1, () => 9), centerCrop([4, 5]), rng()); // pad top 1, left 1
  assertEquals([row(p, 0), row(p, 1), row(p, 2), row(p, 3)], [[0, 0, 0, 0, 0], [0, 9, 9, 0, 0], [
    0,
    9,
    9,
    0,
    0,
  ], [
    0,
    0,
    0,
    0,
    0,
  ]]);
});

Deno.test("transforms: ToTensor + Normalize writes CHW floats (v/255 − mean)/std", () => {
  const img = make(2, 2, 3, (y, x, k) => [0, 51, 250][k] + y + x);
  const out = new Float32Array(1 + 12);
  toTensorInto(img, { steps: [], mean: [0.5, 0.25, 0.1], std: [0.5, 0.2, 0.4] }, out, 1);
  const want = [0, 1, 1, 2].map((v) => ((0 + v) / 255 - 0.5) / 0.5)
    .concat([0, 1, 1, 2].map((v) => ((51 + v) / 255 - 0.25) / 0.2))
    .concat([0, 1, 1, 2].map((v) => ((250 + v) / 255 - 0.1) / 0.4));
  assertEquals(out[0], 0);
  for (let i = 0; i < 12; i++) {
    assert(Math.abs(out[1 + i] - want[i]) < 1e-6, `element ${i}: ${out[1 + i]} vs ${want[i]}`);
  }
  const grey = new Float32Array(4);
  toTensorInto(make(2, 2, 1, () => 51), { steps: [], mean: [0.2], std: [0.5] }, grey);
  assert(grey.every((v) => Math.abs(v - 0) < 1e-6), "single mean/std broadcast");
  assertThrowsMsg(
    () => toTensorInto(make(1, 1, 1, () => 0), { steps: [], mean: [0, 0, 0], std: [1] }, grey),
    "3 means",
  );
});

Deno.test("transforms: resize keeps constant images constant and matches hand values on ramps", () => {
  for (const [h, w, oh, ow] of [[7, 9, 3, 4], [5, 5, 11, 13], [10, 3, 4, 7]]) {
    const r = resizeBox(make(h, w, 3, (_y, _x, k) => 50 + 60 * k), 0, 0, h, w, oh, ow);
    assert(r.pixels.every((v, i) => v === 50 + 60 * (i % 3)), `constant ${h}x${w}->${oh}x${ow}`);
  }
  // Downscale ×2 of x·10: triangle of radius 2 around x_in = 2o + 0.5; the first output sees pixels
  // 0,1,2 with weights 0.75,0.75,0.25 (12.5/1.75 = 7.14), interior ones are exact (25, 45), the
  // last sees 5,6,7 with 0.25,0.75,0.75 (110/1.75 = 62.86).
  const down = resizeBox(make(2, 8, 1, (_y, x) => 10 * x), 0, 0, 2, 8, 2, 4);
  assertEquals(row(down, 0), [7, 25, 45, 63]);
  // Upscale ×2 of x·20 (plain linear interpolation): centres at 0.25, 0.75, … clamp at the ends.
  const up = resizeBox(make(1, 4, 1, (_y, x) => 20 * x), 0, 0, 1, 4, 1, 8);
  assertEquals(row(up, 0), [0, 5, 15, 25, 35, 45, 55, 60]);
  // Vertical axis the same way; a box (crop) offsets the sampling.
  assertEquals(col(resizeBox(make(8, 1, 1, (y) => 10 * y), 0, 0, 8, 1, 4, 1), 0), [7, 25, 45, 63]);
  assertEquals(row(resizeBox(make(1, 10, 1, (_y, x) => 10 * x), 0, 2, 1, 4, 1, 4), 0), [20, 30, 40, 50]);
});

Deno.test("transforms: Resize(int) scales the shorter side and truncates the longer", () => {
  const img = make(240, 300, 1, () => 3);
  const r = applyStep(img, resize(256), rng());
  assertEquals([r.h, r.w], [256, 320]);
  const t = applyStep(make(300, 199, 1, () => 3), resize(100), rng());
  assertEquals([t.h, t.w], [150, 100]); // 100·300/199 = 150.75 → 150
  const e = applyStep(make(4, 6, 1, () => 3), resize([2, 9]), rng());
  assertEquals([e.h, e.w], [2, 9]);
});

Deno.test("transforms: RandomResizedCrop boxes obey scale/ratio, fall back to a centred crop, output the size", () => {
  const r = new Rng(7);
  let tried = 0;
  for (let t = 0; t < 300; t++) {
    const [H, W] = [50 + r.int(200), 50 + r.int(200)];
    const [top, left, h, w] = randomResizedCropBox(H, W, [0.08, 1], [3 / 4, 4 / 3], r);
    assert(top >= 0 && left >= 0 && top + h <= H && left + w <= W && h > 0 && w > 0, "box inside the image");
    const full = h === H && w === W;
    if (!full) {
      tried++;
      const frac = (h * w) / (H * W), ar = w / h;
      assert(frac > 0.08 * 0.8 && frac < 1.05, `area fraction ${frac}`);
      assert(ar > (3 / 4) * 0.85 && ar < (4 / 3) * 1.15, `aspect ${ar}`);
    }
  }
  assert(tried > 250, "the 10 tries nearly always succeed for these scales");
  // Impossible scale → fallback: a 40×160 image clamps to ratio 4/3 → h = 40, w = round(53.33) = 53.
  assertEquals(randomResizedCropBox(40, 160, [2, 3], [3 / 4, 4 / 3], r), [0, 53, 40, 53]);
  assertEquals(randomResizedCropBox(160, 40, [2, 3], [3 / 4, 4 / 3], r), [53, 0, 53, 40]);
  assertEquals(randomResizedCropBox(30, 35, [2, 3], [3 / 4, 4 / 3], r), [0, 0, 30, 35]);
  // scale 1 with the image's own ratio takes the whole image, so it equals a plain resize.
  const img = make(24, 30, 3, (y, x, k) => (y * 7 + x * 3 + k * 50) % 256);
  const a = applyStep(img, randomResizedCrop([12, 10], { scale: [1, 1], ratio: [1.25, 1.25] }), rng());
  assertEquals([a.h, a.w], [12, 10]);
  assertEquals(a.pixels, resizeBox(img, 0, 0, 24, 30, 12, 10).pixels);
});

Deno.test("transforms: RandomCrop with padding shifts the image by at most the padding, zero-filled", () => {
  const r = new Rng(3), seen = new Set<string>();
  for (let t = 0; t < 200; t++) {
    const out = applyStep(make(32, 32, 3, () => 100), randomCrop(32, 4), r);
    let ones = 0;
    out.pixels.forEach((v) => (ones += v === 100 ? 1 : 0));
    assert(out.pixels.every((v) => v === 0 || v === 100), "only image or padding");
    let dy = 0, dx = 0;
    while (at(out, 16, dx) === 0) dx++;
    while (at(out, dy, 16) === 0) dy++;
    if (dx === 0) { while (at(out, 16, 31 + dx) === 0) dx--; }
    if (dy === 0) { while (at(out, 31 + dy, 16) === 0) dy--; }
    assert(Math.abs(dx) <= 4 && Math.abs(dy) <= 4, `shift ${dy},${dx}`);
    assertEquals(ones, (32 - Math.abs(dy)) * (32 - Math.abs(dx)) * 3, `pixels kept for shift ${dy},${dx}`);
    seen.add(`${dy},${dx}`);
  }
  assert(seen.size > 40, `many of the 81 shifts occur (${seen.size})`);
});

Deno.test("transforms: AutoAugment colour operations match PIL's definitions by hand", () => {
  const img = make(
    1,
    4,
    3,
    (_y, x, k) => [[50, 100, 150], [60, 90, 200], [150, 150, 150], [0, 255, 30]][x][k],
  );
  assertEquals(applyAugOp(img, "Invert", 0).pixels.slice(0, 3), [205, 155, 105]);
  assertEquals(applyAugOp(img, "Posterize", 4).pixels.slice(0, 6), [48, 96, 144, 48, 80, 192]);
  assertEquals(applyAugOp(img, "Solarize", 100).pixels.slice(0, 6), [50, 155, 105, 60, 90, 55]);
  assertEquals(applyAugOp(img, "Brightness", 0.5).pixels.slice(9, 12), [0, 255, 45]);
  // Colour with factor 0 gives PIL's "L" luma: (50·299 + 100·587 + 150·114)/1000 = 90.75 → 91.
  assertEquals(applyAugOp(img, "Color", -1).pixels.slice(0, 3), [91, 91, 91]);
  // Contrast factor 0: the mean luma, L = [91, 94, 150, 153] → mean 122.
  assert(applyAugOp(img, "Contrast", -1).pixels.every((v) => v === 122), "contrast 0 = mean grey");
  const ac = applyAugOp(make(1, 3, 1, (_y, x) => [50, 100, 150][x]), "AutoContrast", 0);
  assertEquals(ac.pixels, [0, 127, 255]);
  // Equalize on [10,10,10,200]: step = (4 − 1) // 255 = 0 → unchanged; on a wider histogram it spreads.
  assertEquals(applyAugOp(make(1, 4, 1, (_y, x) => [10, 10, 10, 200][x]), "Equalize", 0).pixels, [
    10,
    10,
    10,
    200,
  ]);
  const wide = make(1, 512, 1, (_y, x) => (x < 256 ? 10 : 20));
  const eq = applyAugOp(wide, "Equalize", 0); // step = (512 − 256) // 255 = 1: lut[10] = 0, lut[20] = 256 → 255
  assertEquals([at(eq, 0, 0), at(eq, 0, 300)], [0, 255]);
  // Sharpness 0 = PIL SMOOTH inside, border kept: centre (5·90 + 8·10)/13 = 40.8 → 41.
  const sp = applyAugOp(make(3, 3, 1, (y, x) => (y === 1 && x === 1 ? 90 : 10)), "Sharpness", -1);
  assertEquals([at(sp, 1, 1), at(sp, 0, 0), at(sp, 2, 1)], [41, 10, 10]);
  assertEquals(applyAugOp(img, "Sharpness", 0).pixels, img.pixels);
});

Deno.test("transforms: AutoAugment geometric operations: translate, shear, rotate (nearest, zero fill)", () => {
  const img = make(3, 4, 1, (y, x) => 1 + 10 * y + x);
  assertEquals(row(applyAugOp(img, "TranslateX", 2.9), 1), [0, 0, 11, 12]);
  assertEquals(col(applyAugOp(img, "TranslateY", -1), 0), [11, 21, 0]);
  const sh = applyAugOp(img, "ShearX", 0.5); // row y reads x + 0.5·(y + 0.5)
  assertEquals([row(sh, 0), row(sh, 1), row(sh, 2)], [[1, 2, 3, 4], [12, 13, 14, 0], [22, 23, 24, 0]]);
  assertEquals(applyAugOp(img, "Rotate", 0).pixels, img.pixels);
  const r180 = applyAugOp(img, "Rotate", 180);
  assertEquals(row(r180, 0), [24, 23, 22, 21]);
  const sq = make(4, 4, 1, (y, x) => 1 + 4 * y + x), r90 = applyAugOp(sq, "Rotate", 90);
  assertEquals(new Set(r90.pixels).size, 16, "a quarter turn of a square permutes its pixels");
});

Deno.test("transforms: AutoAugment magnitudes, the CIFAR-10 policy table, and seeded application", () => {
  assertEquals(Array.from({ length: 10 }, (_, b) => magnitude("Posterize", b, 32, 32)[0]), [
    8,
    8,
    7,
    7,
    6,
    6,
    5,
    5,
    4,
    4,
  ]);
  assertEquals([magnitude("Solarize", 0, 32, 32)[0], magnitude("Solarize", 9, 32, 32)[0]], [255, 0]);
  assert(Math.abs(magnitude("TranslateX", 9, 32, 32)[0] - 150 / 331 * 32) < 1e-12, "translate bin 9");
  assertEquals(magnitude("Rotate", 3, 32, 32), [10, true]);
  assert(Math.abs(magnitude("Color", 9, 1, 1)[0] - 0.9) < 1e-12, "enhance bin 9");
  assertEquals(CIFAR10_POLICY.length, 25);
  assert(
    CIFAR10_POLICY.every((s) =>
      s.every(([, p, bin]) => p >= 0 && p <= 1 && (bin === null || (bin >= 0 && bin <= 9)))
    ),
  );
  // A mid-range image (60…179), so nearly every operation changes it: the share of changed images
  // estimates P(an op fires) = mean over sub-policies of 1 − (1−p1)(1−p2) = 0.777, less the no-ops here
  // (Colour at bin 0, Solarize at threshold 198, weak Sharpness): about 0.72 (5000 draws gave 0.724).
  const img = make(32, 32, 3, (y, x, k) => 60 + ((x * 5 + y * 3 + k * 40) % 120));
  let changed = 0;
  for (let s = 0; s < 200; s++) {
    const a = autoAugmentCifar10(img, new Rng(s)), b = autoAugmentCifar10(img, new Rng(s));
    assertEquals([a.h, a.w, a.c], [32, 32, 3]);
    assertEquals(a.pixels, b.pixels, "same seed, same result");
    if (a.pixels.some((v, i) => v !== img.pixels[i])) changed++;
  }
  assert(changed > 0.62 * 200 && changed < 0.84 * 200, `share of changed images ${changed}/200 vs 0.72`);
});

Deno.test("transforms: presets follow the reference (ImageNet RRC+flip / Resize+CenterCrop, CIFAR AutoAugment)", () => {
  const tr = presetTransform("imagenet", "train"), te = presetTransform("imagefolder", "val");
  assertEquals(tr.steps.map((s) => s.op), ["randomResizedCrop", "hflip"]);
  assertEquals(te.steps, [{ op: "resize", size: 256 }, { op: "centerCrop", size: [224, 224] }]);
  assertEquals(tr.mean, [0.485, 0.456, 0.406]);
  assertEquals(presetTransform("cifar100", "train").steps, [{ op: "autoAugment", policy: "cifar10" }]);
  assertEquals(presetTransform("cifar10", "train", { cifarAugment: "crop-flip" }).steps.map((s) => s.op), [
    "randomCrop",
    "hflip",
  ]);
  assertEquals(presetTransform("cifar10", "test").steps, []);
  assertEquals(presetTransform("fashion-mnist", "train"), { steps: [], mean: [0.286], std: [0.353] });
  assertThrowsMsg(() => presetTransform("svhn", "train"), "unknown dataset");
});
