/**
 * Weights exported by the PyTorch reference's own code load here and give its results. The fixtures
 * in `tests/fixtures/reference/` were written by `tests/torch/export_reference_fixtures.py` from a
 * checkout of the reference (its `ContinuousThoughtMachine`, `LSTMBaseline` and `utils/losses.py`, run
 * with torch after a few AdamW steps): `<case>.weights.safetensors` is the reference's `state_dict()`
 * as it saves it (float32, int64 index buffers), `<case>.expected.safetensors` its input, targets,
 * predictions, certainties, loss, every parameter gradient of that loss and the per-tick tracking,
 * from a float64 copy. Each case loads the weights strictly into a model built from the recorded
 * constructor arguments and compares everything at float32 tolerance, for the fused and the op-by-op
 * recurrence. `REFERENCE_FIXTURE_DIR=DIR` runs the same checks on another export (such as the
 * exporter's `--large` cases with ResNet backbones and 2D positional embeddings, too large to commit).
 */
import { Ctm, type CtmOptions, type CtmOutput } from "../src/models/ctm.ts";
import { LstmBaseline, type LstmBaselineOptions, type LstmOutput } from "../src/models/lstm.ts";
import { fromArray } from "../src/ops/creation.ts";
import { hostToArray, loadSafetensors, readSafetensors } from "../src/io/safetensors.ts";
import { imageClassificationLoss, parityLoss } from "../src/train/losses.ts";
import { tidy } from "../src/tensor/scope.ts";
import type { Tensor } from "../src/tensor/tensor.ts";
import { gpuTest } from "./helpers.ts";
import { compareWithTorch } from "./torch_compare.ts";

/** The committed fixtures, or another export (`--large` adds image backbones) named by the env. */
const DIR =
  (Deno.env.get("REFERENCE_FIXTURE_DIR") ?? new URL("./fixtures/reference", import.meta.url).pathname) +
  "/";
const CASES = [...Deno.readDirSync(DIR)]
  .map((e) => e.name.match(/^(.+)\.expected\.safetensors$/)?.[1])
  .filter((n): n is string => n !== undefined)
  .sort();
if (CASES.length === 0) throw new Error(`${DIR}: no <case>.expected.safetensors files`);

/** The reference's constructor arguments (snake_case) as this toolkit's options (camelCase). */
function camel(args: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(
    Object.entries(args).map(([k, v]) => [k.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase()), v]),
  );
}

for (const name of CASES) {
  for (const fused of name.startsWith("ctm") ? [true, false] : [false]) {
    gpuTest(
      `reference export ${name}${name.startsWith("ctm") ? (fused ? ", fused" : ", op by op") : ""}`,
      async () => {
        const expected = await readSafetensors(`${DIR}${name}.expected.safetensors`);
        const want = (k: string) => {
          const t = expected.tensors.get(k);
          if (!t) throw new Error(`${name}: the fixture has no '${k}'`);
          return { shape: t.shape, data: hostToArray(k, t) };
        };
        const { model: kind, loss: lossKind, ...args } = JSON.parse(expected.metadata?.config ?? "{}");
        // The golden case's exporter compared the reference model with the reference's own golden values.
        if (name.includes("golden") && !/^reproduces/.test(expected.metadata?.golden ?? "")) {
          throw new Error(
            `${name}: not checked against the reference's golden values (${expected.metadata?.golden})`,
          );
        }
        const model = kind === "ctm"
          ? new Ctm(camel(args) as unknown as CtmOptions)
          : new LstmBaseline(camel(args) as unknown as LstmBaselineOptions);
        if (model instanceof Ctm) model.fused = fused;
        const weights = await loadSafetensors(`${DIR}${name}.weights.safetensors`);
        model.loadStateDict(weights, { strict: true });
        for (const t of weights.values()) t.dispose();

        const x = fromArray(Float32Array.from(want("x").data), want("x").shape);
        const targets = fromArray(Int32Array.from(want("targets").data), want("targets").shape);
        model.train();
        model.zeroGrad();
        const ours = new Map<string, ArrayLike<number>>();
        const kept = tidy(() => {
          const out = model.forward(x);
          const loss = lossKind === "classification"
            ? imageClassificationLoss(out.predictions, out.certainties, targets, true)
            : parityLoss(out.predictions, out.certainties, targets, lossKind === "parity");
          loss.loss.backward();
          return [out.predictions, out.certainties, loss.loss];
        });
        ours.set("predictions", await kept[0].toArray());
        ours.set("certainties", await kept[1].toArray());
        ours.set("loss", await kept[2].toArray());
        for (const [k, p] of model.namedParameters()) {
          ours.set(`grad.${k}`, p.grad ? await p.grad.toArray() : new Float32Array(p.size));
        }
        const tracked = tidy(() => model.forward(x, { track: true }).tracking) as
          | CtmOutput["tracking"]
          | LstmOutput["tracking"];
        if (!tracked) throw new Error(`${name}: no tracking returned`);
        const trackKeys: [string, Tensor | undefined][] = [
          ["track.post", tracked.postActivations],
          ["track.attention", tracked.attention],
          ...("syncOut" in tracked
            ? [["track.pre", tracked.preActivations], ["track.synch_out", tracked.syncOut], [
              "track.synch_action",
              tracked.syncAction,
            ]] as [string, Tensor][]
            : []),
        ];
        for (const [k, t] of trackKeys) ours.set(k, await t!.toArray());

        const { problems, errors } = compareWithTorch(ours, expected.tensors, {
          skip: ["x", "targets"],
          theirName: "the reference's export",
        });
        if (Deno.env.get("REFERENCE_FIXTURE_VERBOSE")) {
          console.log([...errors].map(([k, e]) => `${k} ${e.toExponential(1)}`).join(", "));
        }
        if (problems.length) throw new Error(`${name}:\n${problems.join("\n")}`);
        for (const t of [x, targets, ...kept, ...trackKeys.map(([, t]) => t!)]) t.dispose();
        model.dispose();
      },
    );
  }
}
