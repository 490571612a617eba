/**
 * Gradients gathered into one buffer, so kernels that treat every parameter alike (clipping's
 * sums of squares and scaling) run as one dispatch over all of them instead of one or more per
 * parameter. Each gradient is copied into its segment and then moved there (`Tensor.moveTo`):
 * `p.grad` keeps its identity and every holder of it follows. Segments start at multiples of 4
 * elements and are cut into chunks of at most {@link GRAD_CHUNK} elements, one workgroup each.
 */
import { recorder } from "../gpu/recorder.ts";
import { fromArray } from "../ops/creation.ts";
import { mapN } from "../ops/map.ts";
import { contiguous } from "../ops/views.ts";
import { keep } from "../tensor/scope.ts";
import { Tensor } from "../tensor/tensor.ts";

/** Elements per chunk (a multiple of 4). */
export const GRAD_CHUNK = 4096;

/** Where each segment lies in an arena and how it is cut into chunks. */
export interface ArenaLayout {
  /** Element offset of each segment (multiples of 4). */
  offsets: number[];
  /** Elements of the arena (a multiple of 4, at least 4). */
  total: number;
  /** `[segment, start, end)` per chunk (u32, kept: owned by the layout cache). */
  chunks: Tensor;
  nChunks: number;
  /** First chunk and end chunk of each segment. */
  chunkRange: [number, number][];
}

const layouts = new Map<string, ArenaLayout>();
const MAX_LAYOUTS = 32;

/** The layout of segments of `sizes` elements (cached; a few small tables at most). */
export function arenaLayout(sizes: readonly number[]): ArenaLayout {
  const key = sizes.join(",");
  let l = layouts.get(key);
  if (l) return l;
  const offsets: number[] = [], table: number[] = [], chunkRange: [number, number][] = [];
  let off = 0;
  sizes.forEach((n, s) => {
    offsets.push(off);
    const c0 = table.length / 3;
    for (let a = 0; a < n; a += GRAD_CHUNK) table.push(s, off + a, off + Math.min(n, a + GRAD_CHUNK));
    chunkRange.push([c0, table.length / 3]);
    off += Math.ceil(n / 4) * 4;
  });
  if (table.length === 0) table.push(0, 0, 0);
  if (layouts.size >= MAX_LAYOUTS) {
    const [oldKey, old] = layouts.entries().next().value!;
    old.chunks.dispose();
    layouts.delete(oldKey);
  }
  l = {
    offsets,
    total: Math.max(off, 4),
    chunks: keep(fromArray(Uint32Array.from(table))),
    nChunks: chunkRange.length ? chunkRange[chunkRange.length - 1][1] : 0,
    chunkRange,
  };
  layouts.set(key, l);
  return l;
}

/** Gradients gathered by {@link gatherGrads}: dispose `arena` (the gradients keep the memory). */
export interface GatheredGrads {
  arena: Tensor;
  layout: ArenaLayout;
}

/**
 * Copies `grads` (f32, any layout) into one new buffer, segment i holding grads[i] in row-major
 * order, and moves each gradient tensor onto its segment. A gradient that shares its storage with
 * an earlier one in the list is cloned first, so no copy reads the buffer it writes.
 */
export function gatherGrads(grads: readonly Tensor[]): GatheredGrads {
  for (const g of grads) {
    if (g.dtype !== "f32") throw new Error(`gatherGrads: gradients must be f32, got ${g.dtype}`);
  }
  const layout = arenaLayout(grads.map((g) => g.size));
  const arena = Tensor.empty([layout.total]);
  const rec = recorder();
  grads.forEach((g, i) => {
    if (g.size === 0) return;
    const src = g.storage === arena.storage ? mapN("x0", [g]) : g.isContiguous ? g : contiguous(g);
    rec.copy(src.buffer, src.offset * 4, arena.buffer, layout.offsets[i] * 4, g.size * 4);
    if (src !== g) src.dispose();
    g.moveTo(arena.storage, layout.offsets[i]);
  });
  return { arena, layout };
}
