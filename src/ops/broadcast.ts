/** Broadcasting rules (NumPy/PyTorch): shapes align on the right, size-1 dims stretch. */
import type { Shape, Tensor } from "../tensor/tensor.ts";

/** The broadcast shape of several shapes, or a clear error. */
export function broadcastShapes(...shapes: Shape[]): number[] {
  const rank = Math.max(0, ...shapes.map((s) => s.length));
  const out = new Array<number>(rank).fill(1);
  for (const s of shapes) {
    for (let i = 0; i < s.length; i++) {
      const o = rank - s.length + i;
      const d = s[i];
      if (out[o] === 1) out[o] = d;
      else if (d !== 1 && d !== out[o]) {
        throw new Error(`shapes ${shapes.map((x) => `[${x.join(", ")}]`).join(" and ")} do not broadcast`);
      }
    }
  }
  return out;
}

/** Strides of `t` viewed with the broadcast `shape` (0 on stretched dims). */
export function broadcastStrides(t: Tensor, shape: Shape): number[] {
  const r = shape.length;
  const out = new Array<number>(r).fill(0);
  for (let i = 0; i < t.shape.length; i++) {
    const o = r - t.shape.length + i;
    out[o] = t.shape[i] === 1 && shape[o] !== 1 ? 0 : t.strides[i];
  }
  return out;
}

/** Normalises a possibly negative axis for a tensor of rank `rank`. */
export function normAxis(axis: number, rank: number): number {
  const a = axis < 0 ? axis + rank : axis;
  if (!Number.isInteger(a) || a < 0 || a >= Math.max(rank, 1)) {
    throw new Error(`axis ${axis} is out of range for a tensor of rank ${rank}`);
  }
  return a;
}

/** True when two shapes are equal. */
export function sameShape(a: Shape, b: Shape): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}
