// The supervisor page: a wallboard of tiles fed by "sources", a live activity feed from
// the events WebSocket, and the team's open cases.
//
// Wallboard sources are the extension point: each is `{ id, title, load() -> [{label,
// value, hint?, kind?}], every? (ms), events? (event types that trigger a reload) }`.
// Today they show what the server measures now (SIP calls, case counts). Queue and
// agent tiles (waiting, longest wait, EWT, service level, abandonment, agent states)
// are added here as sources over the ACD API once it exists — no numbers are invented
// until then.

import { get, qs, enc } from '../api.js';
import { h, mount, fmtTime, errorBox, badge, table } from '../dom.js';
import { onEvent } from '../events.js';

const OPEN = ['new', 'open', 'pending_customer', 'on_hold'];
const label = (s) => s.replace(/_/g, ' ');

export const SOURCES = [
  {
    id: 'calls',
    title: 'Calls (SIP)',
    every: 5000,
    async load() {
      const counters = await get('/sip/metrics');
      const v = (n) => { const c = counters.find((x) => x.name === n); return c ? c.value : null; };
      if (!counters.length) return [{ label: 'SIP', value: 'off', hint: 'no SIP stack in this server' }];
      return [
        { label: 'Active calls', value: v('sip_calls_active'), kind: 'big' },
        { label: 'Calls since start', value: v('sip_calls_started_total') },
        { label: 'Answered', value: v('sip_calls_answered_total') },
        { label: 'Failed', value: v('sip_calls_failed_total') },
      ];
    },
  },
  {
    id: 'cases',
    title: 'Cases',
    events: ['case.created', 'case.status_changed', 'case.updated'],
    async load() {
      const counts = await Promise.all(OPEN.map((s) => get('/cases' + qs({ status: s, limit: 200 }))
        .then((p) => [s, p.items.length + (p.next_cursor ? '+' : '')])));
      return counts.map(([s, n]) => ({ label: label(s), value: n }));
    },
  },
  // acd: { id: 'queues', title: 'Queues', events: ['queue.*'], load: () => get('/queues/stats')... }
  // acd: { id: 'agents', title: 'Agents', events: ['presence.changed'], load: ... }
];

export async function render(main) {
  const board = h('section', { id: 'wallboard', class: 'wallboard', 'aria-label': 'Wallboard' });
  const feed = h('ol', { id: 'activity', class: 'feed' });
  const cases = h('div', { id: 'team-cases' });
  mount(main,
    h('h1', {}, 'Supervisor'),
    board,
    h('p', { class: 'muted small' }, 'Queue and agent tiles appear here when queues and presence are available on this server.'),
    h('div', { class: 'cols' },
      h('section', { class: 'card' }, h('h2', {}, 'Open cases'), cases),
      h('section', { class: 'card' }, h('h2', {}, 'Live activity'), feed)));

  const panels = new Map();
  for (const s of SOURCES) {
    const p = h('div', { class: 'tiles', dataset: { source: s.id } }, h('h2', {}, s.title));
    board.append(p);
    panels.set(s.id, p);
  }
  async function refresh(s) {
    const p = panels.get(s.id);
    try {
      const tiles = await s.load();
      mount(p, h('h2', {}, s.title), h('div', { class: 'tile-row' }, tiles.map((t) =>
        h('div', { class: 'tile ' + (t.kind || ''), title: t.hint || '' }, h('div', { class: 'value' }, t.value === null ? '—' : String(t.value)), h('div', { class: 'label' }, t.label)))));
    } catch (e) {
      mount(p, h('h2', {}, s.title), errorBox(e));
    }
  }
  const timers = SOURCES.filter((s) => s.every).map((s) => setInterval(() => refresh(s), s.every));

  let users = [];
  async function loadCases() {
    try {
      if (!users.length) users = await get('/users');
      const name = (id) => (users.find((u) => u.id === id) || {}).name || '—';
      const pages = await Promise.all(OPEN.map((s) => get('/cases' + qs({ status: s, limit: 50 }))));
      const rows = pages.flatMap((p) => p.items).sort((a, b) => b.number - a.number);
      mount(cases, table(rows, [
        { label: '#', get: (c) => String(c.number) },
        { label: 'Title', get: (c) => c.customer_id ? h('a', { href: '/agent/customers/' + enc(c.customer_id), 'data-link': '' }, c.title) : c.title },
        { label: 'Status', get: (c) => badge(label(c.status), c.status) },
        { label: 'Priority', get: (c) => badge(c.priority, c.priority.toLowerCase()) },
        { label: 'Assignee', get: (c) => name(c.assignee_id) },
        { label: 'Due', get: (c) => h('span', { class: c.sla.resolution_breached ? 'late' : '' }, fmtTime(c.sla.resolution_due_at)) },
      ], { empty: 'No open case.' }));
    } catch (e) {
      mount(cases, errorBox(e));
    }
  }

  function describe(ev) {
    const d = ev.data || {};
    if (ev.type === 'timeline.appended') return `${d.kind || 'interaction'} on ${d.channel || ''}: ${(d.body || '').slice(0, 80)}`;
    if (ev.type.startsWith('case.')) return `case #${d.number || ''} ${d.title || ''} — ${label(d.status || '')}`;
    if (ev.type.startsWith('customer.')) return d.name || '';
    return '';
  }

  const off = onEvent((ev) => {
    if (ev.type === 'connected' || ev.type === 'lagged') { SOURCES.forEach(refresh); loadCases(); return; }
    const ph = feed.querySelector('.placeholder');
    if (ph) ph.remove();
    feed.prepend(h('li', { class: 'fresh' },
      h('span', { class: 'when' }, new Date().toLocaleTimeString()), ' ', badge(ev.type), ' ',
      ev.customer_id ? h('a', { href: '/agent/customers/' + enc(ev.customer_id), 'data-link': '' }, describe(ev) || 'customer') : describe(ev)));
    while (feed.children.length > 50) feed.lastChild.remove();
    for (const s of SOURCES) if (s.events && s.events.includes(ev.type)) refresh(s);
    if (ev.type.startsWith('case.')) loadCases();
  });

  await Promise.all([...SOURCES.map(refresh), loadCases()]);
  if (!feed.children.length) feed.append(h('li', { class: 'muted placeholder' }, 'Waiting for activity…'));
  return () => { off(); timers.forEach(clearInterval); };
}
