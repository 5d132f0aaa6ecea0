// The IVR designer: flows list, and for one flow a visual editor of its graph (SVG
// boxes and connections; add, connect, configure, move, delete nodes), validation
// errors on the nodes, a test-call panel (the simulator), publish, versions with
// rollback, prompts (upload, preview) and number routing.
//
// Keyboard: Tab to a node, Enter selects it; arrows move the selected node (Shift: 50
// px); Delete removes it; Shift+Enter on another node (or Shift+click) connects the
// selected node's first free exit to it; Ctrl+S saves the draft. Supervisors get the
// same view read-only (validate and test calls only).
//
// Layout (flowlayout.js): nodes without a stored position (`node.ui`, e.g. the seeded
// demo) are laid out automatically, top to bottom; positions the user moved are kept
// and saved with the draft; "Auto-layout" lays the whole flow out again. The view fits
// the whole graph when the flow opens and on "Fit to view"; it grows when a node is
// moved or added outside it.

import { get, post, put, del, apiRaw, enc, ApiError } from '../api.js';
import { h, mount, act, field, values, table, badge, toast, errorBox, fmtTime, fmtDuration } from '../dom.js';
import { NODE_TYPES, exits, setExit, problemsByNode, visited, parseSteps } from './flowgraph.js';
import { NODE_W as W, NODE_H as H, LABEL_H, labelWidth, placeMissing, routeEdges, placeLabels, contentBounds, fitView } from './flowlayout.js';

export async function render(main, params, ctx) {
  if (!params.flow) return flowList(main, ctx);
  return editor(main, params.flow, ctx);
}

// ---------------------------------------------------------------------------------
// Flows list

async function flowList(main, { navigate }) {
  const [flows, routes] = await Promise.all([get('/ivr/flows'), get('/ivr/numbers')]);
  const out = h('div');
  const btn = h('button', { type: 'submit', class: 'primary' }, 'Create flow');
  const form = h('form', { class: 'inline-form', id: 'new-flow' },
    field('Flow id', h('input', { name: 'id', required: true, pattern: '[A-Za-z0-9_.\\-]+', placeholder: 'support_line' })),
    field('Name', h('input', { name: 'name', placeholder: 'Support line' })),
    btn, out);
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    act(btn, out, async () => {
      const v = values(form);
      await post('/ivr/flows', {
        version: 1, id: v.id, name: v.name || v.id, start: 'welcome',
        nodes: {
          welcome: { type: 'play', prompts: [{ tts: 'Welcome.' }], next: 'goodbye' },
          goodbye: { type: 'hangup' },
        },
      });
      navigate('/designer/' + enc(v.id));
    });
  });
  mount(main, h('h1', {}, 'IVR designer'),
    h('section', { class: 'card' }, h('h2', {}, 'Flows'),
      table(flows, [
        { label: 'Flow', get: (f) => h('a', { href: '/designer/' + enc(f.id), 'data-link': '' }, f.name) },
        { label: 'Id', get: (f) => h('code', {}, f.id) },
        { label: 'Published', get: (f) => (f.current_version ? badge('v' + f.current_version, 'ok') : badge('draft only')) },
        { label: 'Numbers', get: (f) => routes.filter((r) => r.flow_id === f.id).map((r) => r.number).join(', ') || '—' },
        { label: 'Changed', get: (f) => fmtTime(f.updated_at) },
      ])),
    h('section', { class: 'card' }, h('h2', {}, 'New flow'), form));
}

// ---------------------------------------------------------------------------------
// Editor

