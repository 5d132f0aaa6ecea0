// The supervisor page: a wallboard fed by "sources", live transcripts and speech alerts,
// a live activity feed from the events WebSocket, and the team's open cases.
//
// Wallboard sources are the extension point: each is `{ id, title, load() -> data,
// view?(data) -> node (default: data is [{label, value, hint?, kind?}] shown as tiles),
// every? (ms), events? (event types that trigger a reload) }`. Sources: SIP call
// counters, case counts, and the ACD's live queues (GET /queues/live: waiting, longest
// wait, EWT, service level, abandonment) and agents (GET /agents/live). Every figure is
// the server's; none is invented here.

import { get, post, qs, enc } from '../api.js';
import { h, mount, fmtTime, errorBox, badge, table, toast } from '../dom.js';
import { onEvent } from '../events.js';
import { clock } from './callbar.js';
import { mountLiveTranscript } from './transcript.js';
import { conversation, shortDuration } from './inboxlib.js';

/** Queue and agent tiles poll the router's live view this often (no event carries
 * waiting times). */
export const ACD_POLL_MS = 2500;

const pct = (x) => (x === null || x === undefined ? '—' : `${Math.round(x * 100)} %`);
const secs = (s) => (s === null || s === undefined ? '—' : s < 60 ? `${s} s` : `${Math.floor(s / 60)} min ${s % 60} s`);
const PRESENCE_LABEL = { offline: 'offline', available: 'available', ringing: 'ringing', on_call: 'on a call', wrap_up: 'wrap-up', away: 'away' };
const PRESENCE_KIND = { available: 'ok', ringing: 'late', on_call: 'late', wrap_up: 'pending_customer', away: 'pending_customer', offline: '' };
let directory = null; // users, for agents' names (loaded once per page)

/** Calls are not published on the events WebSocket: the live-calls panel polls the
 * in-memory call registry (GET /calls) this often, and right after each action. */
export const CALLS_POLL_MS = 2000;

const MODES = [
  ['listen', 'Listen', 'hear both parties, heard by nobody'],
  ['whisper', 'Whisper', 'heard by the agent only'],
  ['barge', 'Barge', 'heard by both'],
];
const MODE_LABEL = { listen: 'listening', whisper: 'whispering', barge: 'barged in', full: 'talking' };

const OPEN = ['new', 'open', 'pending_customer', 'on_hold'];

/** What a live-activity event is, in words (the raw type stays in the title). */
export const EVENT_LABELS = {
  'case.created': 'New case',
  'case.updated': 'Case updated',
  'case.status_changed': 'Case status changed',
  'customer.created': 'New customer',
  'customer.updated': 'Customer updated',
  'customer.merged': 'Customers merged',
  'customer.erased': 'Customer erased',
  'timeline.appended': 'Timeline entry',
  'note.mentioned': 'Mentioned in a note',
  'agent.presence_changed': 'Agent presence',
  'call.offered': 'Call ringing an agent',
  'call.ended': 'Call ended',
  'callback.changed': 'Callback',
  'queue.created': 'Queue created',
  'queue.updated': 'Queue changed',
  'queue.deleted': 'Queue deleted',
  'speech.settings_changed': 'Speech settings changed',
  'transcript.alert': 'Speech alert',
  'conversation.opened': 'New conversation',
  'conversation.message': 'Conversation message',
  'conversation.assigned': 'Conversation assigned',
  'conversation.status_changed': 'Conversation status changed',
  'conversation.mentioned': 'Mentioned in a conversation note',
};

