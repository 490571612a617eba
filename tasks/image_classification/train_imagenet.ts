/** `deno task train:imagenet`: the image trainer (`train.ts`) with `--dataset imagenet` as the default. */
import { command } from "./train.ts";

await command("imagenet");