async function editor(main, flowId, { user }) {
  const isAdmin = user.role === 'admin';
  const st = {
    flow: null, // the draft document being edited
    selected: null,
    dirty: false,
    problems: new Map(),
    path: new Set(),
    prompts: [],
    view: null, // the canvas's viewBox {x, y, w, h}
    bounds: null, // the box around everything drawn
  };

  const status = h('span', { id: 'flow-status', class: 'muted', role: 'status', 'aria-live': 'polite' });
  const problemsBox = h('div', { id: 'problems', 'aria-live': 'polite' });
  const svg = h('svg', { id: 'canvas', class: 'canvas', role: 'group', 'aria-label': 'Flow graph' });
  const inspector = h('aside', { id: 'inspector', class: 'card inspector', 'aria-label': 'Node settings' });
  const testPanel = h('section', { id: 'test-call', class: 'card' });
  const versionsPanel = h('section', { id: 'versions', class: 'card' });
  const promptsPanel = h('section', { id: 'prompts', class: 'card' });
  const routingPanel = h('section', { id: 'routing', class: 'card' });
  const topOut = h('div');

  const saveBtn = h('button', { type: 'button', id: 'save', onclick: () => act(saveBtn, topOut, save) }, 'Save draft');
  const validateBtn = h('button', { type: 'button', id: 'validate', onclick: () => act(validateBtn, topOut, validate) }, 'Validate');
  const publishBtn = h('button', { type: 'button', id: 'publish', class: 'primary', onclick: () => act(publishBtn, topOut, publish) }, 'Publish');

  const newId = h('input', { id: 'new-node-id', placeholder: 'node id', pattern: '[A-Za-z0-9_.\\-]+', 'aria-label': 'New node id', size: 12 });
  const newType = h('select', { id: 'new-node-type', 'aria-label': 'New node type' }, Object.keys(NODE_TYPES).map((t) => h('option', { value: t }, t)));
  const addBtn = h('button', { type: 'button', id: 'add-node', onclick: addNode }, 'Add node');
  const fitBtn = h('button', { type: 'button', id: 'fit-view', title: 'Show the whole flow', onclick: () => fit() }, 'Fit to view');
  const layoutBtn = h('button', { type: 'button', id: 'auto-layout', title: 'Lay the whole flow out again (moved nodes too)', onclick: autoLayout }, 'Auto-layout');

  const heading = h('h1', {}, 'Flow ', h('code', {}, flowId));
  mount(main,
    h('div', { class: 'designer' },
      h('div', { class: 'toolbar' }, heading, h('span', { class: 'spacer' }),
        isAdmin ? h('span', { class: 'row' }, newId, newType, addBtn) : null,
        isAdmin ? saveBtn : null, validateBtn, isAdmin ? publishBtn : null, status),
      topOut, problemsBox,
      h('div', { class: 'workspace' }, h('div', { class: 'canvas-pane' },
        h('div', { class: 'canvas-tools row' }, fitBtn, layoutBtn,
          h('span', { class: 'muted small legend' }, h('span', { class: 'key-back' }, '- - →'), ' goes back (a loop)')),
        h('div', { class: 'canvas-wrap' }, svg)), inspector),
      h('div', { class: 'panels' }, testPanel, versionsPanel, promptsPanel, routingPanel)));

  // --- load
  async function load() {
    const f = await get('/ivr/flows/' + enc(flowId));
    st.flow = f.draft;
    placeMissing(st.flow, false, measure);
    heading.replaceChildren('Flow ', h('code', {}, flowId), ' ', h('span', { class: 'muted' }, st.flow.name || ''), ' ',
      f.current_version ? badge('live: v' + f.current_version, 'ok') : badge('not published'));
    st.dirty = false;
    setStatus(`Draft saved ${fmtTime(f.updated_at)}`);
    draw();
    fit();
    inspect();
  }

  function setStatus(t) { status.textContent = t; }
  function touch() { st.dirty = true; setStatus('Unsaved changes'); draw(); }

  // --- drawing
  function draw() {
    const nodes = st.flow.nodes;
    const ids = Object.keys(nodes);
    const routes = routeEdges(st.flow, measure);
    const labels = new Map(placeLabels(st.flow, routes, measure).map((l) => [l.key, l]));
    st.bounds = contentBounds(st.flow, routes, [...labels.values()]);
    const edges = h('g', { class: 'edges' });
    const labelLayer = h('g', { class: 'edge-labels' });
    for (const r of routes) {
      const onPath = !r.dangling && st.path.has(r.from) && st.path.has(r.to);
      const cls = ['edge'];
      if (r.dangling) cls.push('dangling'); else if (r.back) cls.push('back');
      if (onPath) cls.push('walked');
      edges.append(h('g', { class: cls.join(' '), dataset: { from: r.from, to: r.to } },
        h('title', {}, `${r.from} → ${r.to}${r.dangling ? ' (missing)' : ''}: ${r.labels.join(', ')}`),
        h('path', { d: r.d, 'marker-end': `url(#${r.dangling ? 'arrow-bad' : r.back ? 'arrow-back' : 'arrow'})` }),
        // A wide invisible stroke over it: the edge's tooltip is easy to hover.
        h('path', { d: r.d, class: 'hit' })));
      const l = labels.get(r.key);
      // Labels above every edge (their background hides lines that pass under them).
      if (l) {
        labelLayer.append(h('g', { class: cls.join(' ').replace('edge', 'edge-tag'), dataset: { from: r.from, to: r.to } },
          h('rect', { x: l.x, y: l.y, width: l.w, height: l.h, rx: 3, class: 'label-bg' }),
          h('text', { x: l.x + 4, y: l.y + LABEL_H - 4, class: 'edge-label' }, l.text)));
      }
    }
    const boxes = h('g', { class: 'nodes' });
    for (const id of ids) boxes.append(nodeBox(id, nodes[id]));
    const marker = (id, cls) => h('marker', { id, viewBox: '0 0 10 10', refX: 9, refY: 5, markerWidth: 5, markerHeight: 5, orient: 'auto-start-reverse' },
      h('path', { d: 'M0,0 L10,5 L0,10 z', class: cls }));
    mount(svg,
      h('defs', {}, marker('arrow', 'arrowhead'), marker('arrow-back', 'arrowhead back'), marker('arrow-bad', 'arrowhead bad')),
      edges, labelLayer, boxes);
    // The view grows to show what moved or was added outside it.
    const v = st.view;
    const b = st.bounds;
    if (!v) fit();
    else if (b.x < v.x || b.y < v.y || b.x + b.w > v.x + v.w || b.y + b.h > v.y + v.h) {
      const x0 = Math.min(v.x, b.x); const y0 = Math.min(v.y, b.y);
      const union = { x: x0, y: y0, w: Math.max(v.x + v.w, b.x + b.w) - x0, h: Math.max(v.y + v.h, b.y + b.h) - y0 };
      showView(fitView(union, ...viewport(), 0));
    }
  }

  /** An edge label's box width: its text measured in the page (bold, as on a walked
   * path, plus padding), the layout's estimate where nothing can be measured. */
  const widths = new Map();
  function measure(text) {
    if (!widths.has(text)) {
      const t = h('text', { x: 0, y: -100 }, text);
      const g = h('g', { class: 'edge-tag walked', 'aria-hidden': 'true' }, t);
      svg.append(g);
      const w = t.getComputedTextLength();
      g.remove();
      widths.set(text, w > 0 ? Math.ceil(w + 9) : labelWidth(text));
    }
    return widths.get(text);
  }

  /** The canvas's size in pixels. */
  function viewport() {
    const r = svg.getBoundingClientRect();
    return [Math.max(320, r.width), Math.max(240, r.height)];
  }

  function showView(v) {
    st.view = v;
    svg.setAttribute('viewBox', `${v.x} ${v.y} ${v.w} ${v.h}`);
    svg.setAttribute('preserveAspectRatio', 'xMidYMin meet');
    svg.dataset.scale = v.scale.toFixed(3);
  }

  /** Shows the whole flow (shrunk to fit, never enlarged). */
  function fit() {
    if (st.bounds) showView(fitView(st.bounds, ...viewport()));
  }

  /** Lays the whole flow out again (moved nodes too), and shows it all. */
  function autoLayout() {
    placeMissing(st.flow, true, measure);
    if (isAdmin) touch(); else draw();
    fit();
  }

  function nodeBox(id, n) {
    const errs = st.problems.get(id);
    const cls = ['node', 't-' + n.type];
    if (id === st.selected) cls.push('selected');
    if (errs) cls.push('invalid');
    if (st.path.has(id)) cls.push('walked');
    if (id === st.flow.start) cls.push('start');
    const g = h('g', {
      class: cls.join(' '), tabindex: 0, role: 'button', transform: `translate(${n.ui.x},${n.ui.y})`,
      'aria-label': `${id}, ${n.type}${id === st.flow.start ? ', start' : ''}${errs ? ', ' + errs.length + ' problem(s)' : ''}`,
      dataset: { node: id },
    },
    h('title', {}, errs ? errs.join('\n') : `${id} (${n.type})`),
    h('rect', { width: W, height: H, rx: 8 }),
    h('text', { x: 10, y: 22, class: 'nid' }, trim(id, id === st.flow.start ? 13 : 20)),
    h('text', { x: 10, y: 42, class: 'ntype' }, n.type + (n.label ? ' · ' + trim(n.label, 14) : '')),
    id === st.flow.start ? h('text', { x: W - 10, y: 20, class: 'flag', 'text-anchor': 'end' }, '▶ start') : null,
    errs ? h('g', { class: 'err-badge' }, h('circle', { cx: W - 4, cy: 4, r: 11 }), h('text', { x: W - 4, y: 9, 'text-anchor': 'middle' }, String(errs.length))) : null);
    g.addEventListener('pointerdown', (e) => startDrag(e, id));
    g.addEventListener('keydown', (e) => nodeKey(e, id));
    g.addEventListener('focus', () => { if (st.selected !== id) select(id, false); });
    return g;
  }

  const trim = (s, n) => (s.length > n ? s.slice(0, n - 1) + '…' : s);

  function select(id, redraw = true) {
    st.selected = id;
    inspect();
    if (redraw) { draw(); focusNode(id); } else {
      for (const el of svg.querySelectorAll('.node')) el.classList.toggle('selected', el.dataset.node === id);
    }
  }

  function focusNode(id) {
    const el = svg.querySelector(`.node[data-node="${CSS.escape(id)}"]`);
    if (el) el.focus({ preventScroll: false });
  }

  // --- dragging (pointer) and keyboard moves
  function startDrag(e, id) {
    if (e.button !== 0) return;
    if (e.shiftKey && st.selected && st.selected !== id) { connect(st.selected, id); e.preventDefault(); return; }
    const n = st.flow.nodes[id];
    const pt = svgPoint(e);
    const off = { x: pt.x - n.ui.x, y: pt.y - n.ui.y };
    let moved = false;
    const g = e.currentTarget;
    g.setPointerCapture(e.pointerId);
    const move = (m) => {
      const p = svgPoint(m);
      const x = Math.max(0, Math.round((p.x - off.x) / 10) * 10); const y = Math.max(0, Math.round((p.y - off.y) / 10) * 10);
      if (x !== n.ui.x || y !== n.ui.y) { n.ui.x = x; n.ui.y = y; moved = true; g.setAttribute('transform', `translate(${x},${y})`); }
    };
    const up = () => {
      g.removeEventListener('pointermove', move);
      g.removeEventListener('pointerup', up);
      if (moved) { touch(); }
      select(id);
    };
    g.addEventListener('pointermove', move);
    g.addEventListener('pointerup', up);
  }

  function svgPoint(e) {
    const p = svg.createSVGPoint();
    p.x = e.clientX; p.y = e.clientY;
    return p.matrixTransform(svg.getScreenCTM().inverse());
  }

  function nodeKey(e, id) {
    const n = st.flow.nodes[id];
    const step = e.shiftKey ? 50 : 10;
    const moves = { ArrowLeft: [-step, 0], ArrowRight: [step, 0], ArrowUp: [0, -step], ArrowDown: [0, step] };
    if (e.key === 'Enter' && e.shiftKey && st.selected && st.selected !== id) { e.preventDefault(); connect(st.selected, id); }
    else if (e.key === 'Enter' || e.key === ' ') { e.preventDefault(); select(id); inspector.querySelector('input, select, textarea, button')?.focus(); }
    else if (moves[e.key]) {
      e.preventDefault();
      n.ui.x = Math.max(0, n.ui.x + moves[e.key][0]); n.ui.y = Math.max(0, n.ui.y + moves[e.key][1]);
      touch(); focusNode(id);
    } else if (e.key === 'Delete' || e.key === 'Backspace') { e.preventDefault(); removeNode(id); }
  }

  // --- node operations
  /** Shift+click (or Shift+Enter): the selected node's first unconnected exit goes to `to`. */
  function connect(from, to) {
    const n = st.flow.nodes[from];
    const free = exits(n).find((x) => !x.target);
    if (!free) { toast(`Every exit of ${from} is connected; change one in the settings`, 'bad'); return; }
    setExit(n, free.path, to, false);
    toast(`${from} · ${free.label} → ${to}`);
    touch();
    select(from);
  }

  function addNode() {
    const id = newId.value.trim() || `${newType.value}_${Object.keys(st.flow.nodes).length + 1}`;
    if (!/^[A-Za-z0-9_.-]+$/.test(id)) { toast('A node id uses letters, digits, _ . -', 'bad'); return; }
    if (st.flow.nodes[id]) { toast(`There is already a node ${id}`, 'bad'); return; }
    const node = NODE_TYPES[newType.value]();
    const from = st.selected && st.flow.nodes[st.selected];
    // Below the node it is connected from (the layout runs top to bottom).
    node.ui = freeSpot(from ? from.ui.x : 30, from ? from.ui.y + H + 60 : 30);
    st.flow.nodes[id] = node;
    // Connect the selected node's first empty exit to the new one.
    if (from) {
      const free = exits(from).find((x) => !x.target && !x.optional);
      if (free) setExit(from, free.path, id, false);
    }
    newId.value = '';
    touch();
    select(id);
  }

  /** The first place at (x, y) or below it that no node overlaps. */
  function freeSpot(x, y) {
    const taken = (yy) => Object.values(st.flow.nodes).some((n) => n.ui && Math.abs(n.ui.x - x) < W + 20 && Math.abs(n.ui.y - yy) < H + 20);
    while (taken(y)) y += H + 60;
    return { x, y };
  }

  function removeNode(id) {
    if (!confirm(`Delete node ${id}? Exits pointing at it are cleared.`)) return;
    delete st.flow.nodes[id];
    for (const n of Object.values(st.flow.nodes)) for (const e of exits(n)) if (e.target === id) setExit(n, e.path, '', e.optional);
    if (st.flow.start === id) st.flow.start = Object.keys(st.flow.nodes)[0] || '';
    st.selected = null;
    touch();
    inspect();
  }

  // --- inspector
  function inspect() {
    const id = st.selected;
    const n = id && st.flow.nodes[id];
    if (!n) {
      const fname = h('input', { value: st.flow.name || '', 'aria-label': 'Flow name' });
      fname.addEventListener('change', () => { st.flow.name = fname.value; touch(); });
      mount(inspector, h('h2', {}, 'Flow'), field('Name', fname),
        h('p', { class: 'muted' }, 'Select a node (click, or Tab and Enter) to configure it. Add nodes with the toolbar; the new node is connected from the selected one. Shift+click (or Shift+Enter) another node to connect the selected node\'s first free exit to it. Drag or use the arrow keys to move a node.'),
        problemList(null));
      return;
    }
    const others = Object.keys(st.flow.nodes);
    const target = (e) => {
      const s = h('select', { 'aria-label': `Exit ${e.label} of ${id}`, dataset: { exit: e.path.join('.') } },
        h('option', { value: '' }, '— not connected —'), others.map((o) => h('option', { value: o, selected: o === e.target }, o)));
      if (e.target && !st.flow.nodes[e.target]) s.append(h('option', { value: e.target, selected: true }, `${e.target} (missing)`));
      s.addEventListener('change', () => { setExit(n, e.path, s.value, e.optional); touch(); inspect(); });
      return s;
    };
    const label = h('input', { value: n.label || '', 'aria-label': 'Label' });
    label.addEventListener('change', () => { if (label.value) n.label = label.value; else delete n.label; touch(); });

    const parts = [
      h('h2', {}, h('code', {}, id), ' ', badge(n.type)),
      problemList(id),
      field('Label', label),
      id !== st.flow.start ? h('button', { type: 'button', onclick: () => { st.flow.start = id; touch(); inspect(); } }, 'Make this the start') : h('p', { class: 'muted' }, 'Calls start here.'),
    ];
    if (Array.isArray(n.prompts)) parts.push(promptsEditor(n, 'prompts', 'Prompts'));
    if (n.type === 'menu') {
      parts.push(h('h3', {}, 'Choices'), h('div', { class: 'rows', id: 'choices' }, n.choices.map((c, i) => {
        const digit = h('input', { value: c.digit, size: 2, maxlength: 1, 'aria-label': `Key of choice ${i + 1}` });
        digit.addEventListener('change', () => { c.digit = digit.value.trim(); touch(); });
        return h('div', { class: 'row' }, digit, '→', target({ label: c.digit, path: ['choices', i, 'next'], target: c.next }),
          h('button', { type: 'button', class: 'ghost', 'aria-label': `Remove choice ${c.digit}`, onclick: () => { n.choices.splice(i, 1); touch(); inspect(); } }, '✕'));
      })), h('button', { type: 'button', id: 'add-choice', onclick: () => {
        const used = new Set(n.choices.map((c) => c.digit));
        const d = '1234567890*#'.split('').find((k) => !used.has(k)) || '9';
        n.choices.push({ digit: d, next: '' }); touch(); inspect();
      } }, 'Add choice'));
    }
    const ex = exits(n).filter((e) => e.path[0] !== 'choices');
    if (ex.length) parts.push(h('h3', {}, 'Exits'), h('div', { class: 'rows' }, ex.map((e) => h('label', { class: 'row exit' }, h('span', { class: 'exit-name' }, e.label), target(e)))));

    // Everything else: the node's JSON (without the designer's position).
    const { ui, ...rest } = n;
    const json = h('textarea', { rows: 10, spellcheck: false, class: 'code', 'aria-label': 'Node JSON', id: 'node-json' }, JSON.stringify(rest, null, 2));
    const jOut = h('div');
    const apply = h('button', { type: 'button', onclick: () => {
      jOut.replaceChildren();
      try {
        const v = JSON.parse(json.value);
        if (!v || typeof v !== 'object' || !v.type) throw new Error('A node is an object with a "type".');
        st.flow.nodes[id] = { ...v, ui };
        touch(); inspect();
      } catch (err) { jOut.append(errorBox(err)); }
    } }, 'Apply JSON');
    parts.push(h('details', { class: 'advanced' }, h('summary', {}, 'All settings (JSON)'), json, h('div', { class: 'row' }, apply), jOut),
      h('div', { class: 'row' }, h('button', { type: 'button', class: 'danger', id: 'delete-node', onclick: () => removeNode(id) }, 'Delete node')));
    mount(inspector, parts);
  }

  function promptsEditor(n, key, title) {
    const list = n[key];
    return h('div', { class: 'prompts-editor' }, h('h3', {}, title), list.map((p, i) => {
      const isFile = 'file' in p;
      const kind = h('select', { 'aria-label': `Prompt ${i + 1} kind` }, h('option', { value: 'tts', selected: !isFile }, 'Speak text'), h('option', { value: 'file', selected: isFile }, 'Recording'));
      kind.addEventListener('change', () => { list[i] = kind.value === 'file' ? { file: (st.prompts[0] || {}).id || '' } : { tts: '' }; touch(); inspect(); });
      let input;
      if (isFile) {
        input = h('select', { 'aria-label': `Prompt ${i + 1} recording` }, h('option', { value: '' }, '— choose —'),
          st.prompts.map((m) => h('option', { value: m.id, selected: m.id === p.file }, m.name)));
        if (p.file && !st.prompts.some((m) => m.id === p.file)) input.append(h('option', { value: p.file, selected: true }, p.file + ' (missing)'));
        input.addEventListener('change', () => { p.file = input.value; touch(); });
      } else {
        input = h('textarea', { rows: 2, 'aria-label': `Prompt ${i + 1} text` }, p.tts);
        input.addEventListener('change', () => { p.tts = input.value; touch(); });
      }
      return h('div', { class: 'prompt-row' }, kind, input,
        isFile && p.file ? h('button', { type: 'button', class: 'ghost', onclick: (e) => preview(p.file, e.currentTarget.parentElement) }, '▶ Preview') : null,
        h('button', { type: 'button', class: 'ghost', 'aria-label': 'Remove prompt', onclick: () => { list.splice(i, 1); touch(); inspect(); } }, '✕'));
    }), h('button', { type: 'button', onclick: () => { list.push({ tts: '' }); touch(); inspect(); } }, 'Add prompt'));
  }

  function problemList(id) {
    const errs = st.problems.get(id);
    if (!errs) return null;
    return h('ul', { class: 'problems' }, errs.map((m) => h('li', { class: 'error' }, m)));
  }

  // --- server actions
  async function save() {
    if (!st.dirty || !isAdmin) return;
    const f = await put('/ivr/flows/' + enc(flowId), st.flow);
    st.dirty = false;
    setStatus(`Draft saved ${fmtTime(f.updated_at)}`);
  }

  function showProblems(errors, warnings = []) {
    st.problems = problemsByNode(errors);
    const item = (e) => h('li', {}, e.node && !e.flow ? h('button', { type: 'button', class: 'link', onclick: () => select(e.node) }, e.node) : null, ' ', e.message);
    // Warnings (a transfer target built from caller input…) never stop publishing.
    const warned = warnings.length
      ? h('div', { class: 'warn', id: 'warnings' }, h('strong', {}, `${warnings.length} warning(s):`), h('ul', {}, warnings.map(item)))
      : null;
    if (!errors.length) {
      mount(problemsBox, h('div', {}, h('p', { class: 'ok-msg', id: 'valid' }, '✓ The flow is valid and can be published.'), warned));
    } else {
      mount(problemsBox, h('div', {}, h('div', { class: 'error', id: 'invalid' }, h('strong', {}, `${errors.length} problem(s):`),
        h('ul', {}, errors.map(item))), warned));
    }
    draw();
    inspect();
  }

  async function validate() {
    await save();
    const v = await post('/ivr/flows/' + enc(flowId) + '/validate');
    showProblems(v.errors, v.warnings || []);
    return v.valid;
  }

  async function publish() {
    await save();
    try {
      const v = await post('/ivr/flows/' + enc(flowId) + '/publish');
      showProblems([]);
      toast(`Published version ${v.version}`);
      await Promise.all([load(), loadVersions()]);
    } catch (e) {
      if (e instanceof ApiError && e.details && Array.isArray(e.details.errors)) { showProblems(e.details.errors); }
      throw e;
    }
  }

  // --- test call
  function renderTest() {
    const steps = h('input', { name: 'steps', id: 'test-steps', value: '', placeholder: '1, say billing, wait 3000, hangup', size: 40 });
    const speech = h('input', { type: 'checkbox', name: 'speech_available' });
    const at = h('input', { type: 'datetime-local', name: 'at', 'aria-label': 'Call time' });
    const caller = h('input', { name: 'caller', value: '+15550123', size: 14 });
    const out = h('div', { id: 'test-result' });
    const btn = h('button', { type: 'submit', class: 'primary' }, 'Run test call');
    const form = h('form', { id: 'test-form' },
      h('p', { class: 'muted small' }, 'Runs the draft in the simulator (virtual time, nothing is dialled). Steps, comma separated: keys (1, 42#), "say …" (speech), "wait MS", "queue answered|timeout|abandoned", "hangup".'),
      field('Steps', steps), h('div', { class: 'inline-form' }, field('Caller', caller), field('At (empty: now)', at), field('Speech recogniser', speech)), btn, out);
    form.addEventListener('submit', (e) => {
      e.preventDefault();
      act(btn, out, async () => {
        await save();
        const script = { steps: parseSteps(steps.value), call: { caller_number: caller.value } };
        if (at.value) script.start_time = new Date(at.value).toISOString();
        let r;
        try {
          r = await post('/ivr/flows/' + enc(flowId) + '/simulate', { speech_available: speech.checked, script });
        } catch (err) {
          if (err instanceof ApiError && err.details && Array.isArray(err.details.errors)) showProblems(err.details.errors);
          throw err;
        }
        const ids = visited(r.trace).map((n) => (st.flow.nodes[n] ? n : n.split(/[/:]/).pop()));
        st.path = new Set(ids);
        draw();
        mount(out, h('p', {}, `Visited: ${ids.join(' → ') || '(nothing)'}${r.trace.ended ? ' · call ended' : ''}`),
          h('pre', { class: 'trace' }, r.lines.join('\n')));
      });
    });
    mount(testPanel, h('h2', {}, 'Test call'), form);
  }

  // --- versions
  async function loadVersions() {
    try {
      const vs = await get('/ivr/flows/' + enc(flowId) + '/versions');
      mount(versionsPanel, h('h2', {}, 'Versions'),
        table(vs, [
          { label: 'Version', get: (v) => h('span', {}, 'v' + v.version, v.current ? [' ', badge('live', 'ok')] : null) },
          { label: 'Published', get: (v) => fmtTime(v.published_at) },
          { label: '', get: (v) => (v.current || !isAdmin ? '' : h('button', { type: 'button', dataset: { rollback: v.version }, onclick: (e) => act(e.currentTarget, versionsPanel.querySelector('.vout'), async () => {
            if (!confirm(`Make version ${v.version} live again?`)) return;
            await post('/ivr/flows/' + enc(flowId) + '/rollback', { version: v.version });
            toast(`Version ${v.version} is live`);
            await Promise.all([load(), loadVersions()]);
          }) }, 'Make live')) },
        ], { empty: 'Not published yet.' }),
        h('div', { class: 'vout' }));
    } catch (e) { mount(versionsPanel, h('h2', {}, 'Versions'), errorBox(e)); }
  }

  // --- prompts
  async function loadPrompts() {
    try {
      st.prompts = await get('/ivr/prompts');
    } catch (e) { mount(promptsPanel, h('h2', {}, 'Prompts'), errorBox(e)); return; }
    const file = h('input', { type: 'file', name: 'file', accept: 'audio/wav,audio/mpeg,audio/ogg,audio/flac,.wav,.mp3,.ogg,.flac', required: true });
    const name = h('input', { name: 'name', placeholder: 'e.g. welcome', required: true });
    const out = h('div');
    const btn = h('button', { type: 'submit' }, 'Upload');
    const form = h('form', { class: 'inline-form', id: 'upload-prompt' }, field('Audio file', file), field('Name', name), btn, out);
    form.addEventListener('submit', (e) => {
      e.preventDefault();
      act(btn, out, async () => {
        const f = file.files[0];
        const type = f.type || ({ wav: 'audio/wav', mp3: 'audio/mpeg', ogg: 'audio/ogg', flac: 'audio/flac' })[f.name.split('.').pop().toLowerCase()] || 'application/octet-stream';
        const res = await apiRaw('POST', '/ivr/prompts?name=' + enc(name.value), f, type);
        const meta = await res.json();
        toast(`Uploaded ${meta.name} (${fmtDuration(meta.duration_ms)})`);
        await loadPrompts();
        inspect();
      });
    });
    const player = h('div', { class: 'player' });
    mount(promptsPanel, h('h2', {}, 'Prompts'),
      table(st.prompts, [
        { label: 'Name', get: (p) => p.name },
        { label: 'Length', get: (p) => fmtDuration(p.duration_ms) },
        { label: 'Type', get: (p) => p.content_type },
        { label: '', get: (p) => h('button', { type: 'button', class: 'ghost', onclick: () => preview(p.id, player) }, '▶ Preview') },
      ], { empty: 'No recording uploaded; prompts can also be spoken text.' }),
      player, isAdmin ? form : null);
  }

  const urls = [];
  async function preview(id, where) {
    try {
      const res = await apiRaw('GET', '/ivr/prompts/' + enc(id) + '/audio');
      const url = URL.createObjectURL(await res.blob());
      urls.push(url);
      where.querySelector('audio')?.remove();
      const a = h('audio', { controls: true, src: url, class: 'preview' });
      where.append(a);
      a.play().catch(() => {});
    } catch (e) { toast(e.message, 'bad'); }
  }

  // --- routing
  async function loadRouting() {
    try {
      const routes = (await get('/ivr/numbers')).filter((r) => r.flow_id === flowId);
      const numbers = isAdmin ? await get('/numbers').catch(() => []) : [];
      const out = h('div');
      const num = h('input', { name: 'number', list: 'known-numbers', placeholder: '+15550123', required: true });
      const btn = h('button', { type: 'submit' }, 'Route to this flow');
      const form = h('form', { class: 'inline-form', id: 'route-form' }, field('Number', num),
        h('datalist', { id: 'known-numbers' }, numbers.map((n) => h('option', { value: n.number }))), btn, out);
      form.addEventListener('submit', (e) => {
        e.preventDefault();
        act(btn, out, async () => { await put('/ivr/numbers/' + enc(num.value.trim()), { flow_id: flowId }); toast('Routed'); await loadRouting(); });
      });
      mount(routingPanel, h('h2', {}, 'Numbers'),
        routes.length ? h('ul', { class: 'list', id: 'routes' }, routes.map((r) => h('li', {}, r.number, ' ',
          isAdmin ? h('button', { type: 'button', class: 'ghost', onclick: () => act(null, out, async () => { await del('/ivr/numbers/' + enc(r.number)); await loadRouting(); }) }, 'Unroute') : null)))
          : h('p', { class: 'muted' }, 'No number runs this flow.'),
        h('p', { class: 'muted small' }, 'Calls run the live (published) version.'),
        isAdmin ? form : null);
    } catch (e) { mount(routingPanel, h('h2', {}, 'Numbers'), errorBox(e)); }
  }

  const onKey = (e) => {
    if ((e.ctrlKey || e.metaKey) && e.key === 's') { e.preventDefault(); act(saveBtn, topOut, save); }
  };
  const beforeUnload = (e) => { if (st.dirty) { e.preventDefault(); e.returnValue = ''; } };
  document.addEventListener('keydown', onKey);
  window.addEventListener('beforeunload', beforeUnload);

  await loadPrompts();
  await load();
  renderTest();
  await Promise.all([loadVersions(), loadRouting()]);
  return () => {
    document.removeEventListener('keydown', onKey);
    window.removeEventListener('beforeunload', beforeUnload);
    urls.forEach((u) => URL.revokeObjectURL(u));
  };
}
