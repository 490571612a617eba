/**
 * Figure builders of the parity analysis (`tasks/parity/analysis.ts`), one module per concept:
 * training curves and history matrices ({@link import("./plots_curves.ts")}), per-tick frames of
 * test sequences, attention and neural dynamics ({@link import("./plots_frames.ts")}), and accuracy
 * per tick, thinking time and accuracy across checkpoints ({@link import("./plots_accuracy.ts")}).
 * Everything returns RGBA images built with `src/plot`; the generic helpers (matrices with axes,
 * charts with a cursor, padding frames to one size, evenly spaced picks) live in `src/plot`.
 */
export * from "./plots_curves.ts";
export * from "./plots_frames.ts";
export * from "./plots_accuracy.ts";
