/**
 * `mapN`: the one elementwise kernel launcher. Every unary, binary and fused elementwise op is an
 * expression run through it, so chains like `a * sigmoid(b)` are a single dispatch.
 */
import { elementwiseSpec, elementwiseVec4Spec, EW_WG, type EwInput } from "../../shaders/elementwise.ts";
import { f32bits, grid1d, type KernelSpec, launch, type WgslType } from "../gpu/kernel.ts";
import { type DType, Tensor } from "../tensor/tensor.ts";
import { broadcastShapes, broadcastStrides, sameShape } from "./broadcast.ts";

const specs = new Map<string, KernelSpec>();

function isDirect(t: Tensor, shape: readonly number[]): boolean {
  return sameShape(t.shape, shape) && t.isContiguous;
}

/**
 * Elements of the block a contiguous input repeats when it broadcasts to `shape` along leading
 * dims only (its other dims equal the output's), e.g. a `[1, L, d]` bias over `[B, L, d]`; 0 if
 * it does not.
 */
function tileSize(t: Tensor, shape: readonly number[]): number {
  if (!t.isContiguous || t.ndim > shape.length) return 0;
  const k0 = shape.length - t.ndim;
  let lead = true;
  for (let d = 0; d < t.ndim; d++) {
    if (lead && t.shape[d] === 1) continue;
    lead = false;
    if (t.shape[d] !== shape[k0 + d]) return 0;
  }
  return t.size;
}

/**
 * Computes `expr` elementwise over the broadcast of `inputs` (named `x0, x1, …` in WGSL) with
 * f32 `scalars` (`s0, s1, …`) and the linear output index `i`, giving a new contiguous tensor of dtype `dtype`. No autograd:
 * differentiable ops wrap it.
 *
 * @example
 * ```ts
 * import { initGpu, fromArray, mapN } from "./mod.ts";
 * await initGpu();
 * const y = mapN("x0 * sigm(x1) + s0", [fromArray([1, 2]), fromArray([0, 3])], [0.5]);
 * ```
 */
export function mapN(
  expr: string,
  inputs: Tensor[],
  scalars: number[] = [],
  dtype: DType = "f32",
  shape: readonly number[] = broadcastShapes(...inputs.map((t) => t.shape)),
): Tensor {
  for (const t of inputs) t.assertAlive();
  const out = Tensor.empty(shape, dtype);
  mapInto(out, expr, inputs, scalars);
  return out;
}

/**
 * Like {@link mapN} but writes into an existing tensor `out` (any strides, e.g. a slice view) whose
 * shape the inputs broadcast to. An input may be `out` itself (in-place update).
 */
export function mapInto(out: Tensor, expr: string, inputs: Tensor[], scalars: number[] = []): void {
  const shape = out.shape;
  const outStrided = !out.isContiguous;
  const n = out.size;
  if (n === 0) return;
  const rank = shape.length;
  const ins: EwInput[] = inputs.map((t) => {
    const inPlace = t.storage === out.storage;
    const same = sameShape(t.shape, shape) && t.offset === out.offset &&
      t.strides.every((s, d) => s === out.strides[d]);
    if (inPlace && !same) {
      throw new Error("internal: an in-place elementwise input must be the output itself");
    }
    return { type: t.dtype as WgslType, direct: isDirect(t, shape), inPlace };
  });
  const tag = (x: EwInput) => x.type + (x.inPlace ? "y" : x.direct ? "d" : "s");
  const tiles = inputs.map((t, k) => (ins[k].direct || ins[k].inPlace ? 0 : tileSize(t, shape)));
  const vec = !outStrided && n % 4 === 0 && out.offset % 4 === 0 &&
    inputs.every((t, k) =>
      (ins[k].direct || ins[k].inPlace || tiles[k] % 4 === 0 && tiles[k] > 0) && t.offset % 4 === 0
    );
  if (vec) {
    const vins = ins.map((x, k) => (tiles[k] ? { ...x, tile: true } : x));
    const vtag = (x: EwInput) => (x.tile ? x.type + "t" : tag(x));
    const key = `v|${out.dtype}|${vins.map(vtag).join(",")}|${scalars.length}|${expr}`;
    let spec = specs.get(key);
    if (!spec) specs.set(key, spec = elementwiseVec4Spec(vins, out.dtype as WgslType, expr, scalars.length));
    const params = [
      n / 4,
      out.offset / 4,
      ...inputs.map((t) => t.offset / 4),
      ...tiles.filter((m) => m > 0).map((m) => m / 4),
      ...scalars.map(f32bits),
    ];
    const buffers = inputs.filter((_, k) => !ins[k].inPlace).map((t) => t.buffer);
    launch(spec, [...buffers, out.buffer], params, grid1d(Math.ceil(n / 4 / EW_WG)));
    return;
  }
  const key = `${rank}|${out.dtype}|${outStrided}|${ins.map(tag).join(",")}|${scalars.length}|${expr}`;
  let spec = specs.get(key);
  if (!spec) {
    spec = elementwiseSpec(rank, ins, out.dtype as WgslType, expr, scalars.length, outStrided);
    specs.set(key, spec);
  }
  const params: number[] = [n, out.offset];
  if (outStrided || ins.some((x) => !x.direct)) params.push(...shape);
  if (outStrided) params.push(...out.strides);
  inputs.forEach((t, k) => {
    params.push(t.offset);
    if (!ins[k].direct) params.push(...broadcastStrides(t, shape));
  });
  for (const s of scalars) params.push(f32bits(s));
  const buffers = inputs.filter((_, k) => !ins[k].inPlace).map((t) => t.buffer);
  buffers.push(out.buffer);
  launch(spec, buffers, params, grid1d(Math.ceil(n / EW_WG)));
}
