// The agent desktop: my inbox (cases assigned to me), customer search, and the
// customer screen: identities, open cases (status changes), the timeline with calls'
// IVR trails, notes. Live: events for the customer or my cases reload what they touch.
// The softphone mounts into <section id="softphone"> (see softphone.js); the call bar
// (live-call controls and click-to-call, see callbar.js) into <section id="callbar">.

import { get, post, qs, enc, apiRaw } from '../api.js';
import { h, mount, fmtTime, act, errorBox, badge, toast } from '../dom.js';
import { onEvent } from '../events.js';
import { mountSoftphone } from './phone.js';
import { mountCallBar, clickToCall } from './callbar.js';
import { mountPresence } from './presence.js';
import { mountLiveTranscript, callTranscript } from './transcript.js';
import { callFacts, trailSteps } from './callentry.js';
import { identityLabel, timelineMeta } from './inboxlib.js';

const STATUSES = ['new', 'open', 'pending_customer', 'on_hold', 'resolved', 'closed'];
const OPEN = new Set(['new', 'open', 'pending_customer', 'on_hold']);
const label = (s) => s.replace(/_/g, ' ');

export async function render(main, params, { user }) {
  const inbox = h('section', { id: 'inbox', class: 'card', 'aria-labelledby': 'inbox-h' });
  const search = h('section', { class: 'card', 'aria-labelledby': 'search-h' });
  const phone = h('section', { id: 'softphone', class: 'card softphone', 'aria-label': 'Phone' });
  const detail = h('section', { id: 'customer', class: 'detail', 'aria-live': 'off' });
  let customerId = params.id || null;
  const callbar = h('section', { id: 'callbar', 'aria-label': 'Call controls', hidden: true });
  const presence = h('section', { id: 'presence', class: 'card presence', 'aria-label': 'My presence' });
  const liveText = h('section', { id: 'live-transcript', class: 'card live-transcript', 'aria-label': 'Live transcript', hidden: true });
  mount(main, callbar, liveText, h('div', { class: 'desk' }, h('aside', { class: 'side' }, presence, phone, inbox, search), detail));
  const unmountPresence = mountPresence(presence, { user });

  // Opens a customer's screen in place: the URL follows, but the page (and with it the
  // softphone, which may be ringing) is not rendered again.
  let ringing = null; // the screen pop of a call ringing me: {call_id, caller, queue, customer_id}
  function openCustomer(id) {
    if (!id || id === customerId) return;
    customerId = id;
    history.pushState(null, '', '/agent/customers/' + enc(id));
    loadCustomer();
  }

  // A new call opens the caller's screen (when the number is a known customer).
  const bar = mountCallBar(callbar, {
    user,
    onCall: async (call) => {
      if (!call.customer_number) return;
      try {
        const c = await get('/customers/lookup' + qs({ kind: 'phone', value: call.customer_number }));
        if (c && c.id) openCustomer(c.id);
      } catch { /* an unknown caller: the customer is created when the call ends */ }
    },
  });

  // Live transcript of my own calls (the calls the call bar shows).
  const stopTranscript = mountLiveTranscript(liveText, {
    accept: (callId) => bar.calls().some((c) => c.id === callId),
    describe: (callId) => (bar.calls().find((c) => c.id === callId) || {}).customer_number || null,
  });

  const unmountPhone = mountSoftphone(phone, {
    user,
    bar,
    onCall: (info) => { if (info && info.customer_id) openCustomer(info.customer_id); },
  });

  // --- inbox
  async function loadInbox() {
    try {
      const page = await get('/cases' + qs({ assignee_id: user.id, limit: 100 }));
      const open = page.items.filter((c) => OPEN.has(c.status));
      mount(inbox, h('h2', { id: 'inbox-h' }, 'My work ', badge(String(open.length))),
        open.length ? h('ul', { class: 'list' }, open.map((c) => h('li', {},
          h('a', { href: c.customer_id ? '/agent/customers/' + enc(c.customer_id) : '#', 'data-link': '', class: params.id && params.id === c.customer_id ? 'current' : null },
            h('span', { class: 'num' }, '#' + c.number), ' ', c.title),
          h('div', { class: 'meta' }, badge(label(c.status), c.status), ' ', badge(c.priority, c.priority.toLowerCase()), slaText(c)))))
          : h('p', { class: 'muted' }, 'Nothing assigned to you.'));
    } catch (e) {
      mount(inbox, h('h2', { id: 'inbox-h' }, 'My work'), errorBox(e));
    }
  }

  // --- search
  const q = h('input', { type: 'search', name: 'q', placeholder: 'Name, phone or email  ( / )', 'aria-label': 'Search customers', 'aria-keyshortcuts': '/' });
  const results = h('div', { id: 'search-results' });
  const sform = h('form', { role: 'search' }, q);
  sform.addEventListener('submit', async (e) => {
    e.preventDefault();
    await act(null, results, async () => {
      const page = await get('/customers' + qs({ q: q.value.trim(), limit: 20 }));
      mount(results, page.items.length ? h('ul', { class: 'list' }, page.items.map((c) => h('li', {},
        h('a', { href: '/agent/customers/' + enc(c.id), 'data-link': '' }, c.name || '(no name)'),
        h('div', { class: 'meta' }, c.identities.map((i) => i.value).join(' · ')))))
        : h('p', { class: 'muted' }, 'No customer found.'));
    });
  });
  mount(search, h('h2', { id: 'search-h' }, 'Customers'), sform, results);

  // --- customer screen
  let fresh = new Set();
  async function loadCustomer() {
    if (!customerId) {
      mount(detail, h('div', { class: 'card empty' }, h('h1', {}, `Hello, ${user.name}`),
        h('p', { class: 'muted' }, 'Pick a case from your work, search for a customer, or take a call: the caller\'s screen opens here.')));
      return;
    }
    try {
      const [c, cases, tl] = await Promise.all([
        get('/customers/' + enc(customerId)),
        get('/cases' + qs({ customer_id: customerId, limit: 50 })),
        get('/customers/' + enc(customerId) + '/timeline' + qs({ limit: 50 })),
      ]);
      renderCustomer(c, cases.items, tl.items);
    } catch (e) {
      mount(detail, h('div', { class: 'card' }, h('h1', {}, 'Customer'), errorBox(e)));
    }
  }

  // Click-to-call: Parley rings the agent's phone, then dials the customer.
  const callOut = h('div', { id: 'call-out' });
  function callButton(number) {
    const b = h('button', { type: 'button', class: 'call-btn', 'data-number': number, title: `Call ${number} (your phone rings first)`, 'aria-label': `Call ${number}` }, 'Call');
    b.addEventListener('click', () => act(b, callOut, async () => {
      await clickToCall(number);
      toast(`Calling ${number}: answer your phone`);
      await bar.refresh();
    }));
    return b;
  }

  function renderCustomer(c, cases, items) {
    const open = cases.filter((x) => OPEN.has(x.status));
    const noteOut = h('div');
    const noteBody = h('textarea', { name: 'body', rows: 3, required: true, placeholder: 'Write a note… (n to focus, Ctrl+Enter to add)', 'aria-label': 'Note', 'aria-keyshortcuts': 'n' });
    const noteCase = h('select', { name: 'case_id', 'aria-label': 'Attach to case' },
      h('option', { value: '' }, 'No case'), open.map((x) => h('option', { value: x.id }, `#${x.number} ${x.title}`)));
    const noteBtn = h('button', { type: 'submit', class: 'primary' }, 'Add note');
    const noteForm = h('form', { id: 'note-form', class: 'note-form' }, noteBody, h('div', { class: 'row' }, noteCase, noteBtn), noteOut);
    const submit = () => act(noteBtn, noteOut, async () => {
      await post('/customers/' + enc(c.id) + '/notes', { body: noteBody.value, case_id: noteCase.value || null });
      noteBody.value = '';
      toast('Note added');
      await loadCustomer();
    });
    noteForm.addEventListener('submit', (e) => { e.preventDefault(); submit(); });
    noteBody.addEventListener('keydown', (e) => { if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) { e.preventDefault(); submit(); } });

    const pop = ringing && ringing.customer_id === c.id ? ringing : null;
    mount(detail,
      pop ? h('div', { id: 'screen-pop', class: 'card screen-pop', role: 'status', dataset: { callId: pop.call_id } },
        h('strong', {}, 'Incoming call'), ` from ${pop.caller}`, pop.queue ? ` · queue ${pop.queue}` : '') : null,
      h('div', { class: 'card head' },
        h('h1', { id: 'customer-name' }, c.name || '(no name)'),
        h('div', { class: 'ids' }, c.identities.map((i) => { const l = identityLabel(i); return h('span', { class: 'chip', title: l.title }, h('small', {}, l.kind), ' ', l.value,
          i.kind === 'phone' ? callButton(i.value) : null); })),
        callOut,
        c.merged_into ? h('p', { class: 'warn' }, 'Merged into another customer.') : null),
      h('div', { class: 'cols' },
        h('div', { class: 'card', id: 'open-cases' }, h('h2', {}, 'Open cases ', badge(String(open.length))),
          open.length ? open.map(caseCard) : h('p', { class: 'muted' }, 'No open case.')),
        h('div', { class: 'card' }, h('h2', {}, 'Add a note'), noteForm)),
      h('div', { class: 'card' }, h('h2', {}, 'Timeline'),
        items.length ? h('ol', { class: 'timeline', id: 'timeline' }, items.map(interaction)) : h('p', { class: 'muted' }, 'Nothing on the timeline yet.')));
    fresh = new Set();
  }

  function caseCard(x) {
    const out = h('div');
    const sel = h('select', { 'aria-label': `Status of case #${x.number}` }, STATUSES.map((s) => h('option', { value: s, selected: s === x.status }, label(s))));
    const btn = h('button', { type: 'button' }, 'Update');
    btn.addEventListener('click', () => act(btn, out, async () => {
      if (sel.value === x.status) return;
      await post('/cases/' + enc(x.id) + '/transitions', { status: sel.value });
      toast(`Case #${x.number} is ${label(sel.value)}`);
      await Promise.all([loadCustomer(), loadInbox()]);
    }));
    return h('div', { class: 'case', dataset: { caseId: x.id } },
      h('div', {}, h('strong', {}, `#${x.number} ${x.title}`)),
      h('div', { class: 'meta' }, badge(label(x.status), x.status), ' ', badge(x.priority, x.priority.toLowerCase()), slaText(x),
        x.tags.length ? ' · ' + x.tags.join(', ') : ''),
      h('div', { class: 'row' }, sel, btn), out);
  }

  function interaction(i) {
    let body = i.body;
    let extra = null;
    if (i.kind === 'call') {
      try {
        const b = JSON.parse(i.body);
        body = b.summary || 'Call';
        extra = [callFactsList(b), ivrTrail(b), callTranscript(b)];
      } catch { /* a plain-text call note */ }
    }
    return h('li', { class: 'item ' + i.kind + (fresh.has(i.id) ? ' fresh' : ''), dataset: { id: i.id, kind: i.kind } },
      h('div', { class: 'when' }, fmtTime(i.occurred_at)),
      h('div', { class: 'what' },
        h('div', { class: 'meta' }, badge(i.kind), ' ', timelineMeta(i).join(' · '), i.case_id ? ' · on a case' : ''),
        h('div', { class: 'body' }, body),
        extra,
        attachments(i)));
  }

  // Recordings and voicemail play inline: the audio is fetched with the token
  // (GET /interactions/{id}/attachments/{n}, decrypted by the server, each play
  // audited) into a blob: URL, the only media source the CSP allows besides 'self'.
  const blobUrls = new Set();
  function attachments(i) {
    const list = i.attachments || [];
    if (!list.length) return null;
    return h('div', { class: 'attachments' }, list.map((a, n) => {
      const audio = a.location && String(a.content_type).startsWith('audio/');
      if (!audio) {
        return h('div', { class: 'meta' }, 'Attachment: ', a.name, a.location ? '' : ' (deleted)');
      }
      const slot = h('div', { class: 'player' });
      const btn = h('button', { type: 'button', class: 'ghost play', 'aria-label': `Play ${a.name}` }, '▶ ' + a.name);
      btn.addEventListener('click', () => playAttachment(i.id, n, a.name, slot, btn));
      return h('div', { class: 'recording', dataset: { attachment: String(n) } }, btn, slot);
    }));
  }

  async function playAttachment(id, n, name, slot, btn) {
    btn.disabled = true;
    try {
      const res = await apiRaw('GET', '/interactions/' + enc(id) + '/attachments/' + n);
      const url = URL.createObjectURL(await res.blob());
      blobUrls.add(url);
      const player = h('audio', { controls: true, src: url, class: 'recording-audio', preload: 'metadata' });
      slot.replaceChildren(h('div', { class: 'meta' }, name), player);
      btn.hidden = true;
      player.play().catch(() => {});
    } catch (e) {
      toast(e.message, 'bad');
      btn.disabled = false;
    }
  }

  // Agent, queue, wait / talk / hold, disposition, transfers, supervisors, quality.
  function callFactsList(b) {
    const facts = callFacts(b);
    if (!facts.length) return null;
    return h('dl', { class: 'call-facts' }, facts.map(([k, v]) => h('div', { dataset: { fact: k.toLowerCase() } }, h('dt', {}, k), h('dd', {}, v))));
  }

  // The IVR trail: nodes by their labels, the caller's keys and words between them.
  function ivrTrail(b) {
    const steps = trailSteps(b.ivr_trail);
    if (!steps.length) return null;
    return h('details', { class: 'trail' },
      h('summary', {}, `IVR${b.flow ? ' (flow ' + b.flow + ')' : ''}: `, steps.map((x) => x.text).join(' → ')),
      h('ol', {}, steps.map((x) => h('li', { class: 'trail-' + x.kind, title: x.node || null },
        x.kind === 'input' ? h('kbd', {}, x.text) : x.text))));
  }

  // --- live updates
  const off = onEvent((ev) => {
    if (ev.type === 'connected' || ev.type === 'lagged') { loadInbox(); loadCustomer(); return; }
    // The screen pop: a queue call rings me; its caller's customer (created if new) opens
    // now, while it rings, with a banner until the call is answered elsewhere or ends.
    if (ev.type === 'call.offered' && ev.data && ev.data.agent_id === user.id) {
      ringing = ev.data;
      if (ev.customer_id && ev.customer_id !== customerId) openCustomer(ev.customer_id);
      else loadCustomer();
      return;
    }
    if (ev.type === 'call.ended' && ringing) { ringing = null; loadCustomer(); }
    if (ev.type.startsWith('transcript.')) return; // live lines: the transcript panel, not a reload per utterance
    if (customerId && ev.customer_id === customerId) {
      if (ev.type === 'timeline.appended' && ev.data && ev.data.id) fresh.add(ev.data.id);
      const keep = fresh;
      loadCustomer().then(() => { fresh = keep; markFresh(keep); });
    }
    if (ev.type.startsWith('case.')) loadInbox();
  });

  function markFresh(ids) {
    for (const id of ids) {
      const li = detail.querySelector(`li.item[data-id="${CSS.escape(id)}"]`);
      if (li) li.classList.add('fresh');
    }
  }

  // Keyboard: "/" searches customers, "n" writes a note (when not typing already).
  const onKey = (e) => {
    const typing = /^(INPUT|TEXTAREA|SELECT)$/.test(document.activeElement && document.activeElement.tagName);
    if (typing || e.ctrlKey || e.metaKey || e.altKey) return;
    if (e.key === '/') { e.preventDefault(); q.focus(); }
    if (e.key === 'n') { const t = detail.querySelector('#note-form textarea'); if (t) { e.preventDefault(); t.focus(); } }
  };
  document.addEventListener('keydown', onKey);

  await Promise.all([loadInbox(), loadCustomer()]);
  return () => { off(); unmountPhone(); unmountPresence(); stopTranscript(); bar.stop(); document.removeEventListener('keydown', onKey); blobUrls.forEach((u) => URL.revokeObjectURL(u)); };
}

function slaText(c) {
  const due = c.sla && c.sla.resolution_due_at;
  if (!due || !OPEN.has(c.status)) return '';
  const breached = c.sla.first_response_breached || c.sla.resolution_breached;
  return h('span', { class: breached ? 'late' : 'muted' }, ` · due ${fmtTime(due)}${breached ? ' (SLA breached)' : ''}`);
}

