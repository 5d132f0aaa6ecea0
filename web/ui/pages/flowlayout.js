// The geometry of the IVR designer's graph, as pure functions (no DOM; unit-tested
// with plain Node: tests/browser/flowlayout.test.mjs):
//
// - `layeredLayout`: an automatic layered (Sugiyama-style) layout, top to bottom: loops
//   are found by a depth-first search from the start node and reversed, ranks are the
//   longest path from the entry, long edges get a placeholder in each rank they pass,
//   crossings are reduced by barycenter sweeps (and swaps of neighbours), and x
//   positions pull each node towards its neighbours without overlap (weighted
//   isotonic regression per rank), so that straight chains stay straight.
// - `placeMissing`: keeps the positions the flow stores (`node.ui = {x, y}`, moved by
//   the user) and places only nodes without one.
// - `routeEdges`: each connection as an SVG path between node ports, through the free
//   corridors between the rows of nodes it crosses; loops back (edges to a node above,
//   to itself, or found closing a cycle) marked `back`; parallel connections merged
//   with their labels joined; dangling exits (a target that does not exist) as stubs.
// - `placeLabels`: each edge label along its own path, on the first spot that overlaps
//   no node and no other label (and as few other edges as possible).
// - `fitView`: the viewBox that shows everything in a viewport, never enlarged.

import { exits } from './flowgraph.js';

export const NODE_W = 170;
export const NODE_H = 58;
/** Vertical gaps between a rank of nodes and the rank of labels below it (small: the
 * labels are near the node their edges leave), and between a rank of labels and the
 * rank of nodes below (where the edges turn to their targets). */
const GAP_ABOVE_LABELS = 8;
const GAP_BELOW_LABELS = 32;
/** Horizontal gap between two nodes of one rank, and next to an edge passing by. */
const NODE_SEP = 48;
const DUMMY_SEP = 14;
/** The width a long edge occupies in a rank it passes through. */
const DUMMY_W = 16;
const MARGIN = 30;
/** Edge label metrics (11 px text; a generous width per character). */
export const LABEL_H = 15;
const LABEL_CHAR_W = 6.8;
const LABEL_PAD = 8;

/** The estimated box width of an edge label's text (the designer measures the text in
 * the page instead: every function taking `measure` uses it for label widths). */
export function labelWidth(text) {
  return Math.ceil(String(text).length * LABEL_CHAR_W + LABEL_PAD);
}

// -------------------------------------------------------------------------------------
// The graph

/**
 * The connections of a flow, parallel ones merged: [{key, from, to, labels, label,
 * dangling}] in the order of the nodes and their exits. `label` is the exits' names
 * joined ('' for a node's only exit when it is `next`); `to` of a dangling edge is the
 * missing target's id.
 */
export function graphEdges(flow) {
  const nodes = flow.nodes || {};
  const out = [];
  const byKey = new Map();
  for (const [id, n] of Object.entries(nodes)) {
    for (const e of exits(n)) {
      if (!e.target) continue;
      const dangling = !(e.target in nodes);
      const key = `${id}\u0000${e.target}`;
      let edge = byKey.get(key);
      if (!edge) {
        edge = { key, from: id, to: e.target, labels: [], dangling };
        byKey.set(key, edge);
        out.push(edge);
      }
      edge.labels.push(e.label);
    }
  }
  // A node's only connection, its `next`, goes without saying.
  const count = new Map();
  for (const e of out) count.set(e.from, (count.get(e.from) || 0) + 1);
  for (const e of out) {
    if (e.dangling) e.label = `${e.labels.join(', ')} → ${e.to}?`;
    else e.label = count.get(e.from) === 1 && e.labels.length === 1 && e.labels[0] === 'next' ? '' : e.labels.join(', ');
  }
  return out;
}

/** Keys of the edges that close a loop: found by a depth-first search from the start
 * (then from every node not reached yet), an edge back to a node on the search path. */
export function backEdges(flow, edges = graphEdges(flow)) {
  const ids = Object.keys(flow.nodes || {});
  const outs = new Map(ids.map((id) => [id, []]));
  for (const e of edges) if (!e.dangling) outs.get(e.from).push(e);
  const state = new Map(); // 1: on the path, 2: done
  const back = new Set();
  const roots = flow.start in (flow.nodes || {}) ? [flow.start, ...ids] : ids;
  for (const root of roots) {
    if (state.has(root)) continue;
    // Iterative DFS: [node, index of the next exit].
    const stack = [[root, 0]];
    state.set(root, 1);
    while (stack.length) {
      const top = stack[stack.length - 1];
      const list = outs.get(top[0]);
      if (top[1] >= list.length) { state.set(top[0], 2); stack.pop(); continue; }
      const e = list[top[1]++];
      const s = state.get(e.to);
      if (s === 1) back.add(e.key);
      else if (!s) { state.set(e.to, 1); stack.push([e.to, 0]); }
    }
  }
  return back;
}

