/**
 * The image-classification models behind one interface: the CTM and the LSTM baseline give
 * per-tick predictions `[B, C, T]` and certainties `[B, 2, T]`; the feed-forward baseline's logits
 * `[B, C]` are presented as one tick. Also the reference's pseudo forward that materialises lazy
 * layers, and AdamW parameter groups with the no-decay exclusion list.
 */
import { Ctm } from "../../src/models/ctm.ts";
import { FfBaseline } from "../../src/models/ff.ts";
import { LstmBaseline } from "../../src/models/lstm.ts";
import { seedInit } from "../../src/nn/init.ts";
import type { Module } from "../../src/nn/module.ts";
import { BatchNorm2d } from "../../src/nn/norm2d.ts";
import { zeros } from "../../src/ops/creation.ts";
import { manualSeed } from "../../src/ops/random.ts";
import { reshape } from "../../src/ops/views.ts";
import type { ParamGroupInput } from "../../src/optim/optimizer.ts";
import type { AdamWHyper } from "../../src/optim/adamw.ts";
import { noGrad } from "../../src/tensor/autograd.ts";
import { tidy } from "../../src/tensor/scope.ts";
import type { Tensor } from "../../src/tensor/tensor.ts";
import { ctmOptionsFor, type ImageConfig, lstmOptionsFor, parseList } from "./config.ts";

/** A model of this task. */
export type ImageModel = Ctm | LstmBaseline | FfBaseline;

/** What every model's forward gives here. */
export interface ImageOutput {
  /** Logits per tick `[B, C, T]` (T = 1 for the FF baseline). */
  predictions: Tensor;
  /** Certainties per tick `[B, 2, T]`, or null for the FF baseline. */
  certainties: Tensor | null;
}

/** Builds the model of `c` for `classes` outputs, seeded from `c.seed` (weights and GPU RNG). */
export function buildImageModel(c: ImageConfig, classes: number): ImageModel {
  seedInit(c.seed);
  manualSeed(c.seed);
  if (c.model === "ctm") return new Ctm(ctmOptionsFor(c, classes));
  if (c.model === "lstm") return new LstmBaseline(lstmOptionsFor(c, classes));
  return new FfBaseline({
    dModel: c.d_model,
    backboneType: c.backbone_type,
    outDims: classes,
    dropout: c.dropout,
  });
}

/** Runs `model` on images `x [B, C, H, W]`. */
export function runImageModel(model: ImageModel, x: Tensor): ImageOutput {
  if (model instanceof FfBaseline) {
    const logits = model.forward(x);
    const p = reshape(logits, [logits.shape[0], logits.shape[1], 1]);
    logits.dispose();
    return { predictions: p, certainties: null };
  }
  const out = model.forward(x);
  return { predictions: out.predictions, certainties: out.certainties };
}

/**
 * The reference's pseudo forward before training: one batch of zeros `[2, C, H, W]` in eval
 * mode without gradients, so lazy layers get their shapes (BatchNorm statistics are not touched).
 */
export function materialise(model: ImageModel, channels: number, size: number): void {
  const wasTraining = model.training;
  model.eval();
  tidy(() => noGrad(() => void runImageModel(model, zeros([2, channels, size, size]))));
  model.train(wasTraining);
}

/**
 * AdamW parameter groups: with weight decay and a non-empty exclusion list, parameters whose name
 * contains any listed substring go to a group without decay (as the reference does); otherwise
 * one group.
 */
export function parameterGroups(model: Module, c: ImageConfig): Tensor[] | ParamGroupInput<AdamWHyper>[] {
  const excl = parseList(c.weight_decay_exclusion_list);
  if (c.weight_decay === 0 || excl.length === 0) return model.parameters();
  const decay: Tensor[] = [], noDecay: Tensor[] = [];
  for (const [name, p] of model.namedParameters()) {
    (excl.some((s) => name.includes(s)) ? noDecay : decay).push(p);
  }
  return [{ params: decay }, { params: noDecay, weightDecay: 0 }];
}

/**
 * Before the reference's evaluation: every BatchNorm of `model` forgets its running statistics and
 * averages the training-mode batches that follow with equal weights (`momentum: null`) until the
 * returned function restores its momentum. The reference keeps momentum 0.1 here, which leaves
 * 0.9ⁿ of the reset values (mean 0, variance 1) in statistics re-estimated from n batches: 43 % for
 * n = 8, 12 % for its default 20, enough to put a ResNet CTM's test accuracy near chance.
 */
export function resetBatchNormStats(model: Module): () => void {
  const restore: (() => void)[] = [];
  for (const m of model.namedModules().values()) {
    if (m instanceof BatchNorm2d) {
      m.resetRunningStats();
      const momentum = m.momentum;
      m.momentum = null;
      restore.push(() => m.momentum = momentum);
    }
  }
  return () => restore.forEach((r) => r());
}
