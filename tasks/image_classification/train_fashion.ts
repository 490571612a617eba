/** `deno task train:fashion`: the image trainer (`train.ts`) with `--dataset fashion` as the default. */
import { command } from "./train.ts";

await command("fashion");