// -------------------------------------------------------------------------------------
// Layered layout

/** Crossings between two adjacent ranks' edges ([u, v] pairs, positions given): the
 * inversions of the lower ends once sorted by the upper ends (merge sort count). */
function crossingsBetween(pairs, pos) {
  const seq = pairs.map(([u, v]) => [pos.get(u), pos.get(v)]).sort((a, b) => a[0] - b[0] || a[1] - b[1]).map((p) => p[1]);
  const count = (a) => {
    if (a.length < 2) return [a, 0];
    const m = a.length >> 1;
    const [l, cl] = count(a.slice(0, m));
    const [r, cr] = count(a.slice(m));
    const out = [];
    let c = cl + cr; let i = 0; let j = 0;
    while (i < l.length && j < r.length) {
      if (r[j] < l[i]) { out.push(r[j++]); c += l.length - i; } else out.push(l[i++]);
    }
    return [out.concat(l.slice(i), r.slice(j)), c];
  };
  return count(seq)[1];
}

/** Weighted isotonic regression (pool adjacent violators): non-decreasing values closest
 * to `want` in the weighted least-squares sense. */
function isotonic(want, weight) {
  const blocks = []; // {sum, w, n}
  for (let i = 0; i < want.length; i++) {
    blocks.push({ sum: want[i] * weight[i], w: weight[i], n: 1 });
    while (blocks.length > 1) {
      const b = blocks[blocks.length - 1];
      const a = blocks[blocks.length - 2];
      if (a.sum / a.w <= b.sum / b.w) break;
      blocks.pop();
      a.sum += b.sum; a.w += b.w; a.n += b.n;
    }
  }
  const out = [];
  for (const b of blocks) for (let k = 0; k < b.n; k++) out.push(b.sum / b.w);
  return out;
}

/** The y of every rank's top: node ranks (even) are NODE_H high, label ranks (odd)
 * LABEL_H. */
function rankTops(maxRank) {
  const tops = [MARGIN];
  for (let r = 1; r <= maxRank + 1; r++) tops.push(tops[r - 1] + (r % 2 ? NODE_H + GAP_ABOVE_LABELS : LABEL_H + GAP_BELOW_LABELS));
  return tops;
}

/**
 * A layered layout of the whole flow: `{positions: {id: {x, y}}, ranks: [[id]],
 * crossings, routes}`. Nodes sit on the even ranks; every connection passes a label
 * rank right after its source, where its label gets a place of its own (so labels never
 * overlap nodes or one another), and a placeholder in every further rank it crosses.
 * `positions` are top-left corners; `ranks` the nodes of each node rank;
 * `crossings` the edge crossings that remain; `routes`: edge key -> {via: [points the
 * path goes through, from the source's end], label: {x, y, w, h} | null}.
 */
export function layeredLayout(flow, measure = labelWidth) {
  // The layout depends on the graph and the labels' widths only: the designer asks for it
  // on every drawing, the last few are remembered.
  const all = graphEdges(flow);
  const key = JSON.stringify([flow.start, Object.keys(flow.nodes || {}), all.map((e) => [e.from, e.to, e.label, e.label ? measure(e.label) : 0])]);
  const hit = memo.get(key);
  if (hit) return hit;
  const result = computeLayout(flow, all, measure);
  memo.set(key, result);
  if (memo.size > 8) memo.delete(memo.keys().next().value);
  return result;
}

const memo = new Map();

