/**
 * The LSTM cell: the fused gate/cell-update kernels (forward and backward) behind
 * {@link lstmCellUpdate}, and {@link lstmCell}, one step of one layer (two projections with fused
 * biases, PyTorch's layout, then the fused update). `LSTM` (`./lstm.ts`) stacks these.
 *
 * The backward is one kernel for the whole cell update (it recomputes the gates from the saved
 * pre-activations).
 */
import { grid1d, type KernelSpec, launch } from "../gpu/kernel.ts";
import { EW_HELPERS } from "../../shaders/elementwise.ts";
import { linear } from "../ops/matmul.ts";
import { contiguous } from "../ops/views.ts";
import { noGrad, recordMulti } from "../tensor/autograd.ts";
import { Tensor } from "../tensor/tensor.ts";

const WG = 256;
const specs = new Map<string, KernelSpec>();

/** Reads the four gate pre-activations of element (b, j) and activates them. */
const GATES = `
let b = idx / P.H;
let j = idx % P.H;
let rx = P.ogx + b * P.sgx + j;
let rh = P.ogh + b * P.sgh + j;
let gi = sigm(GX[rx] + GH[rh]);
let gf = sigm(GX[rx + P.H] + GH[rh + P.H]);
let gg = tanh_s(GX[rx + 2u * P.H] + GH[rh + 2u * P.H]);
let go = sigm(GX[rx + 3u * P.H] + GH[rh + 3u * P.H]);
let cp = C[P.oc + b * P.scb + j * P.scj];
let c2 = gf * cp + gi * gg;`;

function forwardSpec(): KernelSpec {
  let s = specs.get("fwd");
  if (!s) {
    s = {
      name: "lstm_cell",
      params: ["n", "H", "ogx", "sgx", "ogh", "sgh", "oc", "scb", "scj", "oh", "oc2"],
      bindings: [
        { name: "GX", type: "f32", access: "read" },
        { name: "GH", type: "f32", access: "read" },
        { name: "C", type: "f32", access: "read" },
        { name: "HO", type: "f32", access: "rw" },
        { name: "CO", type: "f32", access: "rw" },
      ],
      workgroup: [WG],
      prelude: EW_HELPERS,
      body: `
let idx = (wid.x + wid.y * nwg.x) * ${WG}u + lid.x;
if (idx >= P.n) { return; }
${GATES}
CO[P.oc2 + idx] = c2;
HO[P.oh + idx] = go * tanh_s(c2);`,
    };
    specs.set("fwd", s);
  }
  return s;
}

function backwardSpec(hasDh: boolean, hasDc: boolean): KernelSpec {
  const key = `bwd${+hasDh}${+hasDc}`;
  let s = specs.get(key);
  if (!s) {
    const bindings: KernelSpec["bindings"] = [
      { name: "GX", type: "f32", access: "read" },
      { name: "GH", type: "f32", access: "read" },
      { name: "C", type: "f32", access: "read" },
    ];
    if (hasDh) bindings.push({ name: "DH", type: "f32", access: "read" });
    if (hasDc) bindings.push({ name: "DC", type: "f32", access: "read" });
    bindings.push({ name: "DA", type: "f32", access: "rw" }, { name: "DCP", type: "f32", access: "rw" });
    s = {
      name: "lstm_cell_backward",
      params: ["n", "H", "ogx", "sgx", "ogh", "sgh", "oc", "scb", "scj", "odh", "odc"],
      bindings,
      workgroup: [WG],
      prelude: EW_HELPERS,
      body: `
let idx = (wid.x + wid.y * nwg.x) * ${WG}u + lid.x;
if (idx >= P.n) { return; }
${GATES}
let th = tanh_s(c2);
let dh = ${hasDh ? "DH[P.odh + idx]" : "0.0"};
let dc2 = ${hasDc ? "DC[P.odc + idx]" : "0.0"} + dh * go * (1.0 - th * th);
let ra = b * 4u * P.H + j;
DA[ra] = dc2 * gg * gi * (1.0 - gi);
DA[ra + P.H] = dc2 * cp * gf * (1.0 - gf);
DA[ra + 2u * P.H] = dc2 * gi * (1.0 - gg * gg);
DA[ra + 3u * P.H] = dh * th * go * (1.0 - go);
DCP[idx] = dc2 * gf;`,
    };
    specs.set(key, s);
  }
  return s;
}

/** A handle whose rows are unit-stride `[B, 4H]` (any row stride), else a contiguous copy. */
function rowMajor(t: Tensor): Tensor {
  return t.strides[1] === 1 ? t.alias(t.shape, t.strides, t.offset, true) : noGrad(() => contiguous(t));
}

