/**
 * Weights move between this toolkit and PyTorch: a CTM saved as safetensors (the reference's
 * parameter names) loads with `load_state_dict(strict=True)` into a PyTorch CTM written from the
 * reference facts with torch's own modules (`tests/torch/ctm_torch.py`), which gives the same
 * predictions, certainties and parameter gradients (float64 there, float32 tolerance here), for the
 * fused and the op-by-op recurrence; likewise the LSTM baseline against `nn.LSTM` and the FF
 * baseline. Runs only where `python3` can import torch and numpy (ignored otherwise; `.ci/run`
 * installs torch from a local wheel directory when it finds one).
 */
import { Ctm, type CtmOptions } from "../src/models/ctm.ts";
import { LstmBaseline, type LstmBaselineOptions } from "../src/models/lstm.ts";
import { FfBaseline, type FfBaselineOptions } from "../src/models/ff.ts";
import { fromArray } from "../src/ops/creation.ts";
import { mul } from "../src/ops/arith.ts";
import { sum } from "../src/ops/reduce.ts";
import { readSafetensors, saveSafetensors } from "../src/io/safetensors.ts";
import { initGpu } from "../src/gpu/device.ts";
import { tidy } from "../src/tensor/scope.ts";
import { Tensor } from "../src/tensor/tensor.ts";
import { Rng } from "./helpers.ts";
import { compareWithTorch } from "./torch_compare.ts";

const script = new URL("./torch/ctm_torch.py", import.meta.url).pathname;
const hasTorch = await new Deno.Command("python3", {
  args: ["-c", "import torch, numpy"],
  stdout: "null",
  stderr: "null",
})
  .output().then((o) => o.success, () => false);

interface Case {
  name: string;
  /** A CTM configuration, or a baseline's with `lstm` / `ff`. */
  cfg: Omit<CtmOptions, "rng">;
  lstm?: Omit<LstmBaselineOptions, "rng">;
  ff?: Omit<FfBaselineOptions, "rng">;
  /** Input shape: `[B, L]` parity sequences, `[B, C, L]` features or `[B, C, H, W]` images. */
  shape: number[];
  fused: boolean;
  /** Run in eval mode (batch norm from its running statistics). */
  eval?: boolean;
}

const parity: Case["cfg"] = {
  iterations: 4,
  dModel: 12,
  dInput: 8,
  heads: 2,
  nSynchOut: 8,
  nSynchAction: 4,
  synapseDepth: 1,
  memoryLength: 3,
  deepNlms: true,
  memoryHiddenDims: 3,
  backboneType: "parity_backbone",
  positionalEmbeddingType: "custom-rotational-1d",
  outDims: 8,
  predictionReshaper: [4, 2],
  neuronSelectType: "random-pairing",
  nRandomPairingSelf: 2,
};

/** The parity CTM on images with an image backbone (a ResNet, `mnist`, `shallow-wide`), two ticks. */
const resnet = (backboneType: string): Case["cfg"] => ({
  ...parity,
  backboneType,
  positionalEmbeddingType: "none",
  iterations: 2,
});

const CASES: Case[] = [
  {
    name: "parity backbone, deep NLMs, random-pairing, fused recurrence",
    cfg: parity,
    shape: [3, 4],
    fused: true,
  },
  { name: "the same, op-by-op recurrence", cfg: parity, shape: [3, 4], fused: false },
  {
    name: "no backbone, U-Net synapses, shallow NLMs, first-last",
    cfg: {
      ...parity,
      backboneType: "none",
      positionalEmbeddingType: "none",
      synapseDepth: 3,
      deepNlms: false,
      neuronSelectType: "first-last",
      nRandomPairingSelf: 0,
      outDims: 3,
      predictionReshaper: [-1],
    },
    shape: [2, 6, 5],
    fused: false,
  },
  ...[false, true].map((evalMode) => ({
    name: `resnet18-2 backbone (basic blocks, a strided stage), batch norm in ${
      evalMode ? "eval" : "training"
    } mode`,
    cfg: resnet("resnet18-2"),
    shape: [2, 3, 8, 8],
    fused: true,
    eval: evalMode,
  })),
  { name: "MNIST conv backbone, 1-channel images", cfg: resnet("mnist"), shape: [2, 1, 8, 8], fused: true },
  {
    name: "ShallowWide backbone (grouped convolution, GLU over channels)",
    cfg: resnet("shallow-wide"),
    shape: [2, 3, 6, 6],
    fused: true,
  },
  {
    name: "resnet50-1 backbone (bottleneck blocks), 1-channel images",
    cfg: resnet("resnet50-1"),
    shape: [2, 1, 6, 6],
    fused: true,
  },
  {
    name: "FF baseline on resnet18-2",
    cfg: parity,
    ff: { backboneType: "resnet18-2", dModel: 16, outDims: 5 },
    shape: [2, 3, 8, 8],
    fused: false,
  },
  {
    name: "LSTM baseline, two layers, parity backbone",
    cfg: parity,
    lstm: {
      iterations: 3,
      dModel: 6,
      dInput: 8,
      heads: 2,
      backboneType: "parity_backbone",
      numLayers: 2,
      positionalEmbeddingType: "custom-rotational-1d",
      outDims: 8,
      predictionReshaper: [4, 2],
    },
    shape: [3, 4],
    fused: false,
  },
  {
    name: "random selection (upper triangles), memory length 1, fused",
    cfg: { ...parity, neuronSelectType: "random", memoryLength: 1, nRandomPairingSelf: 0, heads: 4 },
    shape: [5, 4],
    fused: true,
  },
];