function computeLayout(flow, all, measure) {
  const nodes = flow.nodes || {};
  const ids = Object.keys(nodes);
  const edges = all.filter((e) => !e.dangling && e.from !== e.to);
  const back = backEdges(flow, edges);
  // The acyclic graph: loops reversed.
  const dag = edges.map((e) => (back.has(e.key) ? { e, u: e.to, v: e.from, rev: true } : { e, u: e.from, v: e.to, rev: false }));

  // Ranks: the longest path from a source (the start is one: every edge into it closes
  // a loop), in topological order; every edge two ranks long at least.
  const indeg = new Map(ids.map((id) => [id, 0]));
  const succ = new Map(ids.map((id) => [id, []]));
  for (const { u, v } of dag) { succ.get(u).push(v); indeg.set(v, indeg.get(v) + 1); }
  const rank = new Map();
  const queue = ids.filter((id) => indeg.get(id) === 0);
  if (flow.start in nodes && queue.includes(flow.start)) { queue.splice(queue.indexOf(flow.start), 1); queue.unshift(flow.start); }
  for (const id of queue) rank.set(id, 0);
  for (let qi = 0; qi < queue.length; qi++) {
    const u = queue[qi];
    for (const v of succ.get(u)) {
      rank.set(v, Math.max(rank.get(v) ?? 0, rank.get(u) + 2));
      indeg.set(v, indeg.get(v) - 1);
      if (indeg.get(v) === 0) queue.push(v);
    }
  }
  for (const id of ids) if (!rank.has(id)) rank.set(id, 0); // (cannot happen: the graph is acyclic)

  // Items: nodes and placeholders, with their extents left and right of the line (or
  // centre) they are placed by. A node with a loop on itself is wider on the right.
  const items = new Map();
  for (const id of ids) items.set(id, { id, rank: rank.get(id), dummy: false, left: NODE_W / 2, right: NODE_W / 2 });
  for (const e of all) {
    if (e.from === e.to && !e.dangling) items.get(e.from).right += 40 + (e.label ? measure(e.label) + 6 : 0);
  }
  const up = new Map(ids.map((id) => [id, []]));
  const down = new Map(ids.map((id) => [id, []]));
  const link = (u, v) => { down.get(u).push(v); up.get(v).push(u); };
  const chains = new Map(); // edge key -> [placeholder ids, from the edge's source]
  const labelOf = new Map(); // placeholder id -> label text
  const dummy = (id, r, label) => {
    const lw = label ? measure(label) : 0;
    items.set(id, { id, rank: r, dummy: true, left: label ? 4 : DUMMY_W / 2, right: label ? lw + 9 : DUMMY_W / 2 });
    up.set(id, []); down.set(id, []);
    if (label) labelOf.set(id, label);
  };
  dag.forEach(({ e, u, v, rev }, i) => {
    const ru = rank.get(u); const rv = rank.get(v);
    const chain = [];
    let prev = u;
    for (let r = ru + 1; r < rv; r++) {
      const d = `\u0000${i}:${r}`;
      // The label right after the edge's own source: below it, or above it for a loop.
      const labelled = e.label && (rev ? r === rv - 1 : r === ru + 1);
      dummy(d, r, labelled ? e.label : null);
      link(prev, d);
      chain.push(d);
      prev = d;
    }
    link(prev, v);
    chains.set(e.key, rev ? chain.reverse() : chain);
  });
  // A dangling exit: a stub down into the label rank below its node.
  all.filter((e) => e.dangling).forEach((e, i) => {
    const d = `\u0001${i}`;
    dummy(d, rank.get(e.from) + 1, e.label);
    link(e.from, d);
    chains.set(e.key, [d]);
  });
  const maxRank = Math.max(0, ...[...items.values()].map((it) => it.rank));

  // Initial order: depth-first from the start, following exits in order.
  const layers = Array.from({ length: maxRank + 1 }, () => []);
  const seen = new Set();
  const visit = (root) => {
    const stack = [root];
    while (stack.length) {
      const id = stack.pop();
      if (seen.has(id)) continue;
      seen.add(id);
      layers[items.get(id).rank].push(id);
      const next = down.get(id);
      for (let k = next.length - 1; k >= 0; k--) if (!seen.has(next[k])) stack.push(next[k]);
    }
  };
  if (flow.start in nodes) visit(flow.start);
  for (const id of ids) visit(id);

  const pos = new Map();
  const index = () => { for (const l of layers) l.forEach((id, i) => pos.set(id, i)); };
  const pairsBelow = (r) => layers[r].flatMap((u) => down.get(u).map((v) => [u, v]));
  const total = () => { let c = 0; for (let r = 0; r < maxRank; r++) c += crossingsBetween(pairsBelow(r), pos); return c; };
  index();
  let best = layers.map((l) => [...l]);
  let bestC = total();
  const bary = (id, nb) => {
    const list = nb.get(id);
    if (!list.length) return pos.get(id);
    return list.reduce((s, v) => s + pos.get(v), 0) / list.length;
  };
  // Swaps of neighbours in rank `r` while they remove crossings with both adjacent
  // ranks: the crossings of u's edges with v's, u left of v.
  const cross = (u, v) => {
    let c = 0;
    for (const nb of [up, down]) for (const a of nb.get(u)) for (const b of nb.get(v)) if (pos.get(a) > pos.get(b)) c++;
    return c;
  };
  const transpose = (r) => {
    let improved = true;
    let guard = 0;
    while (improved && guard++ < 6) {
      improved = false;
      const l = layers[r];
      for (let i = 0; i + 1 < l.length; i++) {
        if (cross(l[i + 1], l[i]) < cross(l[i], l[i + 1])) {
          [l[i], l[i + 1]] = [l[i + 1], l[i]];
          pos.set(l[i], i); pos.set(l[i + 1], i + 1);
          improved = true;
        }
      }
    }
  };
  // Sweeps until four in a row bring nothing (fewer for big graphs: this runs as the
  // designer draws).
  const sweeps = items.size > 3000 ? 4 : items.size > 800 ? 8 : 16;
  for (let iter = 0, stale = 0; iter < sweeps && bestC > 0 && stale < 4; iter++) {
    const downward = iter % 2 === 0;
    const order = downward ? [...Array(maxRank).keys()].map((k) => k + 1) : [...Array(maxRank).keys()].map((k) => maxRank - 1 - k);
    for (const r of order) {
      const nb = downward ? up : down;
      const keyed = layers[r].map((id, i) => ({ id, k: bary(id, nb), i }));
      keyed.sort((a, b) => a.k - b.k || a.i - b.i);
      layers[r] = keyed.map((x) => x.id);
      layers[r].forEach((id, i) => pos.set(id, i));
    }
    for (let r = 0; r <= maxRank; r++) transpose(r);
    const c = total();
    if (c < bestC) { bestC = c; best = layers.map((l) => [...l]); stale = 0; } else stale++;
  }
  for (let r = 0; r <= maxRank; r++) layers[r] = best[r];
  index();

  // x: each item's line pulled towards its neighbours' lines (placeholders weigh more:
  // long edges stay straight), the order and the gaps kept (isotonic regression per
  // rank), sweeping down and up, both sides on the last sweeps.
  const cx = new Map();
  const gap = (a, b) => {
    const p = items.get(a); const q = items.get(b);
    return p.right + q.left + (p.dummy || q.dummy ? DUMMY_SEP : NODE_SEP);
  };
  for (const l of layers) {
    let x = 0;
    l.forEach((id, i) => { if (i) x += gap(l[i - 1], id); cx.set(id, x); });
  }
  const place = (l, want, weight) => {
    const off = [0];
    for (let i = 1; i < l.length; i++) off.push(off[i - 1] + gap(l[i - 1], l[i]));
    const fit = isotonic(want.map((w, i) => w - off[i]), weight);
    l.forEach((id, i) => cx.set(id, fit[i] + off[i]));
  };
  const passes = items.size > 3000 ? 8 : 20;
  for (let iter = 0; iter < passes; iter++) {
    const downward = iter % 2 === 0;
    const order = downward ? [...Array(maxRank + 1).keys()] : [...Array(maxRank + 1).keys()].reverse();
    for (const r of order) {
      const l = layers[r];
      if (!l.length) continue;
      const want = l.map((id) => {
        const nb = iter >= passes - 6 ? [...up.get(id), ...down.get(id)] : (downward ? up : down).get(id);
        return nb.length ? nb.reduce((s, v) => s + cx.get(v), 0) / nb.length : cx.get(id);
      });
      place(l, want, l.map((id) => (items.get(id).dummy ? 6 : 1)));
    }
  }
  let minLeft = Infinity;
  for (const [id, x] of cx) minLeft = Math.min(minLeft, x - items.get(id).left);
  const X = (id) => Math.round(cx.get(id) - minLeft + MARGIN);
  const tops = rankTops(maxRank);
  const positions = {};
  for (const id of ids) positions[id] = { x: X(id) - NODE_W / 2, y: tops[rank.get(id)] };
  const reversedKeys = new Set(dag.filter((x) => x.rev).map((x) => x.e.key));
  const routes = new Map();
  for (const [key, chain] of chains) {
    const rev = reversedKeys.has(key);
    const via = [];
    let label = null;
    for (const d of chain) {
      const r = items.get(d).rank;
      const x = X(d);
      const top = tops[r]; const bottom = top + (r % 2 ? LABEL_H : NODE_H);
      // Through the rank, top to bottom (bottom to top for a loop back).
      via.push(...(rev ? [{ x, y: bottom }, { x, y: top }] : [{ x, y: top }, { x, y: bottom }]));
      if (labelOf.has(d)) label = { x: x + 5, y: top, w: measure(labelOf.get(d)), h: LABEL_H };
    }
    routes.set(key, { via, label });
  }
  return {
    positions,
    ranks: layers.filter((_, r) => r % 2 === 0).map((l) => l.filter((id) => !items.get(id).dummy)),
    crossings: bestC,
    routes,
  };
}

