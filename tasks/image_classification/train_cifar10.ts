/** `deno task train:cifar10`: the image trainer (`train.ts`) with `--dataset cifar10` as the default. */
import { command } from "./train.ts";

await command("cifar10");
