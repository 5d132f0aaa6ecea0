// Small DOM helpers: element builder, formatting, feedback. No framework.

/**
 * h('div', {class: 'x', onclick: f, dataset: {id: 1}}, 'text', child, [more])
 * Attributes starting with `on` become listeners; `null`/`false` children are skipped.
 */
export function h(tag, attrs, ...children) {
  const svg = ['svg', 'g', 'rect', 'path', 'text', 'circle', 'line', 'title', 'defs', 'marker', 'polygon'].includes(tag);
  const el = svg ? document.createElementNS('http://www.w3.org/2000/svg', tag) : document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (k === 'dataset') Object.assign(el.dataset, v);
    else if (k === 'value' && !svg) el.value = v;
    else if (k === 'checked' && !svg) el.checked = !!v;
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

/** Replaces the children of `el`. */
export function mount(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

export function fmtTime(ms) {
  if (ms === null || ms === undefined) return '';
  const d = new Date(typeof ms === 'number' ? ms : Date.parse(ms));
  if (Number.isNaN(d.getTime())) return String(ms);
  return d.toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'short' });
}

export function fmtDuration(ms) {
  const s = Math.max(0, Math.round(ms / 1000));
  const m = Math.floor(s / 60);
  return m ? `${m} min ${s % 60} s` : `${s} s`;
}

/** An inline error box for an ApiError (or any Error). */
export function errorBox(e) {
  const field = e && e.field ? h('span', { class: 'muted' }, ` (field ${e.field})`) : null;
  return h('div', { class: 'error', role: 'alert' }, e && e.message ? e.message : String(e), field);
}

/** A transient message in the corner. */
export function toast(text, kind = 'ok') {
  let box = document.getElementById('toasts');
  if (!box) {
    box = h('div', { id: 'toasts', 'aria-live': 'polite' });
    document.body.append(box);
  }
  const t = h('div', { class: 'toast ' + kind }, text);
  box.append(t);
  setTimeout(() => t.remove(), 4000);
}

/**
 * Runs `f` for a form/button, disabling `btn` meanwhile and showing an error in `out`
 * (cleared first). Returns f's result or undefined on error.
 */
export async function act(btn, out, f) {
  if (btn) btn.disabled = true;
  if (out) out.replaceChildren();
  try {
    return await f();
  } catch (e) {
    if (out) out.append(errorBox(e));
    else toast(e.message || String(e), 'bad');
    return undefined;
  } finally {
    if (btn) btn.disabled = false;
  }
}

/** A labelled input. */
export function field(label, input, hint) {
  return h('label', { class: 'field' }, h('span', {}, label), input, hint ? h('small', { class: 'muted' }, hint) : null);
}

/** Form values by `name`. */
export function values(form) {
  const o = {};
  for (const el of form.elements) {
    if (!el.name) continue;
    o[el.name] = el.type === 'checkbox' ? el.checked : el.value;
  }
  return o;
}

/** A simple table: columns [{label, get(row) -> node|string}]. */
export function table(rows, columns, opts = {}) {
  if (!rows.length) return h('p', { class: 'muted' }, opts.empty || 'Nothing here yet.');
  return h('table', { class: 'grid' },
    h('thead', {}, h('tr', {}, columns.map((c) => h('th', { scope: 'col' }, c.label)))),
    h('tbody', {}, rows.map((r) => h('tr', { dataset: opts.rowData ? opts.rowData(r) : {} }, columns.map((c) => h('td', {}, c.get(r)))))));
}

export function badge(text, kind = '') {
  return h('span', { class: 'badge ' + kind }, text);
}