/**
 * The fused LSTM cell update from gate pre-activations: with `a = gx + gh` split as (i, f, g, o)
 * along the last dim, `c' = σ(f)·c + σ(i)·tanh(g)` and `h' = σ(o)·tanh(c')`. `gx`, `gh` are
 * `[B, 4H]`, `c` is `[B, H]` (any strides, e.g. an expanded start state). Returns `[h', c']`, both
 * `[B, H]`, from one dispatch; the backward is one dispatch too.
 *
 * @example
 * ```ts
 * import { initGpu, randn, lstmCellUpdate } from "./mod.ts";
 * await initGpu();
 * const [h, c] = lstmCellUpdate(randn([2, 12]), randn([2, 12]), randn([2, 3])); // [2, 3] each
 * ```
 */
export function lstmCellUpdate(gx: Tensor, gh: Tensor, c: Tensor): [Tensor, Tensor] {
  for (const t of [gx, gh, c]) {
    t.assertAlive();
    if (t.dtype !== "f32" || t.ndim !== 2) {
      throw new Error(`lstmCellUpdate: need f32 gx, gh [B, 4H] and c [B, H], got ${t.toString()}`);
    }
  }
  const [B, H] = c.shape;
  for (const t of [gx, gh]) {
    if (t.shape[0] !== B || t.shape[1] !== 4 * H) {
      throw new Error(
        `lstmCellUpdate: gates [${t.shape.join(", ")}] do not match the cell [${B}, ${H}] (want [${B}, ${
          4 * H
        }])`,
      );
    }
  }
  const x = rowMajor(gx), hh = rowMajor(gh);
  const n = B * H;
  const hOut = Tensor.empty([B, H]);
  const cOut = Tensor.empty([B, H]);
  const common = [
    n,
    H,
    x.offset,
    x.strides[0],
    hh.offset,
    hh.strides[0],
    c.offset,
    c.strides[0],
    c.strides[1],
  ];
  if (n > 0) {
    launch(
      forwardSpec(),
      [x.buffer, hh.buffer, c.buffer, hOut.buffer, cOut.buffer],
      [...common, hOut.offset, cOut.offset],
      grid1d(Math.ceil(n / WG)),
    );
  }
  const saved = [x.alias(), hh.alias(), c.alias()];
  x.dispose();
  hh.dispose();
  const outs = recordMulti("lstmCell", [gx, gh, c], [hOut, cOut], ([dh, dc]) => {
    const [sx, sh, sc] = saved;
    const dhc = dh ? contiguous(dh) : null;
    const dcc = dc ? contiguous(dc) : null;
    const da = Tensor.empty([B, 4 * H]);
    const dcp = Tensor.empty([B, H]);
    const bufs = [sx.buffer, sh.buffer, sc.buffer];
    if (dhc) bufs.push(dhc.buffer);
    if (dcc) bufs.push(dcc.buffer);
    bufs.push(da.buffer, dcp.buffer);
    const params = [
      n,
      H,
      sx.offset,
      sx.strides[0],
      sh.offset,
      sh.strides[0],
      sc.offset,
      sc.strides[0],
      sc.strides[1],
    ];
    params.push(dhc?.offset ?? 0, dcc?.offset ?? 0);
    if (n > 0) launch(backwardSpec(!!dhc, !!dcc), bufs, params, grid1d(Math.ceil(n / WG)));
    dhc?.dispose();
    dcc?.dispose();
    const gGx = gx.requiresGrad ? da : null;
    const gGh = gh.requiresGrad ? (gGx ? da.alias(da.shape, da.strides, da.offset, true) : da) : null;
    if (!gGx && !gGh) da.dispose();
    const gC = c.requiresGrad ? dcp : null;
    if (!gC) dcp.dispose();
    return [gGx, gGh, gC];
  }, saved);
  return [outs[0], outs[1]];
}

/** The weights of one LSTM layer (PyTorch layout: `[4H, in]`, `[4H, H]`, `[4H]`, `[4H]`). */
export interface LstmLayerWeights {
  /** `weight_ih_l{k}` `[4H, in]`. */
  wIh: Tensor;
  /** `weight_hh_l{k}` `[4H, H]`. */
  wHh: Tensor;
  /** `bias_ih_l{k}` `[4H]`, or null without bias. */
  bIh: Tensor | null;
  /** `bias_hh_l{k}` `[4H]`, or null without bias. */
  bHh: Tensor | null;
}

/**
 * One LSTM cell step: `x [B, in]`, `h, c [B, H]` → `[h', c']`. Three dispatches (two projections
 * with fused biases, one fused gate/cell kernel).
 */
export function lstmCell(x: Tensor, h: Tensor, c: Tensor, w: LstmLayerWeights): [Tensor, Tensor] {
  const gx = linear(x, w.wIh, w.bIh);
  const gh = linear(h, w.wHh, w.bHh);
  const r = lstmCellUpdate(gx, gh, c);
  gx.dispose();
  gh.dispose();
  return r;
}
