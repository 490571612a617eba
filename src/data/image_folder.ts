/**
 * ImageNet-style folders, read like torchvision's `ImageFolder`: `<root>/train/<class>/*.JPEG` and
 * `<root>/val/<class>/*.JPEG`. Classes are the sorted sub-folder names; files are found recursively
 * inside each class and sorted (folder path, then file name). Files are decoded on `get` (in the
 * loader's workers), so opening only lists names.
 */
import { join } from "../util/std.ts";
import { decodeImage } from "./jpeg.ts";
import {
  checkIndex,
  type DatasetDescription,
  type ImageDataset,
  type ImageSample,
  type Split,
} from "./types.ts";

/** File extensions that are listed (case-insensitive); JPEG and PNG contents are decodable. */
export const IMAGE_EXTENSIONS: readonly string[] = [".jpg", ".jpeg", ".png"];

/** Compares by code point, as Python's `sorted` does for the names torchvision sorts. */
function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function isDir(path: string): boolean {
  try {
    return Deno.statSync(path).isDirectory;
  } catch {
    return false;
  }
}

function isImageName(name: string): boolean {
  const lower = name.toLowerCase();
  return IMAGE_EXTENSIONS.some((e) => lower.endsWith(e));
}

/** The sorted class folder names directly under `dir`. */
export function findClasses(dir: string): string[] {
  const names: string[] = [];
  for (const e of Deno.readDirSync(dir)) {
    if (e.isDirectory || (e.isSymlink && isDir(join(dir, e.name)))) names.push(e.name);
  }
  return names.sort(cmp);
}

/** Image files under `dir`, recursively, in torchvision's order (folders by path, then names). */
function listImages(dir: string): string[] {
  const groups: [string, string[]][] = [];
  const walk = (d: string) => {
    const files: string[] = [];
    for (const e of Deno.readDirSync(d)) {
      const p = join(d, e.name);
      if (e.isDirectory || (e.isSymlink && isDir(p))) walk(p);
      else if (isImageName(e.name)) files.push(e.name);
    }
    groups.push([d, files.sort(cmp)]);
  };
  walk(dir);
  groups.sort((a, b) => cmp(a[0], b[0]));
  return groups.flatMap(([d, fs]) => fs.map((f) => join(d, f)));
}

/** Resolves the folder of `split` under `root`: `train/`, or `val/` (also `validation/`, `test/`). */
export function resolveSplitDir(root: string, split: Split): string {
  const names = split === "train" ? ["train"] : ["val", "validation", "test"];
  for (const n of names) if (isDir(join(root, n))) return join(root, n);
  throw new Error(
    `image folder not found at ${root}: expected ${root}/${names[0]}/<class>/*.JPEG ` +
      `(ImageNet-style: one sub-folder per class under train/ and val/, files .jpg/.jpeg/.png)`,
  );
}

/** A folder of class sub-folders of JPEG/PNG files, decoded to RGB on `get`. */
export class ImageFolderDataset implements ImageDataset {
  readonly name: string;
  readonly length: number;
  readonly classes: readonly string[];
  readonly channels = 3;
  readonly labels: Int32Array;
  readonly description: DatasetDescription;
  /** The image files, in sample order. */
  readonly files: readonly string[];

  /**
   * Lists `dir`'s class folders and their images. With `classes` (e.g. the train split's list) the
   * labels index into it; a folder that is not in it is an error.
   */
  constructor(dir: string, opts: { classes?: readonly string[]; split?: Split; name?: string } = {}) {
    if (!isDir(dir)) throw new Error(`image folder ${dir} does not exist or is not a folder`);
    const found = findClasses(dir);
    if (found.length === 0) {
      const loose = [...Deno.readDirSync(dir)].filter((e) => e.isFile && isImageName(e.name)).length;
      throw new Error(
        `image folder ${dir} has no class sub-folders: expected ${dir}/<class>/*.JPEG` +
          (loose ? ` (found ${loose} images directly in it: sort them into one folder per class)` : ""),
      );
    }
    const classes = opts.classes ?? found;
    const index = new Map(classes.map((c, i) => [c, i]));
    const unknown = found.filter((c) => !index.has(c));
    if (unknown.length) {
      throw new Error(
        `image folder ${dir}: class folders not in the class list (${unknown.slice(0, 5).join(", ")}` +
          `${unknown.length > 5 ? ", …" : ""}); its train/ split must have the same classes`,
      );
    }
    const files: string[] = [], labels: number[] = [], empty: string[] = [];
    for (const c of found) {
      const list = listImages(join(dir, c));
      if (list.length === 0) empty.push(c);
      for (const f of list) {
        files.push(f);
        labels.push(index.get(c)!);
      }
    }
    if (empty.length) {
      throw new Error(
        `image folder ${dir}: no ${IMAGE_EXTENSIONS.join("/")} files in class folder(s) ` +
          `${empty.slice(0, 5).join(", ")}${empty.length > 5 ? ", …" : ""}`,
      );
    }
    this.name = opts.name ?? "imagefolder";
    this.files = files;
    this.length = files.length;
    this.classes = classes;
    this.labels = Int32Array.from(labels);
    this.description = {
      kind: "imagefolder",
      root: dir,
      split: opts.split ?? "train",
      name: this.name,
      classes: [...classes],
    };
  }

  /** Reads and decodes sample `i` to an RGB HWC image. */
  get(i: number): ImageSample {
    checkIndex(this.name, i, this.length);
    const path = this.files[i];
    let bytes: Uint8Array;
    try {
      bytes = Deno.readFileSync(path);
    } catch (e) {
      throw new Error(
        `${path}: cannot read (${(e as Error).message}); was the folder changed after opening?`,
      );
    }
    return { ...decodeImage(bytes, path), label: this.labels[i] };
  }
}

/**
 * Opens `split` of an ImageNet-style folder `root` (see {@link resolveSplitDir}). Validation labels use
 * the train split's class list when `train/` exists, so the two splits agree even if val lacks a class.
 */
export function openImageFolder(root: string, split: Split, name = "imagefolder"): ImageFolderDataset {
  const dir = resolveSplitDir(root, split);
  const trainDir = join(root, "train");
  const classes = split !== "train" && isDir(trainDir) ? findClasses(trainDir) : undefined;
  return new ImageFolderDataset(dir, { classes, split, name });
}
