/**
 * CIFAR-10 and CIFAR-100 in their binary distribution: the `cifar-10-binary.tar.gz` /
 * `cifar-100-binary.tar.gz` archives (read with `fflate` + {@link readTar}) or the extracted folders
 * `cifar-10-batches-bin/` and `cifar-100-binary/`. A CIFAR-10 record is 1 label byte + 3072 pixel
 * bytes (1024 R, 1024 G, 1024 B, rows of 32); a CIFAR-100 record has a coarse and a fine label byte
 * first — the fine label (100 classes) is used, as torchvision does.
 */
import { basename, join } from "../util/std.ts";
import { readTarFile } from "./tar.ts";
import {
  checkIndex,
  type DatasetDescription,
  type ImageDataset,
  type ImageSample,
  type Split,
} from "./types.ts";

/** CIFAR-10 class names (the archive's `batches.meta.txt` wins when present). */
export const CIFAR10_CLASSES: readonly string[] = [
  "airplane",
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

/** CIFAR-100 fine class names (the archive's `fine_label_names.txt` wins when present). */
export const CIFAR100_CLASSES: readonly string[] = (
  "apple aquarium_fish baby bear beaver bed bee beetle bicycle bottle bowl boy bridge bus butterfly camel " +
  "can castle caterpillar cattle chair chimpanzee clock cloud cockroach couch crab crocodile cup dinosaur " +
  "dolphin elephant flatfish forest fox girl hamster house kangaroo keyboard lamp lawn_mower leopard lion " +
  "lizard lobster man maple_tree motorcycle mountain mouse mushroom oak_tree orange orchid otter palm_tree " +
  "pear pickup_truck pine_tree plain plate poppy porcupine possum rabbit raccoon ray road rocket rose sea " +
  "seal shark shrew skunk skyscraper snail snake spider squirrel streetcar sunflower sweet_pepper table " +
  "tank telephone television tiger tractor train trout tulip turtle wardrobe whale willow_tree wolf woman worm"
).split(" ");

interface Layout {
  title: string;
  archive: string;
  folder: string;
  python: string;
  labelBytes: number;
  labelOffset: number;
  files: Record<"train" | "test", string[]>;
  meta: string;
  classes: readonly string[];
}

const LAYOUTS: Record<"cifar10" | "cifar100", Layout> = {
  cifar10: {
    title: "CIFAR-10",
    archive: "cifar-10-binary.tar.gz",
    folder: "cifar-10-batches-bin",
    python: "cifar-10-batches-py",
    labelBytes: 1,
    labelOffset: 0,
    files: { train: [1, 2, 3, 4, 5].map((i) => `data_batch_${i}.bin`), test: ["test_batch.bin"] },
    meta: "batches.meta.txt",
    classes: CIFAR10_CLASSES,
  },
  cifar100: {
    title: "CIFAR-100",
    archive: "cifar-100-binary.tar.gz",
    folder: "cifar-100-binary",
    python: "cifar-100-python",
    labelBytes: 2,
    labelOffset: 1,
    files: { train: ["train.bin"], test: ["test.bin"] },
    meta: "fine_label_names.txt",
    classes: CIFAR100_CLASSES,
  },
};

const PIXELS = 3072;

function stat(path: string): Deno.FileInfo | undefined {
  try {
    return Deno.statSync(path);
  } catch {
    return undefined;
  }
}

function expected(L: Layout, root: string): string {
  const bins = L.files.train.length > 1 ? "data_batch_{1..5}.bin and test_batch.bin" : L.files.train
    .concat(L.files.test).join(" and ");
  return `${L.title} not found at ${root}: expected ${L.archive} or ${L.folder}/${bins} (the binary version ` +
    `from https://www.cs.toronto.edu/~kriz/cifar.html), or a path to either`;
}

/** Resolves `root` to the archive file or the folder that holds the `.bin` files, or throws. */
export function resolveCifar(kind: "cifar10" | "cifar100", root: string): { path: string; archive: boolean } {
  const L = LAYOUTS[kind];
  const st = stat(root);
  if (st?.isFile) return { path: root, archive: true };
  if (st?.isDirectory) {
    if (stat(join(root, L.files.test[0]))?.isFile || stat(join(root, L.files.train[0]))?.isFile) {
      return { path: root, archive: false };
    }
    if (stat(join(root, L.folder))?.isDirectory) return { path: join(root, L.folder), archive: false };
    if (stat(join(root, L.archive))?.isFile) return { path: join(root, L.archive), archive: true };
    if (stat(join(root, L.python))) {
      throw new Error(
        `${expected(L, root)}. Found ${L.python}/, the Python pickle version, which is not read: ` +
          `download the binary version instead`,
      );
    }
  }
  throw new Error(expected(L, root));
}

/** CIFAR-10 / CIFAR-100 (fine labels) from the binary archive or extracted folder. */
export class CifarDataset implements ImageDataset {
  readonly name: string;
  readonly length: number;
  readonly classes: readonly string[];
  readonly channels = 3;
  readonly height = 32;
  readonly width = 32;
  readonly labels: Int32Array;
  readonly description: DatasetDescription;
  #records: Uint8Array;
  #rec: number;

  /** Opens the split (`"val"` = `"test"`) of `kind` under `root` (see {@link resolveCifar}). */
  constructor(kind: "cifar10" | "cifar100", root: string, split: Split) {
    const L = LAYOUTS[kind];
    const { path, archive } = resolveCifar(kind, root);
    const names = L.files[split === "train" ? "train" : "test"];
    const parts: Uint8Array[] = [];
    let metaText: string | undefined;
    if (archive) {
      const entries = readTarFile(path);
      const byBase = new Map(entries.map((e) => [basename(e.name), e.data]));
      for (const n of names) {
        const data = byBase.get(n);
        if (!data) throw new Error(`${path}: archive has no ${L.folder}/${n}; ${expected(L, root)}`);
        parts.push(data.slice());
      }
      const meta = byBase.get(L.meta);
      if (meta) metaText = new TextDecoder().decode(meta);
    } else {
      for (const n of names) {
        const file = join(path, n);
        if (!stat(file)?.isFile) throw new Error(`${file} is missing; ${expected(L, root)}`);
        parts.push(Deno.readFileSync(file));
      }
      if (stat(join(path, L.meta))?.isFile) metaText = Deno.readTextFileSync(join(path, L.meta));
    }
    const rec = L.labelBytes + PIXELS;
    names.forEach((n, i) => {
      if (parts[i].length === 0 || parts[i].length % rec !== 0) {
        throw new Error(
          `${join(path, n)}: ${
            parts[i].length
          } bytes is not a whole number of ${rec}-byte ${L.title} records ` +
            `(truncated or not ${L.title}?)`,
        );
      }
    });
    const total = parts.reduce((a, p) => a + p.length, 0);
    const records = parts.length === 1 ? parts[0] : new Uint8Array(total);
    if (parts.length > 1) parts.reduce((off, p) => (records.set(p, off), off + p.length), 0);
    const classes = metaText?.split(/\r?\n/).map((s) => s.trim()).filter((s) => s.length > 0) ?? [];
    this.classes = classes.length === L.classes.length ? classes : L.classes;
    this.length = total / rec;
    this.labels = new Int32Array(this.length);
    for (let i = 0; i < this.length; i++) {
      const v = records[i * rec + L.labelOffset];
      if (v >= this.classes.length) {
        throw new Error(
          `${path}: record ${i} has label ${v}, out of range for ${L.title}'s ${this.classes.length}`,
        );
      }
      this.labels[i] = v;
    }
    this.#records = records;
    this.#rec = rec;
    this.name = kind;
    this.description = { kind, root: path, split, name: kind };
  }

  /** Sample `i` as a 32×32×3 HWC image. */
  get(i: number): ImageSample {
    checkIndex(this.name, i, this.length);
    const src = this.#records.subarray(i * this.#rec + this.#rec - PIXELS, (i + 1) * this.#rec);
    const pixels = new Uint8Array(PIXELS);
    for (let p = 0; p < 1024; p++) {
      pixels[3 * p] = src[p];
      pixels[3 * p + 1] = src[1024 + p];
      pixels[3 * p + 2] = src[2048 + p];
    }
    return { pixels, h: 32, w: 32, c: 3, label: this.labels[i] };
  }
}
