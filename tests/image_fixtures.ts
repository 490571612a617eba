/** Generated image data and a tiny image-trainer config shared by the image trainer and analysis tests. */
import type { ImageConfig } from "../tasks/image_classification/config.ts";
import { join } from "../src/util/std.ts";
import { Rng } from "./helpers.ts";

/** Writes CIFAR-10 binaries where the class is which colour channel is brightest (+ noise). */
export async function makeCifar(dir: string, perFile: number, seed: number): Promise<void> {
  const rng = new Rng(seed);
  const folder = join(dir, "cifar-10-batches-bin");
  await Deno.mkdir(folder, { recursive: true });
  const file = () => {
    const out = new Uint8Array(perFile * 3073);
    for (let i = 0; i < perFile; i++) {
      const label = rng.int(3);
      out[i * 3073] = label;
      for (let c = 0; c < 3; c++) {
        for (let p = 0; p < 1024; p++) {
          const base = c === label ? 170 : 70;
          out[i * 3073 + 1 + c * 1024 + p] = Math.max(
            0,
            Math.min(255, base + Math.round(rng.uniform(-60, 60))),
          );
        }
      }
    }
    return out;
  };
  for (let k = 1; k <= 5; k++) await Deno.writeFile(join(folder, `data_batch_${k}.bin`), file());
  await Deno.writeFile(join(folder, "test_batch.bin"), file());
}

/** A tiny CTM on the generated CIFAR data in `dir`, logging to `logDir` (quick on lavapipe). */
export const tinyImageConfig = (dir: string, logDir: string): Partial<ImageConfig> => ({
  dataset: "cifar10",
  data_root: dir,
  model: "ctm",
  backbone_type: "mnist",
  d_model: 16,
  d_input: 8,
  heads: 2,
  iterations: 3,
  synapse_depth: 1,
  n_synch_out: 8,
  n_synch_action: 8,
  memory_length: 3,
  memory_hidden_dims: 2,
  batch_size: 8,
  batch_size_test: 8,
  lr: 3e-3,
  warmup_steps: 2,
  training_iterations: 24,
  track_every: 12,
  n_test_batches: 2,
  save_every: 12,
  image_size: 0,
  num_workers_train: 1,
  log_every: 4,
  progress: false,
  log_dir: logDir,
  seed: 5,
});