const hasPos = (n) => n.ui && Number.isFinite(n.ui.x) && Number.isFinite(n.ui.y);

/**
 * Positions for the nodes that have none (`node.ui`), changing the flow: all of them
 * from the layered layout when no node has one (or `all`), else the layout's spot moved
 * down until it overlaps no placed node. Returns the ids placed.
 */
export function placeMissing(flow, all = false, measure = labelWidth) {
  const nodes = flow.nodes || {};
  const missing = Object.keys(nodes).filter((id) => all || !hasPos(nodes[id]));
  if (!missing.length) return [];
  const { positions } = layeredLayout(flow, measure);
  const placed = Object.keys(nodes).filter((id) => !missing.includes(id)).map((id) => nodes[id].ui);
  const clash = (p) => placed.some((q) => Math.abs(q.x - p.x) < NODE_W + 20 && Math.abs(q.y - p.y) < NODE_H + 20);
  for (const id of missing) {
    const p = { ...positions[id] };
    if (!all) while (clash(p)) p.y += NODE_H + LABEL_H + GAP_ABOVE_LABELS + GAP_BELOW_LABELS;
    nodes[id].ui = { ...(nodes[id].ui || {}), x: p.x, y: p.y };
    placed.push(nodes[id].ui);
  }
  return missing;
}

