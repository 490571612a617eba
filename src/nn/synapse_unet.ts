/**
 * The CTM's U-Net synapse (used when `synapse_depth > 1`): widths fall linearly from D to 16
 * and rise again, each level `Dropout → Linear → LayerNorm → SiLU`, with LayerNorm'd skips.
 * State-dict names follow the reference (`first_projection.0.weight`, `down_projections.0.1.weight`,
 * `up_projections.0.1.weight`, `skip_lns.0.weight`, …).
 */
import { add } from "../ops/arith.ts";
import type { Tensor } from "../tensor/tensor.ts";
import { ModuleList, Sequential } from "./containers.ts";
import { Dropout, LayerNorm, SiLU } from "./layers.ts";
import { Linear } from "./linear.ts";
import { Module } from "./module.ts";

/** Level widths: `int(linspace(outDims, minWidth, depth))`, truncated per element as NumPy does. */
export function unetWidths(outDims: number, depth: number, minWidth = 16): number[] {
  if (depth < 2) return [outDims];
  return Array.from(
    { length: depth },
    (_, i) => Math.trunc(outDims + (minWidth - outDims) * i / (depth - 1)),
  );
}

/** U-Net synapse from `inFeatures` to `outDims`. */
export class SynapseUNET extends Module {
  /** Widths per level, outermost first. */
  readonly widths: number[];
  readonly #first: Sequential;
  readonly #down: ModuleList<Sequential>;
  readonly #up: ModuleList<Sequential>;
  readonly #skips: ModuleList<LayerNorm>;

  /** Builds the levels; `inFeatures` is the width of the synapse input (attention out + D). */
  constructor(
    outDims: number,
    depth: number,
    opts: { inFeatures?: number; minWidth?: number; dropout?: number } = {},
  ) {
    super();
    const w = this.widths = unetWidths(outDims, depth, opts.minWidth ?? 16);
    const p = opts.dropout ?? 0;
    this.#first = this.registerModule(
      "first_projection",
      new Sequential(new Linear(w[0], { inFeatures: opts.inFeatures }), new LayerNorm(w[0]), new SiLU()),
    );
    const level = (a: number, b: number) =>
      new Sequential(new Dropout(p), new Linear(b, { inFeatures: a }), new LayerNorm(b), new SiLU());
    this.#down = this.registerModule(
      "down_projections",
      new ModuleList(w.slice(0, -1).map((a, i) => level(a, w[i + 1]))),
    );
    this.#up = this.registerModule(
      "up_projections",
      new ModuleList(w.slice(0, -1).map((a, i) => level(w[i + 1], a))),
    );
    this.#skips = this.registerModule(
      "skip_lns",
      new ModuleList(w.slice(0, -1).map((a) => new LayerNorm(a))),
    );
  }

  /** Maps `[B, in]` to `[B, outDims]`. */
  override forward(x: Tensor): Tensor {
    const outs = [this.#first.forward(x)];
    for (const d of this.#down) outs.push(d.forward(outs[outs.length - 1]));
    let u = outs[outs.length - 1];
    for (let i = this.widths.length - 2; i >= 0; i--) {
      const up = this.#up.at(i).forward(u);
      const s = add(up, outs[i]);
      up.dispose();
      const next = this.#skips.at(i).forward(s);
      s.dispose();
      if (u !== outs[outs.length - 1]) u.dispose();
      u = next;
    }
    for (const o of outs) if (o !== u) o.dispose();
    return u;
  }
}
