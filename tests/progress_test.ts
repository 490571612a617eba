/** The progress bar: plain lines for logs, in-place redraws for terminals, rate and ETA. */
import { formatDuration, formatMetric, Progress } from "../src/util/progress.ts";

function assert(cond: unknown, msg = "assertion failed"): asserts cond {
  if (!cond) throw new Error(msg);
}

function assertEquals(a: unknown, b: unknown): void {
  const sa = JSON.stringify(a), sb = JSON.stringify(b);
  if (sa !== sb) throw new Error(`expected ${sb}, got ${sa}`);
}

/** A bar writing into an array, with a fake clock advanced by hand. */
function fake(opts: { total: number; tty: boolean; every?: number; columns?: number; label?: string }) {
  const out: string[] = [];
  let t = 0;
  const bar = new Progress({ ...opts, write: (s) => out.push(s), now: () => t });
  return { bar, out, advance: (ms: number) => void (t += ms) };
}

Deno.test("progress: durations and metrics are formatted for people", () => {
  assertEquals(formatDuration(9.4), "9s");
  assertEquals(formatDuration(75), "1m15s");
  assertEquals(formatDuration(3725), "1h02m");
  assertEquals(formatDuration(Infinity), "?");
  assertEquals(formatMetric("loss", 0.123456), "loss 0.1235");
  assertEquals(formatMetric("acc", 0.975), "acc 97.5%");
  assertEquals(formatMetric("test_acc", 1), "test_acc 100.0%");
  assertEquals(formatMetric("lr", 0.003), "lr 0.003");
  assertEquals(formatMetric("lr", 1e-5), "lr 1.00e-5");
});

Deno.test("progress: without a terminal, one line every N steps with loss, acc, it/s and ETA", () => {
  const { bar, out, advance } = fake({ total: 100, tty: false, every: 25, label: "train" });
  for (let s = 1; s <= 100; s++) {
    advance(10); // 100 steps per second
    bar.update(s, s % 10 === 0 ? { loss: 1 / s, acc: s / 100 } : undefined);
  }
  bar.done();
  assertEquals(out.length, 5);
  assert(out.every((l) => l.endsWith("\n") && !l.includes("\r")), JSON.stringify(out));
  assertEquals(out[0], "train step  25/100 ( 25%) | loss 0.0500 | acc 20.0% | 100 it/s | ETA 1s\n");
  assert(out[1].startsWith("train step  50/100 ( 50%) | loss 0.0200 | acc 50.0%"), out[1]);
  assert(out[3].includes("ETA 0s"), out[3]);
  assertEquals(out[4], "train done: 100/100 steps in 1s (100 it/s) | loss 0.0100 | acc 100.0%\n");
});

Deno.test("progress: the default interval prints about 20 lines per run", () => {
  const { bar, out, advance } = fake({ total: 1000, tty: false });
  for (let s = 1; s <= 1000; s++) {
    advance(1);
    bar.update(s);
  }
  assertEquals(out.length, 20);
});

Deno.test("progress: on a terminal it redraws in place, throttled, and fits the width", () => {
  const { bar, out, advance } = fake({ total: 200, tty: true, columns: 80 });
  for (let s = 1; s <= 200; s++) {
    advance(5); // a redraw every 20 steps at 100 ms
    bar.update(s, { loss: 0.5, acc: 0.9 });
  }
  bar.done();
  assert(out.length >= 9 && out.length <= 12, `${out.length} writes`);
  const draws = out.slice(0, -1);
  assert(draws.every((l) => l.startsWith("\r\x1b[K") && !l.includes("\n")), JSON.stringify(draws));
  const last = draws[draws.length - 1].slice(4);
  assert(last.includes("█") && last.includes("loss 0.5000") && last.includes("acc 90.0%"), last);
  assert(last.includes("it/s") && last.includes("ETA"), last);
  assert([...last].length <= 79, `${[...last].length} columns: ${last}`);
  assert(out[out.length - 1].startsWith("\r\x1b[Kdone: 200/200") && out[out.length - 1].endsWith("\n"));
});

Deno.test("progress: a narrow terminal drops the bar but keeps the numbers", () => {
  const { bar, out, advance } = fake({ total: 10, tty: true, columns: 40 });
  advance(1000);
  bar.update(5, { loss: 2 });
  const line = out[0].slice(4);
  assert(!line.includes("█") && line.includes("5/10"), line);
  assert(line.length <= 39, line);
});

Deno.test("progress: rate follows recent steps and the ETA uses it", () => {
  const { bar, advance } = fake({ total: 2000, tty: false, every: 10000 });
  for (let s = 1; s <= 100; s++) {
    advance(100); // 10 it/s for 10 s
    bar.update(s);
  }
  for (let s = 101; s <= 1000; s++) {
    advance(10); // then 100 it/s for 9 s
    bar.update(s);
  }
  assert(bar.rate > 90 && bar.rate < 110, `rate ${bar.rate}`); // the whole-run average would be 1000 / 19 s
  assert(bar.eta > 1000 / 110 && bar.eta < 1000 / 90, `eta ${bar.eta}`);
  assertEquals(bar.step, 1000);
});

Deno.test("progress: late metrics and log lines", () => {
  const { bar, out, advance } = fake({ total: 10, tty: false, every: 5 });
  advance(10);
  bar.update(3);
  bar.setMetrics({ loss: 0.25 });
  bar.log("evaluating");
  advance(10);
  bar.update(5);
  assertEquals(out[0], "evaluating\n");
  assert(out[1].includes("loss 0.2500"), out[1]);
  assertEquals(bar.metrics, { loss: 0.25 });
});