// -------------------------------------------------------------------------------------
// Edges

const boxOf = (p) => ({ x: p.x, y: p.y, w: NODE_W, h: NODE_H });

/** Whether two boxes overlap (touching is not overlapping), each grown by `pad`. */
export function overlaps(a, b, pad = 0) {
  return a.x - pad < b.x + b.w && b.x - pad < a.x + a.w && a.y - pad < b.y + b.h && b.y - pad < a.y + a.h;
}

function cubic(p0, c1, c2, p1, steps = 12) {
  const pts = [];
  for (let i = 1; i <= steps; i++) {
    const t = i / steps; const s = 1 - t;
    pts.push({
      x: s * s * s * p0.x + 3 * s * s * t * c1.x + 3 * s * t * t * c2.x + t * t * t * p1.x,
      y: s * s * s * p0.y + 3 * s * s * t * c1.y + 3 * s * t * t * c2.y + t * t * t * p1.y,
    });
  }
  return pts;
}

const r1 = (v) => Math.round(v * 10) / 10;

/** A path from `a` through `via` (pairs of points at a rank's two sides, in travel
 * order) to `b`: straight through each rank, S-curves (vertical tangents) between.
 * Returns {d, pts}. */
function pathThrough(a, via, b) {
  const seq = [a, ...via, b];
  let d = `M${r1(a.x)},${r1(a.y)}`;
  const pts = [a];
  for (let i = 1; i < seq.length; i++) {
    const p = seq[i - 1]; const q = seq[i];
    // Segments inside a rank (the pairs of `via`) are straight.
    const straight = i >= 2 && i <= via.length && i % 2 === 0;
    if (straight || Math.abs(p.x - q.x) < 0.5) {
      d += ` L${r1(q.x)},${r1(q.y)}`;
      pts.push(q);
    } else {
      const my = (p.y + q.y) / 2;
      const c1 = { x: p.x, y: my }; const c2 = { x: q.x, y: my };
      d += ` C${r1(c1.x)},${r1(c1.y)} ${r1(c2.x)},${r1(c2.y)} ${r1(q.x)},${r1(q.y)}`;
      pts.push(...cubic(p, c1, c2, q));
    }
  }
  return { d, pts };
}

/**
 * Corridor waypoints for a connection going down from `a` to `b` past the `obstacles`
 * (boxes): the rows of boxes between the two are crossed where they are free, as near
 * to the straight line as possible, away from lanes other edges took (`lanes`: row key
 * -> [x]).
 */
function corridors(a, b, obstacles, lanes) {
  const pad = 10;
  const band = obstacles
    .map((o) => ({ x: o.x - pad, y: o.y - pad / 2, w: o.w + 2 * pad, h: o.h + pad }))
    .filter((o) => o.y < b.y && o.y + o.h > a.y)
    .sort((p, q) => p.y - q.y);
  const rows = [];
  for (const o of band) {
    const last = rows[rows.length - 1];
    if (last && o.y < last.bottom) { last.boxes.push(o); last.bottom = Math.max(last.bottom, o.y + o.h); } else rows.push({ top: o.y, bottom: o.y + o.h, boxes: [o] });
  }
  const via = [];
  for (const row of rows) {
    const top = Math.max(row.top, a.y + 4); const bottom = Math.min(row.bottom, b.y - 4);
    if (bottom <= top) continue;
    const t = ((top + bottom) / 2 - a.y) / Math.max(1, b.y - a.y);
    const want = a.x + (b.x - a.x) * t;
    const key = `${Math.round(row.top)}:${Math.round(row.bottom)}`;
    const used = lanes.get(key) || [];
    const blocked = (x) => row.boxes.some((o) => x > o.x && x < o.x + o.w) || used.some((u) => Math.abs(u - x) < 12);
    let x = want;
    if (blocked(x)) {
      // The nearest free x: candidates next to every obstacle's sides and used lane.
      const cands = [];
      for (const o of row.boxes) cands.push(o.x - 1, o.x + o.w + 1);
      for (const u of used) cands.push(u - 12, u + 12);
      const more = [];
      for (const c of cands) for (let k = 0; k < 6; k++) more.push(c - 12 * k, c + 12 * k);
      x = more.filter((c) => !blocked(c)).sort((p, q) => Math.abs(p - want) - Math.abs(q - want))[0] ?? want;
    }
    used.push(x);
    lanes.set(key, used);
    via.push({ x, y: top }, { x, y: bottom });
  }
  return via;
}

/** Spreads `n` ports over a side of width `w` starting at `x0`. */
const spread = (x0, w, n, i) => x0 + (w * (i + 1)) / (n + 1);

const samePlace = (p, q) => p && q && p.x === q.x && p.y === q.y;

