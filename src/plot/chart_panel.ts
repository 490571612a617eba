/**
 * Internal drawing of one chart panel into a box of an SVG: domains, layout, grid, ticks, labels,
 * rules, bars, bands, lines, markers and legend. Used by stand-alone charts and small multiples.
 */
import { defaultBarWidth, ok, prepare } from "./chart_data.ts";
import { legendEntries, legendSvg, legendWidth } from "./chart_legend.ts";
import { extent, makeScale, tickList, widen } from "./chart_scale.ts";
import { f2, type Style } from "./chart_style.ts";
import type { ChartOptions, LegendPosition, SeriesType } from "./chart_types.ts";
import { escapeXml, textWidth } from "./render.ts";

let clipCounter = 0;

/** Draws one chart into the box (x0, y0, w, h) and returns the SVG fragment. */
export function drawPanel(
  opts: ChartOptions,
  defaultType: SeriesType,
  x0: number,
  y0: number,
  W: number,
  H: number,
  st: Style,
) {
  const prep = prepare(opts, defaultType);
  const rules = opts.rules ?? [];
  const xLog = !!opts.xLog, yLog = !!opts.yLog;
  const bars = prep.filter((p) => p.type === "bar");
  const barW = bars.length ? bars[0].s.barWidth ?? defaultBarWidth(prep) : 0;

  // ---- domains
  let xDom: [number, number];
  if (opts.xRange) xDom = opts.xRange;
  else {
    const xs = prep.flatMap((p) =>
      p.type === "bar" ? p.xs.flatMap((v) => [v - barW / 2, v + barW / 2]) : p.xs
    );
    xDom = extent(xs.concat(rules.flatMap((r) => (r.x === undefined ? [] : [r.x]))), xLog);
    const allLines = prep.every((p) => p.type === "line");
    xDom = allLines && xDom[0] !== xDom[1] ? xDom : widen(xDom, xLog, bars.length ? 0.02 : 0.04);
  }
  let yDom: [number, number];
  if (opts.yRange) yDom = opts.yRange;
  else {
    const ys = prep.flatMap((p) =>
      p.s.band ? [...p.ys, ...Array.from(p.s.band.lo), ...Array.from(p.s.band.hi)] : p.ys
    );
    if (bars.length && !yLog) ys.push(0);
    yDom = widen(extent(ys.concat(rules.flatMap((r) => (r.y === undefined ? [] : [r.y]))), yLog), yLog, 0.04);
    if (bars.length && !yLog) {
      const [lo, hi] = extent(bars.flatMap((p) => p.ys), false);
      if (lo >= 0) yDom[0] = 0;
      if (hi <= 0) yDom[1] = 0;
    }
  }

  // ---- layout
  const hasLegend = legendEntries(prep, rules);
  const legendPos: LegendPosition = hasLegend.length === 0 ? "none" : opts.legend ?? "best";
  const top = y0 + st.pad + (opts.title ? st.title * 1.5 : 0);
  const bottom = y0 + H - st.pad - st.tick * 1.2 - 5 - (opts.xLabel ? st.label * 1.5 : 0);
  const yCount = Math.max(2, Math.round((bottom - top) / st.yTickSpacing));
  const yProbe = makeScale(yLog, yDom, [bottom, top]);
  const yTicks = tickList(yProbe, yLog, opts.yTicks, yCount);
  const yTickW = Math.max(0, ...yTicks.map((t) => textWidth(t.label, st.tick)));
  const left = x0 + st.pad + (opts.yLabel ? st.label * 1.5 : 0) + yTickW + 6;
  const legendOut = legendPos === "right" ? legendWidth(hasLegend, st) + 8 : 0;
  const right = x0 + W - st.pad - legendOut - st.tick; // room for half of the last x tick label
  if (right - left < 10 || bottom - top < 10) throw new Error(`chart ${W}x${H} is too small for its labels`);
  const xs = makeScale(xLog, xDom, [left, right]);
  const ys = yProbe;
  const xCount = Math.max(2, Math.round((right - left) / st.xTickSpacing));
  const xTicks = tickList(xs, xLog, opts.xTicks, xCount);

  let s = "";

  // ---- grid, ticks, labels
  const inX = (v: number) => xs(v) >= left - 0.5 && xs(v) <= right + 0.5;
  const inY = (v: number) => ys(v) >= top - 0.5 && ys(v) <= bottom + 0.5;
  if (opts.grid ?? true) {
    for (const t of xTicks.filter((t) => inX(t.v))) {
      s += `<line x1="${f2(xs(t.v))}" y1="${f2(top)}" x2="${f2(xs(t.v))}" y2="${
        f2(bottom)
      }" stroke="#e6e6e6"/>`;
    }
    for (const t of yTicks.filter((t) => inY(t.v))) {
      s += `<line x1="${f2(left)}" y1="${f2(ys(t.v))}" x2="${f2(right)}" y2="${
        f2(ys(t.v))
      }" stroke="#e6e6e6"/>`;
    }
  }
  for (const t of xTicks.filter((t) => inX(t.v))) {
    const x = f2(xs(t.v));
    s += `<line x1="${x}" y1="${f2(bottom)}" x2="${x}" y2="${f2(bottom + 4)}" stroke="#444"/>`;
    s +=
      `<text x="${x}" y="${
        f2(bottom + 5 + st.tick)
      }" font-size="${st.tick}" text-anchor="middle" fill="#333">` +
      `${escapeXml(t.label)}</text>`;
  }
  for (const t of yTicks.filter((t) => inY(t.v))) {
    const y = f2(ys(t.v));
    s += `<line x1="${f2(left - 4)}" y1="${y}" x2="${f2(left)}" y2="${y}" stroke="#444"/>`;
    s +=
      `<text x="${f2(left - 6)}" y="${
        f2(ys(t.v) + st.tick * 0.35)
      }" font-size="${st.tick}" text-anchor="end" ` +
      `fill="#333">${escapeXml(t.label)}</text>`;
  }
  if (opts.title) {
    s += `<text x="${f2((left + right) / 2)}" y="${f2(y0 + st.pad + st.title)}" font-size="${st.title}" ` +
      `font-weight="bold" text-anchor="middle">${escapeXml(opts.title)}</text>`;
  }
  if (opts.xLabel) {
    s +=
      `<text x="${f2((left + right) / 2)}" y="${
        f2(y0 + H - st.pad - st.label * 0.25)
      }" font-size="${st.label}" ` +
      `text-anchor="middle">${escapeXml(opts.xLabel)}</text>`;
  }
  if (opts.yLabel) {
    const cx = x0 + st.pad + st.label, cy = (top + bottom) / 2;
    s +=
      `<text transform="translate(${f2(cx)},${
        f2(cy)
      }) rotate(-90)" font-size="${st.label}" text-anchor="middle">` +
      `${escapeXml(opts.yLabel)}</text>`;
  }

  // ---- data (clipped to the plot only when something lies outside: a clip path is slow in resvg)
  let data = "";
  const pts: [number, number][] = []; // pixel positions, for legend placement and the clip test
  const px = (v: number) => xs(v), py = (v: number) => ys(v);
  for (const r of rules) {
    const dash = r.dashed ?? true ? ` stroke-dasharray="6 4"` : "";
    const c = r.color ?? "#777";
    if (r.y !== undefined && ok(r.y, yLog)) {
      data +=
        `<line x1="${f2(left)}" y1="${f2(py(r.y))}" x2="${f2(right)}" y2="${f2(py(r.y))}" stroke="${c}" ` +
        `stroke-width="1.3"${dash}/>`;
    }
    if (r.x !== undefined && ok(r.x, xLog)) {
      data +=
        `<line x1="${f2(px(r.x))}" y1="${f2(top)}" x2="${f2(px(r.x))}" y2="${f2(bottom)}" stroke="${c}" ` +
        `stroke-width="1.3"${dash}/>`;
    }
  }
  const yBase = yLog ? bottom : Math.min(bottom, Math.max(top, py(0)));
  bars.forEach((p, bi) => {
    const w = p.s.barWidth ?? barW;
    const each = bars.length > 1 && p.s.barWidth === undefined ? w / bars.length : w;
    const off = bars.length > 1 && p.s.barWidth === undefined ? -w / 2 + each * (bi + 0.5) : 0;
    const op = p.s.opacity ?? 0.85;
    data += `<g fill="${p.color}" fill-opacity="${op}">`;
    p.xs.forEach((x, j) => {
      const y = p.ys[j];
      if (!ok(x, xLog) || !ok(y, yLog)) return;
      const xa = px(x + off - each / 2), xb = px(x + off + each / 2), yv = py(y);
      data +=
        `<rect x="${f2(Math.min(xa, xb))}" y="${f2(Math.min(yv, yBase))}" width="${f2(Math.abs(xb - xa))}" ` +
        `height="${f2(Math.abs(yBase - yv))}"/>`;
      for (let k = 0; k <= 4; k++) {
        pts.push([xa + ((xb - xa) * k) / 4, yv], [xa + ((xb - xa) * k) / 4, (yv + yBase) / 2]);
      }
    });
    data += `</g>`;
  });
  for (const p of prep) {
    if (p.type === "bar") continue;
    const valid = (j: number) => ok(p.xs[j], xLog) && ok(p.ys[j], yLog);
    const op = p.s.opacity ?? 1;
    if (p.s.band && p.type === "line") {
      const { lo, hi } = p.s.band;
      // One polygon per run of valid points.
      let run: number[] = [];
      const flush = () => {
        if (run.length > 1) {
          const fwd = run.map((j) => `${f2(px(p.xs[j]))},${f2(py(Number(hi[j])))}`);
          const back = run.slice().reverse().map((j) => `${f2(px(p.xs[j]))},${f2(py(Number(lo[j])))}`);
          data += `<polygon points="${fwd.concat(back).join(" ")}" fill="${p.color}" fill-opacity="${
            0.2 * op
          }"/>`;
          for (const j of run) pts.push([px(p.xs[j]), py(Number(hi[j]))], [px(p.xs[j]), py(Number(lo[j]))]);
        }
        run = [];
      };
      for (let j = 0; j < p.xs.length; j++) {
        if (valid(j) && ok(Number(lo[j]), yLog) && ok(Number(hi[j]), yLog)) run.push(j);
        else flush();
      }
      flush();
    }
    if (p.type === "line") {
      let d = "", pen = false, prev: [number, number] | null = null;
      for (let j = 0; j < p.xs.length; j++) {
        if (!valid(j)) {
          pen = false;
          prev = null;
          continue;
        }
        const X = px(p.xs[j]), Y = py(p.ys[j]);
        d += `${pen ? "L" : "M"}${f2(X)} ${f2(Y)}`;
        pen = true;
        if (prev) {
          const steps = Math.min(50, Math.ceil(Math.hypot(X - prev[0], Y - prev[1]) / 8));
          for (let k = 1; k < steps; k++) {
            pts.push([prev[0] + ((X - prev[0]) * k) / steps, prev[1] + ((Y - prev[1]) * k) / steps]);
          }
        }
        pts.push([X, Y]);
        prev = [X, Y];
      }
      const lw = p.s.lineWidth ?? 1.8;
      data += `<path d="${d}" fill="none" stroke="${p.color}" stroke-width="${lw}" stroke-linejoin="round" ` +
        `stroke-linecap="round"${p.s.dashed ? ` stroke-dasharray="${f2(lw * 3.5)} ${f2(lw * 2)}"` : ""}` +
        `${op < 1 ? ` stroke-opacity="${op}"` : ""}/>`;
    }
    if (p.type === "scatter" || p.s.markers) {
      const r = p.s.markerSize ?? 3;
      data += `<g fill="${p.color}"${op < 1 ? ` fill-opacity="${op}"` : ""}>`;
      for (let j = 0; j < p.xs.length; j++) {
        if (!valid(j)) continue;
        const X = px(p.xs[j]), Y = py(p.ys[j]);
        data += `<circle cx="${f2(X)}" cy="${f2(Y)}" r="${r}"/>`;
        pts.push([X, Y]);
      }
      data += `</g>`;
    }
  }
  const outside = pts.some(([x, y]) => x < left - 1 || x > right + 1 || y < top - 1 || y > bottom + 1);
  if (outside) {
    const clip = `clip${++clipCounter}`;
    s += `<defs><clipPath id="${clip}"><rect x="${f2(left)}" y="${f2(top)}" width="${f2(right - left)}" ` +
      `height="${f2(bottom - top)}"/></clipPath></defs><g clip-path="url(#${clip})">${data}</g>`;
  } else s += data;
  s +=
    `<rect x="${f2(left)}" y="${f2(top)}" width="${f2(right - left)}" height="${
      f2(bottom - top)
    }" fill="none" ` +
    `stroke="#444" stroke-width="1"/>`;

  // ---- legend
  if (legendPos !== "none") {
    const lw = legendWidth(hasLegend, st), lh = hasLegend.length * st.legend * 1.45 + 6, m = 6;
    const corners: Record<string, [number, number]> = {
      "top-right": [right - lw - m, top + m],
      "top-left": [left + m, top + m],
      "bottom-right": [right - lw - m, bottom - lh - m],
      "bottom-left": [left + m, bottom - lh - m],
    };
    let at: [number, number];
    if (legendPos === "right") at = [right + st.tick + 6, top];
    else if (legendPos === "best") {
      let best = Infinity;
      at = corners["top-right"];
      for (const c of Object.values(corners)) {
        const n = pts.filter(([x, y]) =>
          x >= c[0] - 2 && x <= c[0] + lw + 2 && y >= c[1] - 2 && y <= c[1] + lh + 2
        ).length;
        if (n < best) {
          best = n;
          at = c;
        }
      }
    } else at = corners[legendPos];
    s += legendSvg(hasLegend, at[0], at[1], st);
  }
  return s;
}
