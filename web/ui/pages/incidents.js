// Incidents (issue #21): `/incidents` — a board by status, a form to open one, and (for
// agents and up) the recurrence suggestions with their conversations ready to link;
// `/incidents/{id}` — the incident: status moves, cadence timer, Slack channel, linked
// cases and conversations with the affected-customer count, the timeline (notes,
// public updates, status changes, Slack notes), the update composer with a preview per
// channel, and each public update's delivery per customer. Engineers see all of it but
// the public-update switch and the suggestions. Live: `incident.*` events reload.

import { get, post, enc } from '../api.js';
import { h, mount, fmtTime, act, badge, errorBox, table, toast } from '../dom.js';
import { onEvent } from '../events.js';

export const STATUSES = ['investigating', 'identified', 'monitoring', 'resolved', 'post_mortem'];
const LABEL = {
  investigating: 'Investigating', identified: 'Identified', monitoring: 'Monitoring',
  resolved: 'Resolved', post_mortem: 'Post-mortem',
};
// The moves the status machine allows (cases/src/incidents.rs `transition`).
const NEXT = {
  investigating: ['identified', 'monitoring', 'resolved'],
  identified: ['investigating', 'monitoring', 'resolved'],
  monitoring: ['investigating', 'identified', 'resolved'],
  resolved: ['post_mortem', 'investigating', 'identified'],
  post_mortem: [],
};

const isAgent = (user) => user && user.role !== 'engineer';

/** "due in 42 min" / "overdue by 5 min" / "no cadence" at `now` (ms). */
export function cadenceText(cadence, now) {
  if (!cadence || !cadence.due_at) return 'No update due';
  const due = Date.parse(cadence.due_at);
  const min = Math.round(Math.abs(due - now) / 60000);
  return due >= now ? `Next update due in ${min} min` : `Update overdue by ${min} min`;
}

/** The text a customer named `name` receives (mirror of `incidents::personalise`). */
export function personalise(name, title, text) {
  const first = (name || '').trim().split(/\s+/)[0];
  return `${first ? 'Hi ' + first : 'Hello'}, an update on "${title}": ${text}`;
}

export async function render(main, params, { user, navigate }) {
  const reload = params.id ? () => detail(main, params.id, user) : () => board(main, user, navigate);
  await reload();
  let timer = null;
  const off = onEvent((ev) => {
    if (!ev.type || !ev.type.startsWith('incident.')) return;
    clearTimeout(timer);
    timer = setTimeout(reload, 200);
  });
  // The cadence timer counts down in the page.
  const tick = setInterval(() => {
    const el = main.querySelector('[data-cadence]');
    if (el) el.textContent = cadenceText(JSON.parse(el.dataset.cadence), Date.now());
  }, 15000);
  return () => { off(); clearInterval(tick); clearTimeout(timer); };
}

async function board(main, user, navigate) {
  const list = await get('/incidents');
  const out = h('div');
  const form = h('form', { class: 'inline', id: 'new-incident', onsubmit: async (e) => {
    e.preventDefault();
    const body = { title: form.elements.title.value, severity: form.elements.severity.value };
    const made = await act(form.querySelector('button'), out, () => post('/incidents', body));
    if (made) navigate('/incidents/' + made.id);
  } },
  h('input', { name: 'title', placeholder: 'What is wrong?', required: true, 'aria-label': 'Title', size: 40 }),
  h('select', { name: 'severity', 'aria-label': 'Severity' }, ['P0', 'P1', 'P2', 'P3'].map((p) => h('option', { value: p, selected: p === 'P1' }, p))),
  h('button', { type: 'submit' }, 'Open incident'));
  const columns = STATUSES.map((s) => {
    const items = list.filter((i) => i.status === s);
    return h('section', { class: 'card incident-col', 'data-status': s },
      h('h2', {}, `${LABEL[s]} `, badge(String(items.length))),
      items.length ? items.map((i) => h('a', { class: 'incident-card', href: '/incidents/' + i.id, 'data-link': '' },
        badge(i.severity, i.severity === 'P0' || i.severity === 'P1' ? 'bad' : ''), ' ', h('strong', {}, i.title),
        h('div', { class: 'muted' }, 'since ', fmtTime(i.started_at)))) : h('p', { class: 'muted' }, 'None'));
  });
  mount(main, h('h1', {}, 'Incidents'), form, out,
    h('div', { class: 'incident-board' }, columns),
    isAgent(user) ? await suggestions(navigate) : null);
}