/**
 * Routes every connection of the flow between the stored positions (`node.ui`):
 * [{key, from, to, label, labels, back, dangling, kind, d, pts, labelBox}], `pts`
 * sampling the path (for label placement and tests). Connections between nodes that
 * are where the automatic layout puts them follow the layout (through the ranks'
 * placeholders, the label in its reserved place: `labelBox`); the others go through
 * the free corridors between the rows of nodes. Edges to a node below (`down`) leave
 * the bottom and enter the top; edges to a node above (`up`) leave the top and enter
 * the bottom; `side` edges join facing sides; `self` loops on a node's right side;
 * `stub`s are dangling exits. `back` (drawn dashed): every edge that closes a cycle
 * (found from the start, see `backEdges`), a node's loop on itself included; an edge up
 * to a node the user placed higher is not one unless it closes a loop.
 */
export function routeEdges(flow, measure = labelWidth) {
  const nodes = flow.nodes || {};
  const ids = Object.keys(nodes).filter((id) => hasPos(nodes[id]));
  const known = new Set(ids);
  const edges = graphEdges(flow).filter((e) => known.has(e.from) && (e.dangling || known.has(e.to)));
  const loops = backEdges(flow, edges);
  const layout = layeredLayout(flow, measure);
  const box = (id) => boxOf(nodes[id].ui);
  const moved = ids.filter((id) => !samePlace(nodes[id].ui, layout.positions[id])).map(box);
  const inPlace = (id) => samePlace(nodes[id].ui, layout.positions[id]);
  const hit = (p) => moved.some((m) => p.x > m.x - 6 && p.x < m.x + m.w + 6 && p.y > m.y - 6 && p.y < m.y + m.h + 6);
  const GAP = 8;
  for (const e of edges) {
    if (e.dangling) e.kind = 'stub';
    else if (e.from === e.to) e.kind = 'self';
    else {
      const a = box(e.from); const b = box(e.to);
      e.kind = b.y >= a.y + a.h + GAP ? 'down' : b.y + b.h + GAP <= a.y ? 'up' : 'side';
    }
    // The layout's route, while both ends (and nothing moved into it) are in place.
    const lr = layout.routes.get(e.key);
    e.via = null;
    if (lr && e.kind !== 'self' && e.kind !== 'side' && inPlace(e.from) && (e.dangling || inPlace(e.to))
      && !lr.via.some(hit) && !(lr.label && moved.some((m) => overlaps(lr.label, m, 3)))) {
      e.via = lr.via;
      e.labelBox = lr.label && e.label ? { ...lr.label } : null;
    }
  }
  // Geometric routes for the others, lanes shared.
  const lanes = new Map();
  const others = (e) => ids.filter((id) => id !== e.from && id !== e.to).map(box);
  const cxOf = (id) => nodes[id].ui.x + NODE_W / 2;
  for (const e of edges) {
    if (e.via) continue;
    const a = box(e.from);
    if (e.kind === 'down') {
      e.via = corridors({ x: cxOf(e.from), y: a.y + a.h }, { x: cxOf(e.to), y: box(e.to).y }, others(e), lanes);
    } else if (e.kind === 'up') {
      const b = box(e.to);
      e.via = corridors({ x: cxOf(e.to), y: b.y + b.h }, { x: cxOf(e.from), y: a.y }, others(e), lanes).reverse();
    } else if (e.kind === 'stub') {
      e.via = [{ x: cxOf(e.from), y: a.y + a.h + GAP_ABOVE_LABELS }, { x: cxOf(e.from), y: a.y + a.h + GAP_ABOVE_LABELS + LABEL_H }];
    } else e.via = [];
  }
  // Ports: per node side, the attached edges sorted by where they head first.
  const ports = new Map(); // `${id}:${side}` -> [{edge, x}]
  const attach = (id, side, e, x) => {
    const k = `${id}:${side}`;
    if (!ports.has(k)) ports.set(k, []);
    ports.get(k).push({ e, x });
  };
  for (const e of edges) {
    const first = e.via[0]; const last = e.via[e.via.length - 1];
    if (e.kind === 'down' || e.kind === 'stub') {
      attach(e.from, 'bottom', e, first ? first.x : cxOf(e.to));
      if (e.kind === 'down') attach(e.to, 'top', e, last ? last.x : cxOf(e.from));
    } else if (e.kind === 'up') {
      attach(e.from, 'top', e, (first ? first.x : cxOf(e.to)) + 0.5);
      attach(e.to, 'bottom', e, (last ? last.x : cxOf(e.from)) + 0.5);
    }
  }
  const portX = new Map();
  for (const [k, list] of ports) {
    const id = k.slice(0, k.lastIndexOf(':'));
    list.sort((p, q) => p.x - q.x);
    const b = box(id);
    list.forEach((p, i) => portX.set(`${p.e.key}:${k}`, spread(b.x + 12, b.w - 24, list.length, i)));
  }
  const px = (e, id, side) => portX.get(`${e.key}:${id}:${side}`);
  const out = [];
  for (const e of edges) {
    const a = box(e.from);
    let path;
    let labelBox = e.labelBox || null;
    if (e.kind === 'stub') {
      const s = { x: px(e, e.from, 'bottom'), y: a.y + a.h };
      const end = e.via[e.via.length - 1];
      path = pathThrough(s, e.via.slice(0, -1), end);
      labelBox = { x: end.x + 5, y: end.y - LABEL_H, w: measure(e.label), h: LABEL_H };
    } else if (e.kind === 'self') {
      const x = a.x + a.w; const y1 = a.y + 14; const y2 = a.y + a.h - 14;
      const c1 = { x: x + 44, y: y1 - 12 }; const c2 = { x: x + 44, y: y2 + 12 };
      path = { d: `M${x},${y1} C${c1.x},${c1.y} ${c2.x},${c2.y} ${x},${y2}`, pts: [{ x, y: y1 }, ...cubic({ x, y: y1 }, c1, c2, { x, y: y2 })] };
      if (e.label) labelBox = { x: x + 40, y: a.y + a.h / 2 - LABEL_H / 2, w: measure(e.label), h: LABEL_H };
    } else if (e.kind === 'down') {
      path = pathThrough({ x: px(e, e.from, 'bottom'), y: a.y + a.h }, e.via, { x: px(e, e.to, 'top'), y: box(e.to).y });
    } else if (e.kind === 'up') {
      const b = box(e.to);
      path = pathThrough({ x: px(e, e.from, 'top'), y: a.y }, e.via, { x: px(e, e.to, 'bottom'), y: b.y + b.h });
    } else {
      const b = box(e.to);
      const right = b.x >= a.x;
      const s = { x: right ? a.x + a.w : a.x, y: a.y + a.h / 2 };
      const t = { x: right ? b.x : b.x + b.w, y: b.y + b.h / 2 };
      const lo = Math.min(s.x, t.x); const hi = Math.max(s.x, t.x);
      const between = others(e).some((o) => o.x < hi && o.x + o.w > lo && o.y < Math.max(s.y, t.y) + 20 && o.y + o.h > Math.min(s.y, t.y) - 20);
      let s2 = s; let t2 = t; let c1; let c2;
      if (!between) {
        const mx = (s.x + t.x) / 2;
        c1 = { x: mx, y: s.y }; c2 = { x: mx, y: t.y };
      } else {
        // Over the top of the row.
        s2 = { x: a.x + a.w / 2 + (right ? 20 : -20), y: a.y };
        t2 = { x: b.x + b.w / 2 + (right ? -20 : 20), y: b.y };
        const top = Math.min(a.y, b.y, ...others(e).filter((o) => o.x < hi && o.x + o.w > lo).map((o) => o.y)) - 40;
        c1 = { x: s2.x, y: top }; c2 = { x: t2.x, y: top };
      }
      path = { d: `M${r1(s2.x)},${r1(s2.y)} C${r1(c1.x)},${r1(c1.y)} ${r1(c2.x)},${r1(c2.y)} ${r1(t2.x)},${r1(t2.y)}`, pts: [s2, ...cubic(s2, c1, c2, t2)] };
    }
    out.push({
      key: e.key, from: e.from, to: e.to, label: e.label, labels: e.labels,
      dangling: e.dangling, kind: e.kind,
      back: !e.dangling && (loops.has(e.key) || e.kind === 'self'),
      d: path.d, pts: path.pts, labelBox,
    });
  }
  return out;
}

