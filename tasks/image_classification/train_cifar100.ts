/** `deno task train:cifar100`: the image trainer (`train.ts`) with `--dataset cifar100` as the default. */
import { command } from "./train.ts";

await command("cifar100");
