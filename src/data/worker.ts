/**
 * Entry of a loader worker (`new Worker(new URL("./worker.ts", import.meta.url), { type: "module" })`).
 * It re-opens the dataset from its description, then answers batch requests: decode, augment and
 * normalise the given indices, and transfer the floats back. Protocol types are in `loader.ts`.
 */
/// <reference lib="deno.worker" />
import { buildBatch } from "./batch.ts";
import { openFromDescription } from "./datasets.ts";
import type { WorkerReply, WorkerRequest } from "./loader.ts";
import type { TransformSpec } from "./transforms.ts";
import type { ImageDataset } from "./types.ts";

let dataset: ImageDataset | undefined;
let spec: TransformSpec = { steps: [] };
let seed = 0;
let initError: string | undefined;

function reply(msg: WorkerReply, transfer: Transferable[] = []): void {
  self.postMessage(msg, transfer);
}

self.onmessage = (ev: MessageEvent<WorkerRequest>) => {
  const msg = ev.data;
  if (msg.type === "init") {
    try {
      dataset = openFromDescription(msg.description);
      spec = msg.spec;
      seed = msg.seed;
      if (dataset.length !== msg.length) {
        throw new Error(
          `re-opened ${msg.description.root} has ${dataset.length} samples, the loader's dataset has ` +
            `${msg.length} (did the files change?)`,
        );
      }
    } catch (e) {
      initError = (e as Error).message;
    }
    return;
  }
  if (initError !== undefined || !dataset) {
    reply({ type: "error", id: msg.id, message: `worker could not open the dataset: ${initError}` });
    return;
  }
  try {
    const b = buildBatch(dataset, msg.indices, spec, seed, msg.epoch);
    reply(
      { type: "batch", id: msg.id, batch: b },
      [b.images.buffer, b.labels.buffer, b.indices.buffer] as ArrayBuffer[],
    );
  } catch (e) {
    reply({ type: "error", id: msg.id, message: (e as Error).message });
  }
};
