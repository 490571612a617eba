/**
 * A Deno-native toolkit for Continuous Thought Machines: a WebGPU tensor engine with reverse-mode
 * autodiff, modules, optimizers and safetensors I/O.
 *
 * @example
 * ```ts
 * import { initGpu, randn, matmul, sum } from "./mod.ts";
 * await initGpu();
 * const w = randn([4, 3]).requireGrad();
 * const loss = sum(matmul(randn([2, 4]), w));
 * loss.backward();
 * console.log(await w.grad!.toArray());
 * ```
 *
 * @module
 */
import "./src/ops/setup.ts";

export {
  DeviceLostError,
  deviceLostReason,
  gpu,
  type GpuContext,
  initGpu,
  NoAdapterError,
} from "./src/gpu/device.ts";
export { Recorder, recorder, type RecorderStats } from "./src/gpu/recorder.ts";
export { ReadQueue } from "./src/gpu/readback.ts";
export { BufferPool, type PoolStats } from "./src/gpu/buffer_pool.ts";
export {
  holdIdlePoll,
  IDLE_POLL_MODES,
  idlePollFor,
  type IdlePollHold,
  type IdlePollMode,
} from "./src/gpu/idle_poll.ts";
export { type DType, type HostArray, numel, type Shape, Tensor } from "./src/tensor/tensor.ts";
export { memoryStats, Storage, trimMemory } from "./src/tensor/storage.ts";
export { type Disposable, keep, tidy } from "./src/tensor/scope.ts";
export {
  type BackwardFn,
  detach,
  isGradEnabled,
  type MultiBackwardFn,
  Node,
  noGrad,
  record,
  recordMulti,
} from "./src/tensor/autograd.ts";
export { Rng } from "./src/util/rng.ts";
export { mapInto, mapN } from "./src/ops/map.ts";
export {
  arange,
  fromArray,
  full,
  type NestedArray,
  ones,
  onesLike,
  zeros,
  zerosLike,
} from "./src/ops/creation.ts";
export {
  add,
  div,
  eq,
  ge,
  gt,
  le,
  lt,
  maximum,
  minimum,
  mul,
  ne,
  pow,
  sub,
  type TensorLike,
  where,
} from "./src/ops/arith.ts";
export {
  abs,
  clamp,
  cos,
  exp,
  glu,
  log,
  neg,
  relu,
  rsqrt,
  sigmoid,
  silu,
  sin,
  sqrt,
  square,
  tanh,
} from "./src/ops/unary.ts";
export { argmax, argmin, max, mean, min, sum, sumToShape } from "./src/ops/reduce.ts";
export {
  concat,
  contiguous,
  expand,
  flatten,
  permute,
  reshape,
  slice,
  split,
  squeeze,
  stack,
  transpose,
  unsqueeze,
} from "./src/ops/views.ts";
export { logSoftmax, logsumexp, softmax } from "./src/ops/softmax.ts";
export { layerNorm } from "./src/ops/norm.ts";
export { crossEntropy, type LossOptions, nllLoss } from "./src/ops/loss.ts";
export { std, variance } from "./src/ops/stats.ts";
export {
  checkIndexRange,
  embedding,
  gather,
  indexSelect,
  oneHot,
  scatterAdd,
  type ScatterMode,
  setScatterAddMode,
} from "./src/ops/indexing.ts";
export {
  bernoulli,
  defaultGenerator,
  dropout,
  getRngState,
  GpuGenerator,
  manualSeed,
  normal,
  rand,
  randint,
  randn,
  type RngState,
  setRngState,
  uniform,
} from "./src/ops/random.ts";
export {
  type Activation,
  groupedMatmul,
  linear,
  matmul,
  type MatmulVariant,
  matmulVariant,
  setMatmulVariant,
} from "./src/ops/matmul.ts";
export { type BindingSpec, type KernelSpec, launch, wgsl, type WgslType } from "./src/gpu/kernel.ts";
export { batchNorm2d, type BatchNormOptions } from "./src/ops/batchnorm.ts";
export { conv2d, type Conv2dOptions, convOutSize } from "./src/ops/conv.ts";
export {
  adaptiveAvgPool2d,
  maxPool2d,
  type MaxPool2dOptions,
  maxPool2dWithIndices,
  type Size2,
} from "./src/ops/pool.ts";

// Modules
export {
  type LoadStateDictOptions,
  type LoadStateDictResult,
  Module,
  type TensorMapLike,
} from "./src/nn/module.ts";
export { Linear, type LinearOptions } from "./src/nn/linear.ts";
export {
  Dropout,
  Embedding,
  type EmbeddingOptions,
  GLU,
  Identity,
  identity,
  LayerNorm,
  type LayerNormOptions,
  ReLU,
  SiLU,
  Squeeze,
} from "./src/nn/layers.ts";
export { ModuleList, Sequential, type UnaryModule } from "./src/nn/containers.ts";
export { BatchNorm2d, type BatchNorm2dOptions } from "./src/nn/norm2d.ts";
export { Conv2d, type Conv2dModuleOptions } from "./src/nn/conv.ts";
export { AdaptiveAvgPool2d, MaxPool2d, type MaxPool2dLayerOptions } from "./src/nn/pool.ts";
export { type AttentionResult, MultiheadAttention, type ProjectedKV } from "./src/nn/attention.ts";
export { SuperLinear, type SuperLinearOptions } from "./src/nn/superlinear.ts";
export { SynapseUNET, unetWidths } from "./src/nn/synapse_unet.ts";
export { constant_, normal_, seedInit, uniform_, xavierUniform_ } from "./src/nn/init.ts";