function torchConfig(c: Case): Record<string, unknown> {
  const o = c.cfg, d_backbone = c.shape.length === 3 ? c.shape[1] : undefined;
  const in_channels = c.shape.length === 4 ? c.shape[1] : undefined;
  if (c.ff) {
    return {
      model: "ff",
      backbone_type: c.ff.backboneType,
      d_model: c.ff.dModel,
      out_dims: c.ff.outDims,
      in_channels,
    };
  }
  if (c.lstm) {
    const l = c.lstm;
    return {
      model: "lstm",
      iterations: l.iterations,
      d_model: l.dModel,
      d_input: l.dInput,
      heads: l.heads,
      num_layers: l.numLayers,
      backbone_type: l.backboneType,
      positional_embedding_type: l.positionalEmbeddingType,
      out_dims: l.outDims,
      prediction_reshaper: l.predictionReshaper,
      d_backbone,
    };
  }
  return {
    eval: c.eval ?? false,
    iterations: o.iterations,
    d_model: o.dModel,
    d_input: o.dInput,
    heads: o.heads,
    n_synch_out: o.nSynchOut,
    n_synch_action: o.nSynchAction,
    synapse_depth: o.synapseDepth,
    memory_length: o.memoryLength,
    deep_nlms: o.deepNlms,
    memory_hidden_dims: o.memoryHiddenDims,
    backbone_type: o.backboneType,
    positional_embedding_type: o.positionalEmbeddingType,
    out_dims: o.outDims,
    prediction_reshaper: o.predictionReshaper,
    neuron_select_type: o.neuronSelectType,
    d_backbone,
    in_channels,
  };
}

for (const c of CASES) {
  Deno.test({
    name: `PyTorch interop: ${c.name}`,
    ignore: !hasTorch,
    sanitizeOps: false,
    sanitizeResources: false,
    fn: async () => {
      await initGpu();
      const dir = await Deno.makeTempDir({ prefix: "ctm-torch-" });
      const rng = new Rng(5);
      const model = c.ff
        ? new FfBaseline({ ...c.ff, rng: new Rng(9) })
        : c.lstm
        ? new LstmBaseline({ ...c.lstm, rng: new Rng(9) })
        : new Ctm({ ...c.cfg, rng: new Rng(9) });
      if (model instanceof Ctm) model.fused = c.fused;
      const B = c.shape[0];
      const x = c.shape.length === 2
        ? fromArray(Float32Array.from({ length: B * c.shape[1] }, () => (rng.next() < 0.5 ? -1 : 1)), c.shape)
        : fromArray(
          Float32Array.from({ length: c.shape.reduce((a, b) => a * b) }, () => rng.uniform(-1, 1)),
          c.shape,
        );
      tidy(() => void model.forward(x)); // materialise lazy layers
      // Every float parameter off its trivial init; decays partly outside [0, 15] (clamped in place).
      const fresh = new Map<string, Tensor>();
      for (const [k, t] of model.stateDict()) {
        if (t.dtype !== "f32") continue;
        const a = Float64Array.from(await t.toArray());
        const v = k.startsWith("decay_params")
          ? a.map((_, i) => (i === 0 ? -0.5 : i === 1 ? 16 : rng.uniform(0, 2)))
          : a.map((y) => y + rng.uniform(-0.3, 0.3));
        fresh.set(k, fromArray(Float32Array.from(v), t.shape));
      }
      model.loadStateDict(fresh, { strict: false });
      for (const t of fresh.values()) t.dispose();
      // The FF baseline's logits have no tick axis.
      const probeShape = c.ff
        ? [B, c.ff.outDims]
        : [B, (c.lstm ?? c.cfg).outDims, (c.lstm ?? c.cfg).iterations];
      const probe = fromArray(
        Float32Array.from({ length: probeShape.reduce((a, b) => a * b) }, () => rng.uniform(-1, 1)),
        probeShape,
      );
      await saveSafetensors(`${dir}/weights.safetensors`, model.stateDict());
      await saveSafetensors(`${dir}/input.safetensors`, { x, probe });
      await Deno.writeTextFile(`${dir}/config.json`, JSON.stringify(torchConfig(c)));

      if (c.eval) model.eval();
      model.zeroGrad();
      const outs = tidy(() => {
        const o = model.forward(x);
        const [predictions, ...rest] = o instanceof Tensor
          ? [o]
          : [o.predictions, o.certainties, "syncOut" in o ? o.syncOut : o.hidden];
        sum(mul(predictions, probe)).backward();
        return [predictions, ...rest];
      });
      const ours = new Map<string, ArrayLike<number>>([["predictions", await outs[0].toArray()]]);
      if (outs[1]) ours.set("certainties", await outs[1].toArray());
      for (const [k, p] of model.namedParameters()) {
        ours.set(`grad.${k}`, p.grad ? await p.grad.toArray() : new Float32Array(p.size));
      }
      for (const [k, t] of model.stateDict()) {
        if (k.includes("running")) ours.set(`buffer.${k}`, await t.toArray());
      }

      const run = await new Deno.Command("python3", {
        args: [
          script,
          ...["config.json", "weights.safetensors", "input.safetensors", "out.safetensors"]
            .map((f) => `${dir}/${f}`),
        ],
      }).output();
      if (!run.success) throw new Error(`ctm_torch.py failed:\n${new TextDecoder().decode(run.stderr)}`);
      const theirs = (await readSafetensors(`${dir}/out.safetensors`)).tensors;
      const { problems } = compareWithTorch(ours, theirs);
      if (problems.length) throw new Error(problems.join("\n"));
      for (const t of [x, probe, ...outs]) t.dispose();
      model.dispose();
      await Deno.remove(dir, { recursive: true });
    },
  });
}
