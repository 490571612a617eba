/**
 * The image data pipeline: dataset readers (MNIST/Fashion-MNIST IDX, CIFAR-10/100 binary, ImageNet-style
 * folders), JPEG/PNG decoding, torchvision-style augmentations and a parallel, prefetching, seeded
 * batch loader that yields NCHW `Float32Array` images and `Int32Array` labels.
 *
 * @module
 */
export type { DatasetDescription, DatasetKind, Image8, ImageDataset, ImageSample, Split } from "./types.ts";
export {
  ArrayImageDataset,
  DATASET_NAMES,
  hasFashionMnist,
  openFromDescription,
  openImageDataset,
} from "./datasets.ts";
export {
  encodeIdx,
  FASHION_MNIST_CLASSES,
  FASHION_MNIST_DEFAULT_ROOT,
  findIdxPair,
  type IdxArray,
  IdxDataset,
  MNIST_CLASSES,
  parseIdx,
} from "./idx.ts";
export { CIFAR100_CLASSES, CIFAR10_CLASSES, CifarDataset, resolveCifar } from "./cifar.ts";
export {
  findClasses,
  IMAGE_EXTENSIONS,
  ImageFolderDataset,
  openImageFolder,
  resolveSplitDir,
} from "./image_folder.ts";
export { decodeImage, encodeJpeg, isJpeg, isPng } from "./jpeg.ts";
export { isGzip, maybeGunzip, readTar, readTarFile, type TarEntry, writeTar } from "./tar.ts";
export {
  applyStep,
  applySteps,
  autoAugment,
  centerCrop,
  cropPad,
  DATASET_STATS,
  hflip,
  presetTransform,
  randomCrop,
  randomHorizontalFlip,
  randomResizedCrop,
  randomResizedCropBox,
  resize,
  resizeBox,
  roundHalfEven,
  toTensorInto,
  type TransformSpec,
  type TransformStep,
} from "./transforms.ts";
export {
  applyAugOp,
  type AugOp,
  autoAugmentCifar10,
  CIFAR10_POLICY,
  magnitude,
  type SubPolicy,
} from "./autoaugment.ts";
export { type Batch, buildBatch, epochOrder, mixSeed, sampleRng } from "./batch.ts";
export { ImageLoader, type LoaderOptions, type WorkerReply, type WorkerRequest } from "./loader.ts";