// Optimisation
export {
  type BaseHyper,
  type LrTarget,
  Optimizer,
  type OptimizerMeta,
  type OptimizerStateDict,
  type ParamGroup,
  type ParamGroupInput,
  type ParamState,
  weightDecayGroups,
} from "./src/optim/optimizer.ts";
export { AdamW, type AdamWHyper } from "./src/optim/adamw.ts";
export { SGD, type SGDHyper } from "./src/optim/sgd.ts";
export {
  CosineLR,
  type CosineOptions,
  LinearWarmupLR,
  LRScheduler,
  type SchedulerState,
  WarmupCosineLR,
  type WarmupCosineOptions,
  WarmupMultiStepLR,
  type WarmupMultiStepOptions,
} from "./src/optim/schedulers.ts";
export {
  clipGradNorm,
  QuantileClip,
  type QuantileClipMeta,
  type QuantileClipOptions,
} from "./src/optim/clip.ts";

// Weights
export {
  checkSafetensors,
  decodeSafetensors,
  encodeSafetensors,
  type HostTensor,
  type LoadOptions as SafetensorsLoadOptions,
  loadSafetensors,
  readSafetensors,
  type SafetensorsDType,
  type SafetensorsFile,
  type SaveOptions as SafetensorsSaveOptions,
  saveSafetensors,
  uploadSafetensors,
} from "./src/io/safetensors.ts";

// Models
export {
  Ctm,
  type CtmOptions,
  type CtmOutput,
  type CtmTracking,
  verifyCtmOptions,
} from "./src/models/ctm.ts";
export { computeCertainty, normalizedEntropy } from "./src/models/certainty.ts";
export {
  NEURON_SELECT_TYPES,
  type NeuronSelectType,
  selectNeurons,
  syncSize,
} from "./src/models/synchronisation.ts";
export {
  backboneWidth,
  EXTRA_BACKBONE_TYPES,
  type Features,
  Featuriser,
  type FeaturiserOptions,
  makeBackbone,
  makeInitialRgb,
  makePositionalEmbedding,
  ParityBackbone,
  VALID_BACKBONE_TYPES,
  VALID_POSITIONAL_EMBEDDING_TYPES,
} from "./src/models/backbones.ts";
export {
  CustomRotationalEmbedding,
  CustomRotationalEmbedding1D,
  gridCoordinates,
  type LearnableFourierOptions,
  LearnableFourierPositionalEncoding,
  type MultiLearnableFourierOptions,
  MultiLearnableFourierPositionalEncoding,
  rotationAngles,
} from "./src/models/positional.ts";
export {
  BasicBlock,
  Bottleneck,
  parseResNetType,
  prepareResnetBackbone,
  ResNet,
  RESNET_LAYOUTS,
  resnetChannels,
  type ResNetDepth,
  type ResNetOptions,
  resnetOutputSize,
} from "./src/models/resnet.ts";
export { ShallowWide, type ShallowWideOptions } from "./src/models/shallow_wide.ts";
export { MnistBackbone } from "./src/models/mnist_backbone.ts";
export { FfBaseline, type FfBaselineOptions, verifyFfBaselineOptions } from "./src/models/ff.ts";

export {
  LstmBaseline,
  type LstmBaselineOptions,
  type LstmOutput,
  type LstmTracking,
  verifyLstmBaselineOptions,
} from "./src/models/lstm.ts";
export {
  LSTM,
  lstmCell,
  lstmCellUpdate,
  type LstmLayerWeights,
  type LstmOptions,
  type LstmResult,
  type LstmState,
} from "./src/nn/lstm.ts";

// Training
export {
  type ClassificationAccuracy,
  classificationAccuracy,
  combineTicks,
  type CtmLoss,
  imageClassificationLoss,
  type ParityAccuracy,
  parityAccuracy,
  parityLoss,
} from "./src/train/losses.ts";
export {
  type ClipOption,
  type StepOutput,
  train,
  type TrainOptimizer,
  type TrainOptions,
  type TrainResult,
  type TrainScheduler,
} from "./src/train/loop.ts";
export {
  type CheckpointInfo,
  type CheckpointScan,
  type CheckpointTargets,
  latestCheckpoint,
  loadCheckpoint,
  type LoadCheckpointOptions,
  type LoadedCheckpoint,
  saveCheckpoint,
  type SaveCheckpointOptions,
  scanCheckpoints,
  type StatefulClip,
  type StatefulOptimizer,
  type StatefulScheduler,
} from "./src/train/checkpoint.ts";
export {
  GpuMetrics,
  type Histories,
  type History,
  type MetricValue,
  type MetricValues,
} from "./src/train/metrics.ts";
export { type Metrics as ProgressMetrics, Progress, type ProgressOptions } from "./src/util/progress.ts";

// Image data
export * from "./src/data/mod.ts";