// -------------------------------------------------------------------------------------
// Labels

/** The point at `f` (0..1) of a polyline's length, and its direction there. */
function along(pts, f) {
  let total = 0;
  for (let i = 1; i < pts.length; i++) total += Math.hypot(pts[i].x - pts[i - 1].x, pts[i].y - pts[i - 1].y);
  let goal = total * f;
  for (let i = 1; i < pts.length; i++) {
    const p = pts[i - 1]; const q = pts[i];
    const len = Math.hypot(q.x - p.x, q.y - p.y);
    if (goal <= len || i === pts.length - 1) {
      const t = len ? Math.min(1, goal / len) : 0;
      return { x: p.x + (q.x - p.x) * t, y: p.y + (q.y - p.y) * t, dx: q.x - p.x, dy: q.y - p.y };
    }
    goal -= len;
  }
  return { x: pts[0].x, y: pts[0].y, dx: 0, dy: 1 };
}

const inBox = (p, b) => p.x >= b.x && p.x <= b.x + b.w && p.y >= b.y && p.y <= b.y + b.h;

/**
 * A box for every routed edge's label ({key, text, x, y, w, h}, top-left), along its own
 * path, overlapping no node and no other label: the candidates are spots at several
 * fractions of the path, beside it (right, left) or on it (the label's halo hides the
 * line), scored by how many other edges they cover; when none is free, the nearest free
 * spot around the path's middle.
 */