/** A human name for any event type: known ones from the table, others made readable. */
export function eventLabel(type) {
  if (EVENT_LABELS[type]) return EVENT_LABELS[type];
  const words = String(type).replace(/[._]/g, ' ').trim();
  return words.charAt(0).toUpperCase() + words.slice(1);
}
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
        // A 407 challenge and the caller's retry with credentials are one call.
        { label: 'Calls since start', value: v('sip_calls_started_total') === null ? null : v('sip_calls_started_total') - (v('sip_calls_challenged_total') || 0) },
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
  {
    id: 'queues',
    title: 'Queues (live)',
    every: ACD_POLL_MS,
    events: ['queue.created', 'queue.updated', 'queue.deleted'],
    load: () => get('/queues/live'),
    view: (rows) => table([...rows].sort((a, b) => a.name.localeCompare(b.name)), [
      { label: 'Queue', get: (q) => h('strong', {}, q.name) },
      { label: 'Waiting', get: (q) => h('span', { class: 'big-num' + (q.waiting ? ' late' : '') }, String(q.waiting)), },
      { label: 'Longest wait', get: (q) => secs(q.longest_wait_s) },
      { label: 'EWT', get: (q) => h('span', { title: `estimated wait of a new caller (AHT ${secs(q.aht_s)})` }, secs(q.estimated_wait_s)) },
      { label: 'SL', get: (q) => h('span', { title: 'answered within the threshold, last 100 calls' }, pct(q.service_level)) },
      { label: 'Abandoned', get: (q) => pct(q.abandonment_rate) },
      { label: 'Agents free / staffed', get: (q) => `${q.agents_free} / ${q.agents_staffed}` },
      { label: 'In progress', get: (q) => String(q.in_progress) },
    ], { empty: h('span', { class: 'muted' }, 'No queue yet: create one in ', h('a', { href: '/admin/queues', 'data-link': '' }, 'Admin → Queues'), ' (an IVR enqueue node sends calls to a queue by its name).'), rowData: (q) => ({ queueId: q.queue_id, name: q.name }) }),
  },
  {
    // Chats and every other text channel (issue 17): what waits in the unified inbox.
    id: 'chats',
    title: 'Conversations',
    every: 5000,
    events: ['conversation.opened', 'conversation.updated', 'conversation.assigned', 'conversation.status_changed', 'conversation.message'],
    async load() {
      const all = [];
      for (const status of ['open', 'pending']) {
        let cursor = null;
        for (let i = 0; i < 10; i++) {
          const page = await get('/conversations' + qs({ status, cursor }));
          const items = Array.isArray(page) ? page : page.items || [];
          all.push(...items.map(conversation));
          cursor = Array.isArray(page) ? null : page.next_cursor;
          if (!cursor) break;
        }
      }
      const now = Date.now();
      const waits = all.filter((c) => c.waitingSince).map((c) => now - c.waitingSince);
      const longest = waits.length ? Math.max(...waits) : null;
      return [
        { label: 'Open', value: all.filter((c) => c.status === 'open').length, kind: 'big' },
        { label: 'Pending', value: all.filter((c) => c.status === 'pending').length },
        { label: 'Unassigned', value: all.filter((c) => !c.assignee).length, kind: all.some((c) => !c.assignee) ? 'late' : '' },
        { label: 'Waiting for a reply', value: waits.length },
        { label: 'Longest wait', value: longest === null ? '—' : shortDuration(longest) },
        { label: 'Web chats', value: all.filter((c) => c.channel === 'web_chat').length },
      ];
    },
  },
  {
    id: 'agents',
    title: 'Agents (live)',
    every: ACD_POLL_MS,
    events: ['agent.presence_changed', 'agent.activity'],
    async load() {
      if (!directory) directory = await get('/users');
      return get('/agents/live');
    },
    view: (rows) => {
      const name = (id) => ((directory || []).find((u) => u.id === id) || {}).name || id;
      const sorted = [...rows].sort((a, b) => name(a.user_id).localeCompare(name(b.user_id)));
      const counts = {};
      for (const r of rows) counts[r.presence] = (counts[r.presence] || 0) + 1;
      return [
        h('div', { class: 'meta' }, Object.keys(PRESENCE_LABEL).filter((k) => counts[k]).map((k) => `${PRESENCE_LABEL[k]}: ${counts[k]}`).join(' · ') || ''),
        table(sorted, [
          { label: 'Agent', get: (r) => name(r.user_id) },
          { label: 'State', get: (r) => [badge(PRESENCE_LABEL[r.presence] || r.presence, PRESENCE_KIND[r.presence] || ''),
            r.reason ? h('span', { class: 'muted small' }, ' ' + r.reason) : null,
            r.until ? h('span', { class: 'muted small' }, ' until ' + new Date(r.until).toLocaleTimeString()) : null] },
        ], { empty: 'No agent known to the router.', rowData: (r) => ({ userId: r.user_id, presence: r.presence }) }),
      ];
    },
  },
];