async function suggestions(navigate) {
  let s;
  try { s = await get('/incidents/suggestions'); } catch (e) { return errorBox(e); }
  const items = [];
  for (const b of s.bursts) {
    const out = h('span');
    const btn = h('button', { type: 'button', onclick: () => act(btn, out, async () => {
      const made = await post('/incidents', { title: 'Reports: ' + b.terms.join(' '), severity: 'P2' });
      await post(`/incidents/${enc(made.id)}/links`, { case_ids: [], conversation_ids: b.conversation_ids });
      navigate('/incidents/' + made.id);
    }) }, `Open incident and link ${b.conversation_ids.length}`);
    items.push(h('li', { class: 'suggestion' }, h('strong', {}, b.terms.join(', ') || 'similar messages'),
      ` — ${b.customers} customers, ${b.conversation_ids.length} conversations `, btn, out));
  }
  for (const r of s.reopens) {
    items.push(h('li', { class: 'suggestion' }, 'Symptoms are back: ',
      h('a', { href: '/incidents/' + r.incident_id, 'data-link': '' }, 'a resolved incident'),
      ` (${r.conversation_ids.length} conversations) — consider reopening it`));
  }
  for (const r of s.repeats) {
    items.push(h('li', { class: 'suggestion' }, `A customer is back with the same problem (${r.conversation_ids.length} conversations)`));
  }
  return h('section', { class: 'card', id: 'suggestions' }, h('h2', {}, 'Suggestions'),
    items.length ? h('ul', {}, items) : h('p', { class: 'muted' }, 'Nothing unusual in the last day.'));
}