export function placeLabels(flow, routes, measure = labelWidth) {
  const nodes = Object.values(flow.nodes || {}).filter(hasPos).map((n) => boxOf(n.ui));
  const placed = [];
  const out = [];
  const free = (b) => !nodes.some((n) => overlaps(b, n, 3)) && !placed.some((l) => overlaps(b, l, 2));
  const cost = (b, self) => {
    let c = 0;
    for (const r of routes) {
      if (r === self) continue;
      for (const p of r.pts) if (inBox(p, b)) { c += 2; break; }
    }
    return c;
  };
  // The places the layout reserved (or a stub's and a loop's own), where still free.
  const rest = [];
  for (const r of routes) {
    if (!r.label) continue;
    const b = r.labelBox && { ...r.labelBox, w: measure(r.label) };
    if (b && free(b)) {
      const lb = { key: r.key, text: r.label, x: r1(b.x), y: r1(b.y), w: b.w, h: LABEL_H };
      placed.push(lb);
      out.push(lb);
    } else rest.push(r);
  }
  // Then the others, longer paths last (they have the most room).
  const order = rest.sort((p, q) => p.pts.length - q.pts.length);
  for (const r of order) {
    const w = measure(r.label); const h = LABEL_H;
    const fractions = [0.3, 0.5, 0.18, 0.7, 0.4, 0.6, 0.1, 0.85];
    let best = null;
    fractions.forEach((f, fi) => {
      const p = along(r.pts, f);
      const vertical = Math.abs(p.dy) >= Math.abs(p.dx);
      const spots = vertical
        ? [{ x: p.x + 5, y: p.y - h / 2 }, { x: p.x - 5 - w, y: p.y - h / 2 }, { x: p.x - w / 2, y: p.y - h / 2, on: true }]
        : [{ x: p.x - w / 2, y: p.y - h - 3 }, { x: p.x - w / 2, y: p.y + 3 }, { x: p.x - w / 2, y: p.y - h / 2, on: true }];
      spots.forEach((s, si) => {
        const b = { x: s.x, y: s.y, w, h };
        if (!free(b)) return;
        const score = cost(b, r) + fi * 0.3 + si * 0.1 + (s.on ? 0.5 : 0);
        if (!best || score < best.score) best = { b, score };
      });
    });
    if (!best) {
      // Rings around the middle of the path until a free spot.
      const m = along(r.pts, 0.5);
      for (let ring = 1; ring < 60 && !best; ring++) {
        for (let k = 0; k < 8 * ring && !best; k++) {
          const ang = (2 * Math.PI * k) / (8 * ring);
          const b = { x: m.x + Math.cos(ang) * ring * 10 - w / 2, y: m.y + Math.sin(ang) * ring * 10 - h / 2, w, h };
          if (free(b)) best = { b };
        }
      }
    }
    const b = best ? best.b : { x: along(r.pts, 0.5).x, y: along(r.pts, 0.5).y, w, h };
    const lb = { key: r.key, text: r.label, x: r1(b.x), y: r1(b.y), w, h };
    placed.push(lb);
    out.push(lb);
  }
  return out;
}

// -------------------------------------------------------------------------------------
// The view

/** The box around all nodes, edge paths and label boxes. */
export function contentBounds(flow, routes = [], labels = []) {
  let x0 = Infinity; let y0 = Infinity; let x1 = -Infinity; let y1 = -Infinity;
  const add = (x, y, w = 0, h = 0) => { x0 = Math.min(x0, x); y0 = Math.min(y0, y); x1 = Math.max(x1, x + w); y1 = Math.max(y1, y + h); };
  for (const n of Object.values(flow.nodes || {})) if (hasPos(n)) add(n.ui.x, n.ui.y, NODE_W, NODE_H);
  for (const r of routes) for (const p of r.pts) add(p.x, p.y);
  for (const l of labels) add(l.x, l.y, l.w, l.h);
  if (x0 === Infinity) return { x: 0, y: 0, w: 0, h: 0 };
  return { x: x0, y: y0, w: x1 - x0, h: y1 - y0 };
}

/**
 * The viewBox ({x, y, w, h, scale}) that shows `bounds` with a margin in a viewport of
 * `vw` × `vh` pixels: shrunk to fit (never enlarged beyond 1:1), with the viewport's
 * aspect ratio, centred across and from the top.
 */
export function fitView(bounds, vw, vh, margin = 20) {
  const cw = bounds.w + 2 * margin; const ch = bounds.h + 2 * margin;
  const scale = Math.min(1, vw / Math.max(1, cw), vh / Math.max(1, ch));
  const w = vw / scale; const h = vh / scale;
  return { x: r1(bounds.x - margin - (w - cw) / 2), y: r1(bounds.y - margin), w: r1(w), h: r1(h), scale };
}