export async function render(main, _params, { user }) {
  const board = h('section', { id: 'wallboard', class: 'wallboard', 'aria-label': 'Wallboard' });
  const live = h('section', { id: 'live-calls', class: 'card', 'aria-labelledby': 'live-calls-h' });
  const feed = h('ol', { id: 'activity', class: 'feed' });
  const cases = h('div', { id: 'team-cases' });
  const transcripts = h('section', { id: 'sup-transcript', class: 'card live-transcript', 'aria-label': 'Live transcripts and alerts', hidden: true });
  mount(main,
    h('h1', {}, 'Supervisor'),
    transcripts,
    board,
    live,
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
      const data = await s.load();
      if (s.view) { mount(p, h('h2', {}, s.title), s.view(data)); return; }
      const tiles = data;
      mount(p, h('h2', {}, s.title), h('div', { class: 'tile-row' }, tiles.map((t) =>
        h('div', { class: 'tile ' + (t.kind || ''), title: t.hint || '' }, h('div', { class: 'value' }, t.value === null ? '—' : String(t.value)), h('div', { class: 'label' }, t.label)))));
    } catch (e) {
      mount(p, h('h2', {}, s.title), errorBox(e));
    }
  }
  const timers = SOURCES.filter((s) => s.every).map((s) => setInterval(() => refresh(s), s.every));

  let users = [];
  const stopTranscript = mountLiveTranscript(transcripts, {
    alerts: true,
    title: 'Live transcripts and alerts',
    describe: (callId) => (calls.find((c) => c.id === callId) || {}).customer_number || null,
  });
  const userName = (id) => (users.find((u) => u.id === id) || {}).name || null;

  // --- active calls, with listen / whisper / barge / take over
  let calls = [];
  let fetchedAt = Date.now();
  let callsError = null;
  const errors = new Map(); // call id -> the last refused action's error
  const pending = new Map(); // call id -> the action in flight
  async function loadCalls() {
    try {
      if (!users.length) users = await get('/users');
      calls = await get('/calls');
      fetchedAt = Date.now();
      callsError = null;
    } catch (e) {
      callsError = e;
    }
    for (const id of [...errors.keys()]) if (!calls.some((c) => c.id === id)) errors.delete(id);
    renderCalls();
  }
  async function supervise(call, action) {
    if (pending.has(call.id)) return;
    pending.set(call.id, action);
    errors.delete(call.id);
    renderCalls();
    try {
      await post('/calls/' + enc(call.id) + '/actions', { action });
      toast({ listen: 'Listening to', whisper: 'Whispering to the agent on', barge: 'Barged in on', take_over: 'You took over' }[action] + ' ' + call.customer_number);
    } catch (e) {
      errors.set(call.id, e);
    } finally {
      pending.delete(call.id);
    }
    await loadCalls();
  }
  function renderCalls() {
    const focused = document.activeElement && live.contains(document.activeElement) ? document.activeElement.dataset.focus : null;
    const since = (Date.now() - fetchedAt) / 1000;
    const timer = (base) => h('span', { class: 'timer', dataset: { base: String(base), at: String(fetchedAt) } }, clock(base + since));
    const legName = (l) => (l.user_id && userName(l.user_id)) || l.address;
    const row = (c) => {
      const mine = c.legs.find((l) => l.role === 'supervisor' && l.user_id === user.id);
      const busy = pending.get(c.id);
      const agent = c.legs.find((l) => l.role === 'agent');
      const buttons = MODES.map(([mode, label, hint]) => {
        const on = !!mine && mine.mode === mode;
        const b = h('button', {
          type: 'button', class: on ? 'mode on' : 'mode', 'data-action': mode, 'data-focus': c.id + ':' + mode,
          'aria-pressed': String(on), title: label + ': ' + hint, disabled: !!busy || !agent || null,
        }, label);
        b.addEventListener('click', () => supervise(c, mode));
        return b;
      });
      const take = h('button', {
        type: 'button', class: 'danger', 'data-action': 'take_over', 'data-focus': c.id + ':take_over',
        title: mine ? 'Take over: you replace the agent, who is hung up' : 'Listen, whisper or barge first: take over replaces the agent with your phone',
        disabled: !!busy || !mine || !agent || null,
      }, 'Take over');
      take.addEventListener('click', () => supervise(c, 'take_over'));
      const err = errors.get(c.id);
      return h('tr', { dataset: { callId: c.id, state: c.state } },
        h('td', {}, h('strong', {}, c.customer_number || 'unknown'), h('div', { class: 'meta' }, c.direction)),
        h('td', {}, badge(c.state, 'call-' + c.state), c.held ? [' ', badge('held', 'late')] : null, c.muted ? [' ', badge('agent muted', 'late')] : null),
        h('td', { class: 'num' }, timer(c.duration_s), c.talk_s !== null && c.talk_s !== undefined ? h('div', { class: 'meta' }, 'talk ', timer(c.talk_s)) : null),
        h('td', {}, h('ul', { class: 'legs' }, c.legs.map((l) => h('li', { dataset: { role: l.role, mode: l.mode } },
          h('small', {}, l.role), ' ', legName(l), l.user_id === user.id ? ' (you)' : '', ' ',
          badge(l.state === 'ringing' ? 'ringing' : l.mode, 'mode-' + (l.state === 'ringing' ? 'ringing' : l.mode)))))),
        h('td', { class: 'supervise' },
          h('div', { class: 'my-mode', 'aria-live': 'polite' },
            busy ? h('span', { class: 'muted' }, busy === 'take_over' ? 'Taking over…' : mine ? 'Switching…' : 'Ringing your phone…')
              : mine ? ['You: ', badge(mine.state === 'ringing' ? 'your phone rings' : MODE_LABEL[mine.mode] || mine.mode, 'ok')]
                : h('span', { class: 'muted' }, 'Not monitoring')),
          h('div', { class: 'row' }, buttons, take),
          err ? errorBox(err) : null,
          err && /registered phone|no extension/.test(err.message) ? h('p', { class: 'small muted' }, 'Give yourself an extension (Admin → Users) and register a SIP phone on it: Parley calls it to join you to the call.') : null));
    };
    mount(live, h('h2', { id: 'live-calls-h' }, 'Active calls ', badge(String(calls.length))),
      callsError ? errorBox(callsError) : null,
      calls.length ? h('table', { class: 'grid calls' },
        h('thead', {}, h('tr', {}, ['Caller', 'State', 'Duration', 'Parties and modes', 'Supervise'].map((t) => h('th', { scope: 'col' }, t)))),
        h('tbody', {}, calls.map(row)))
        : h('p', { class: 'muted' }, 'No call in progress.'),
      h('p', { class: 'muted small' }, 'Listen, whisper and barge ring your own phone (your extension) and join it to the call; later clicks switch its mode.'));
    if (focused) {
      const again = live.querySelector(`[data-focus="${CSS.escape(focused)}"]`);
      if (again && !again.disabled) again.focus();
    }
  }
  const tick = setInterval(() => {
    for (const t of live.querySelectorAll('.timer')) t.textContent = clock(Number(t.dataset.base) + (Date.now() - Number(t.dataset.at)) / 1000);
  }, 1000);
  const callsPoll = setInterval(loadCalls, CALLS_POLL_MS);

  async function loadCases() {
    try {
      if (!users.length) users = await get('/users');
      const name = (id) => userName(id) || '—';
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
    if (ev.type === 'connected' || ev.type === 'lagged') { SOURCES.forEach(refresh); loadCases(); loadCalls(); return; }
    if (ev.type === 'transcript.segment') return; // shown in the transcript panel, too many for the feed
    const ph = feed.querySelector('.placeholder');
    if (ph) ph.remove();
    feed.prepend(h('li', { class: 'fresh' },
      h('span', { class: 'when' }, new Date().toLocaleTimeString()), ' ', h('span', { class: 'badge', title: ev.type, dataset: { type: ev.type } }, eventLabel(ev.type)), ' ',
      ev.customer_id ? h('a', { href: '/agent/customers/' + enc(ev.customer_id), 'data-link': '' }, describe(ev) || 'customer') : describe(ev)));
    while (feed.children.length > 50) feed.lastChild.remove();
    for (const s of SOURCES) if (s.events && s.events.includes(ev.type)) refresh(s);
    if (ev.type.startsWith('case.')) loadCases();
  });

  await Promise.all([...SOURCES.map(refresh), loadCases(), loadCalls()]);
  if (!feed.children.length) feed.append(h('li', { class: 'muted placeholder' }, 'Waiting for activity…'));
  return () => { off(); stopTranscript(); timers.forEach(clearInterval); clearInterval(tick); clearInterval(callsPoll); };
}
