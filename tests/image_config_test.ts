/**
 * The image trainers' command line: `--help` lists every flag with its default, each trainer's
 * default dataset, the YAML configs reproduce the reference's scripts and all validate, and bad
 * settings are refused with a message that names them.
 */
import assert, { deepStrictEqual as assertEquals } from "node:assert";
import { CliError, formatHelp, parseCli } from "../src/util/cli.ts";
import { join } from "../src/util/std.ts";
import {
  defaultImageConfig,
  imageCli,
  type ImageConfig,
  imageFlags,
  parseList,
  validateImageConfig,
} from "../tasks/image_classification/config.ts";

const load = (name: string, dataset: "cifar10" | "imagenet" | "fashion" = "cifar10"): ImageConfig => {
  const r = parseCli(imageCli(dataset), [
    "--config",
    join("tasks/image_classification/configs", `${name}.yaml`),
  ]);
  assert(!r.help);
  return r.values as ImageConfig;
};

Deno.test("image trainer: --help lists every flag with its default; each trainer has its dataset", () => {
  const help = formatHelp(imageCli("imagenet"));
  for (const [k, s] of Object.entries(imageFlags("imagenet"))) {
    assert(help.includes(`--${k}`), `--help mentions --${k}`);
    const shown = s.default === "" ? "none" : JSON.stringify(s.default);
    assert(help.includes(`(default: ${shown})`), `--help gives the default of --${k}`);
  }
  assert(help.includes('(default: "imagenet")'));
  assertEquals(defaultImageConfig("fashion").dataset, "fashion");
  // The reference's train.py defaults.
  const d = defaultImageConfig();
  assertEquals(
    [d.d_model, d.d_input, d.heads, d.iterations, d.backbone_type, d.synapse_depth, d.memory_hidden_dims],
    [512, 128, 4, 75, "resnet18-4", 4, 4],
  );
  assertEquals([d.batch_size, d.lr, d.training_iterations, d.warmup_steps, d.seed], [
    32,
    1e-3,
    100001,
    5000,
    412,
  ]);
});

Deno.test("image trainer: the YAML configs reproduce the reference's scripts", async () => {
  const names = [...Deno.readDirSync("tasks/image_classification/configs")].map((e) => e.name).sort();
  for (const n of names) assertEquals(validateImageConfig(load(n.replace(/\.yaml$/, ""))), [], n);
  const ctm = load("train_cifar10_ctm");
  assertEquals(
    [ctm.d_model, ctm.d_input, ctm.heads, ctm.iterations, ctm.memory_length, ctm.synapse_depth],
    [256, 64, 16, 50, 15, 5],
  );
  assertEquals([ctm.n_synch_out, ctm.n_synch_action, ctm.backbone_type, ctm.batch_size], [
    256,
    512,
    "resnet18-1",
    512,
  ]);
  const inet = load("train_imagenet", "imagenet");
  assertEquals(
    [
      inet.n_synch_out,
      inet.n_synch_action,
      inet.n_random_pairing_self,
      inet.synapse_depth,
      inet.backbone_type,
    ],
    [8196, 2048, 32, 8, "resnet152-4"],
  );
  assertEquals([inet.lr, inet.warmup_steps, inet.gradient_clipping, inet.dropout], [5e-4, 10000, 20, 0.2]);
  assertEquals(load("train_cifar10_lstm").warmup_steps, 2000);
  assertEquals(load("train_cifar10_ff").model, "ff");
  await Promise.resolve();
});

Deno.test("image trainer: the reference scripts' several-word flags parse as argparse takes them", () => {
  const r = parseCli(imageCli("cifar10"), [
    "--weight_decay_exclusion_list",
    "bias",
    "bn",
    "--milestones",
    "8000",
    "15000",
    "--lr",
    "1e-4",
  ]);
  assert(!r.help);
  assertEquals(
    [parseList(r.values.weight_decay_exclusion_list), parseList(r.values.milestones), r.values.lr],
    [["bias", "bn"], ["8000", "15000"], 1e-4],
  );
});

Deno.test("image trainer: bad settings are refused with clear messages", () => {
  const bad = (args: string[], what: string) => {
    assert.throws(
      () => parseCli(imageCli("cifar10"), args),
      (e) => e instanceof CliError && e.message.includes(what),
      `${args.join(" ")} → ${what}`,
    );
  };
  bad(["--backbone_type", "parity_backbone"], "does not take images");
  bad(["--backbone_type", "resnet20-2"], "unknown backbone_type");
  bad(["--d_input", "30", "--heads", "4"], "divisible by heads");
  bad(["--model", "lstm", "--memory_length", "3"], "CTM options");
  bad(["--model", "ff", "--backbone_type", "mnist"], "always builds a ResNet");
  bad(["--gradient_clipping", "0"], "global norm");
  bad(["--neuron_select_type", "first-last", "--d_model", "64"], "first-last needs d_model");
  bad(["--dataset", "svhn"], "dataset");
});