async function detail(main, id, user) {
  const inc = await get('/incidents/' + enc(id));
  const out = h('div');
  const statusButtons = NEXT[inc.status].map((to) => {
    const b = h('button', { type: 'button', 'data-to': to, onclick: () => act(b, out, async () => {
      await post(`/incidents/${enc(id)}/status`, { status: to });
      await detail(main, id, user);
    }) }, 'Move to ' + LABEL[to]);
    return b;
  });
  const swarm = inc.slack_channel_name
    ? h('span', {}, 'Slack: #', inc.slack_channel_name)
    : (() => {
      const b = h('button', { type: 'button', onclick: () => act(b, out, async () => {
        const r = await post(`/incidents/${enc(id)}/swarm`);
        toast(r.queued ? 'Swarm channel on its way' : 'Slack is not connected, or the channel exists');
      }) }, 'Swarm in Slack');
      return b;
    })();
  const customers = new Set(inc.links.map((l) => l.customer_id).filter(Boolean));
  const linkForm = h('form', { class: 'inline', onsubmit: async (e) => {
    e.preventDefault();
    const ids = (s) => s.split(/[\s,]+/).filter(Boolean);
    await act(linkForm.querySelector('button'), out, () => post(`/incidents/${enc(id)}/links`,
      { case_ids: ids(linkForm.elements.cases.value), conversation_ids: ids(linkForm.elements.conversations.value) }));
    await detail(main, id, user);
  } },
  h('input', { name: 'conversations', placeholder: 'conversation ids', 'aria-label': 'Conversation ids to link' }),
  h('input', { name: 'cases', placeholder: 'case ids', 'aria-label': 'Case ids to link' }),
  h('button', { type: 'submit' }, 'Link'));

  const text = h('textarea', { name: 'text', rows: 3, cols: 60, required: true, 'aria-label': 'Update text', placeholder: 'Write an internal note or a public update' });
  const pub = h('input', { type: 'checkbox', name: 'public' });
  const channels = [...new Set(inc.links.filter((l) => l.kind === 'conversation').map((l) => l.label).filter(Boolean))];
  const preview = h('div', { class: 'preview', 'aria-live': 'polite' });
  const showPreview = () => {
    if (!pub.checked || !text.value.trim()) { preview.replaceChildren(); return; }
    mount(preview, h('h3', {}, `Preview — to ${customers.size} customers`),
      (channels.length ? channels : ['web_chat']).map((c) => h('div', { class: 'preview-msg', 'data-channel': c },
        h('span', { class: 'muted' }, c + ': '), personalise('Ann Example', inc.title, text.value.trim()))));
  };
  text.addEventListener('input', showPreview);
  pub.addEventListener('change', showPreview);
  const composer = h('form', { id: 'composer', onsubmit: async (e) => {
    e.preventDefault();
    const r = await act(composer.querySelector('button'), out, () => post(`/incidents/${enc(id)}/updates`,
      { text: text.value, public: pub.checked }));
    if (r) {
      toast(r.entry.public ? `Update sent to ${r.deliveries.length} customers` : 'Note added');
      await detail(main, id, user);
    }
  } },
  text,
  isAgent(user) ? h('label', { class: 'check' }, pub, ' Public update (sent to every affected customer)') : h('p', { class: 'muted' }, 'Engineers write internal notes; agents send the public updates.'),
  preview,
  h('button', { type: 'submit' }, 'Post'));

  const deliveries = inc.deliveries.reduce((m, d) => {
    const k = `${d.channel} · ${d.status || 'pending'}`;
    m[k] = (m[k] || 0) + 1;
    return m;
  }, {});
  mount(main,
    h('p', {}, h('a', { href: '/incidents', 'data-link': '' }, '← All incidents')),
    h('h1', {}, badge(inc.severity, inc.severity === 'P0' || inc.severity === 'P1' ? 'bad' : ''), ' ', inc.title),
    h('p', { class: 'incident-meta' },
      h('strong', { id: 'incident-status' }, LABEL[inc.status]), ' · started ', fmtTime(inc.started_at),
      inc.resolved_at ? [' · resolved ', fmtTime(inc.resolved_at)] : null,
      ' · ', h('span', { id: 'affected' }, `${customers.size} affected customers`),
      ' · ', h('span', { 'data-cadence': JSON.stringify(inc.cadence), class: inc.cadence.overdue ? 'bad' : '' }, cadenceText(inc.cadence, Date.now())),
      inc.services.length ? [' · ', inc.services.join(', ')] : null),
    h('div', { class: 'inline' }, statusButtons, ' ', swarm),
    out,
    h('div', { class: 'incident-detail' },
      h('section', { class: 'card' }, h('h2', {}, 'Timeline'),
        h('ol', { class: 'incident-timeline' }, inc.timeline.map((e) => h('li', { 'data-kind': e.kind },
          h('span', { class: 'muted' }, fmtTime(e.created_at), ' '),
          badge(e.kind === 'update' ? (e.public ? 'public update' : 'update') : e.source === 'slack' ? 'Slack' : e.kind),
          ' ', e.text))),
        composer),
      h('section', { class: 'card' }, h('h2', {}, `Linked (${inc.links.length})`),
        table(inc.links, [
          { label: 'Kind', get: (l) => l.kind },
          { label: 'Item', get: (l) => l.kind === 'conversation' && isAgent(user) ? h('a', { href: '/inbox/' + l.id, 'data-link': '' }, l.label || l.id) : (l.label || l.id) },
          { label: 'Status', get: (l) => l.status || '' },
        ], { empty: 'Nothing linked yet.' }),
        linkForm,
        h('h2', {}, 'Deliveries'),
        Object.keys(deliveries).length
          ? h('ul', { id: 'deliveries' }, Object.entries(deliveries).map(([k, n]) => h('li', {}, `${k}: ${n}`)))
          : h('p', { class: 'muted' }, 'No public update yet.'))));
}
