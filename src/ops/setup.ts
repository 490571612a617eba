/** Wires the ops that autograd itself needs (gradient accumulation, the scalar seed). */
import { setAutogradOps } from "../tensor/autograd.ts";
import { add } from "./arith.ts";
import { onesLike } from "./creation.ts";

setAutogradOps(add, onesLike);
