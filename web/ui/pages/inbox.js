// The unified inbox (issue 17): every channel's conversations in one list (channel icon,
// customer, last message, waiting time, SLA countdown, priority) with filters (mine,
// unassigned, team, all, channel, status, priority); the open conversation beside the
// customer's open cases and timeline; a reply box with canned responses (`/shortcut`
// or the picker, placeholders filled from the customer and the agent) and internal
// notes with @mentions; keyboard shortcuts (`?` lists them); live over the events
// WebSocket; a desktop notification and a chime when a conversation is newly assigned
// to me, or a note mentions me. Supervisors see every conversation.
//
// Every text from a customer (or anyone) is put in the page as text (dom.js `h` makes
// text nodes), never as HTML.

import { get, post, qs, enc } from '../api.js';
import { h, mount, fmtTime, act, errorBox, badge, toast } from '../dom.js';
import { onEvent } from '../events.js';
import { mountOffers } from './offers.js';
import { copyFields, mailThreadButton } from './mailthread.js';
import {
  CHANNELS, STATUSES, PRIORITIES, DEFAULT_INTENTS, conversation, message, passes, listQuery, compare, waiting,
  slaCountdown, placeholderValues, renderCanned, mentions, mentionAt, cannedAt, identityLabel, timelineMeta,
} from './inboxlib.js';

const FILTERS_KEY = 'parley.inbox.filters';
const ACTIVE = new Set(['open', 'pending', 'snoozed']);
const CASE_OPEN = new Set(['new', 'open', 'pending_customer', 'on_hold']);
const label = (s) => String(s).replace(/_/g, ' ');
/** How often waiting times and SLA countdowns are redrawn. */
const TICK_MS = 5000;
/** The most list pages read at once (the API pages with a cursor). */
const MAX_PAGES = 5;

const SHORTCUTS = [
  ['j / ↓', 'next conversation'],
  ['k / ↑', 'previous conversation'],
  ['r', 'reply to the customer'],
  ['n', 'write an internal note'],
  ['c', 'insert a canned response'],
  ['/word', 'in an empty reply box: canned response by shortcut (Tab inserts)'],
  ['@name', 'in a note: mention a colleague (Tab completes)'],
  ['Ctrl+Enter', 'send the reply or add the note'],
  ['a', 'assign the conversation to me'],
  ['e', 'resolve the conversation'],
  ['Esc', 'leave the reply box, close the picker'],
  ['?', 'show or hide these shortcuts'],
];

export async function render(main, params, { user }) {
  const supervisor = user.role === 'supervisor' || user.role === 'admin';
  const me = { id: user.id, email: user.email, teamIds: new Set(), teamMates: new Set([user.id]) };
  const filters = loadFilters(supervisor);
  let openId = params.id || null;
  let list = []; // conversation() objects the server gave, before filtering
  let shown = []; // after filtering and sorting
  let detail = null; // { conv, messages, customer, cases, timeline }
  let canned = [];
  let policies = {};
  const directory = new Map([[user.id, { id: user.id, name: user.name, handle: String(user.email || '').split('@')[0] }]]);
  const customers = new Map(); // id -> Promise<customer>
  const knownAssignee = new Map(); // conversation id -> assignee id, for "newly assigned to me"
  const selfAssigned = new Set(); // conversations I assigned to myself (no notification)
  let listLoaded = false;
  let disposed = false;

  const listBox = h('ul', { id: 'conversations', class: 'conv-list', 'aria-label': 'Conversations' });
  const listCount = badge('0');
  const listErr = h('div');
  const filterBar = h('div', { id: 'inbox-filters', class: 'inbox-filters' });
  const notifyBtn = h('button', { type: 'button', id: 'notify-on', class: 'ghost small', hidden: true }, 'Turn on desktop notifications');
  const listPane = h('section', { id: 'conv-pane', class: 'card inbox-list', 'aria-labelledby': 'inbox-h' },
    h('div', { class: 'row' }, h('h1', { id: 'inbox-h' }, 'Inbox ', listCount), h('span', { class: 'spacer' }),
      h('button', { type: 'button', class: 'ghost small', id: 'shortcuts-btn', 'aria-keyshortcuts': '?', title: 'Keyboard shortcuts (?)' }, '⌨ ?')),
    notifyBtn, filterBar, listErr, listBox);
  const thread = h('section', { id: 'conversation', class: 'card inbox-thread', 'aria-label': 'Conversation' });
  const context = h('aside', { id: 'conv-context', class: 'inbox-context', 'aria-label': 'Customer' });
  const help = h('div', { id: 'shortcuts', class: 'card shortcuts', role: 'dialog', 'aria-label': 'Keyboard shortcuts', hidden: true },
    h('h2', {}, 'Keyboard shortcuts'),
    h('dl', {}, SHORTCUTS.map(([k, v]) => h('div', {}, h('dt', {}, h('kbd', {}, k)), h('dd', {}, v)))),
    h('button', { type: 'button', onclick: () => { help.hidden = true; } }, 'Close'));
  // Chats, emails and messages the router offers me: accept opens the conversation.
  const offers = mountOffers({ me, onAccepted: (item) => acceptedOffer(item) });
  listPane.insertBefore(offers.el, filterBar);
  mount(main, help, h('div', { class: 'inbox' }, listPane, thread, context));
  listPane.querySelector('#shortcuts-btn').addEventListener('click', () => { help.hidden = !help.hidden; });

  // --- desktop notifications and the chime
  const canNotify = typeof window.Notification === 'function';
  function showNotifyButton() { notifyBtn.hidden = !canNotify || Notification.permission !== 'default'; }
  notifyBtn.addEventListener('click', async () => {
    try { await Notification.requestPermission(); } catch { /* refused */ }
    showNotifyButton();
  });
  showNotifyButton();
  let audio = null;
  // Browsers start audio only after a user gesture: the first click or key unlocks it.
  const unlock = () => {
    try {
      if (!audio) audio = new (window.AudioContext || window.webkitAudioContext)();
      if (audio.state === 'suspended') audio.resume();
    } catch { /* no audio */ }
  };
  document.addEventListener('pointerdown', unlock);
  document.addEventListener('keydown', unlock);
  function chime() {
    try {
      if (!audio) audio = new (window.AudioContext || window.webkitAudioContext)();
      const t = audio.currentTime;
      for (const [i, f] of [[0, 880], [1, 1320]]) {
        const o = audio.createOscillator();
        const g = audio.createGain();
        o.frequency.value = f;
        g.gain.setValueAtTime(0.0001, t + i * 0.16);
        g.gain.exponentialRampToValueAtTime(0.2, t + i * 0.16 + 0.02);
        g.gain.exponentialRampToValueAtTime(0.0001, t + i * 0.16 + 0.15);
        o.connect(g).connect(audio.destination);
        o.start(t + i * 0.16);
        o.stop(t + i * 0.16 + 0.16);
      }
    } catch { /* no audio */ }
  }
  function notify(title, body, tag, onclick) {
    chime();
    toast(`${title}: ${body}`);
    if (canNotify && Notification.permission === 'granted') {
      try {
        const n = new Notification(title, { body, tag });
        n.onclick = () => { window.focus(); if (onclick) onclick(); n.close(); };
      } catch { /* not allowed here */ }
    }
  }

  /** An accepted offer: the conversation it routes (now mine) is opened. */
  async function acceptedOffer(item) {
    await loadList();
    const c = list.find((x) => x.raw.work_item_id === item.id);
    if (c) { selfAssigned.add(c.id); open(c.id); }
  }

  // --- filters
  function filterControls() {
    const views = [['all', supervisor ? 'All' : 'All I see'], ['mine', 'Mine'], ['unassigned', 'Unassigned'], ['team', 'My team']];
    const sel = (name, labelText, options) => h('label', { class: 'field compact' }, h('span', {}, labelText),
      h('select', { name, 'aria-label': labelText, onchange: (e) => { filters[name] = e.target.value; saveFilters(filters); loadList(); } },
        h('option', { value: '' }, 'Any'), options.map(([v, t]) => h('option', { value: v, selected: filters[name] === v }, t))));
    mount(filterBar,
      h('div', { class: 'seg', role: 'group', 'aria-label': 'Show' }, views.map(([v, t]) => h('button', {
        type: 'button', dataset: { view: v }, 'aria-pressed': String(filters.view === v),
        onclick: () => { filters.view = v; saveFilters(filters); filterControls(); loadList(); },
      }, t))),
      h('div', { class: 'row' },
        sel('channel', 'Channel', Object.entries(CHANNELS).map(([k, [name]]) => [k, name])),
        sel('status', 'Status', STATUSES.map((s) => [s, label(s)])),
        sel('priority', 'Priority', PRIORITIES.map((p) => [p, p]))));
  }
  filterControls();

  // --- the list
  async function fetchAll(query) {
    const out = [];
    let cursor = null;
    for (let i = 0; i < MAX_PAGES; i++) {
      const page = await get('/conversations' + qs({ ...query, cursor }));
      const items = Array.isArray(page) ? page : page.items || [];
      out.push(...items);
      cursor = Array.isArray(page) ? null : page.next_cursor;
      if (!cursor) break;
    }
    return out;
  }

  let listSeq = 0;
  async function loadList() {
    const mine = ++listSeq;
    try {
      const items = (await fetchAll(listQuery(filters, me))).map(conversation);
      if (mine !== listSeq || disposed) return;
      list = items;
      listErr.replaceChildren();
      for (const c of list) noteAssignee(c, listLoaded);
      listLoaded = true;
      drawList();
      for (const c of list) if (!c.customerName && c.customerId && !cachedName(c.customerId)) customer(c.customerId).then(() => drawList(), () => {});
      loadPreviews();
    } catch (e) {
      mount(listErr, errorBox(e));
    }
  }

  // The list's last message: the API's conversation has its `last_seq`, not the text;
  // the last message of each conversation whose `last_seq` moved is read from its
  // detail, a few at a time, and kept.
  const previews = new Map(); // id -> { seq, text, private }
  let previewing = false;
  async function loadPreviews() {
    if (previewing) return;
    previewing = true;
    try {
      for (;;) {
        const todo = list.filter((c) => !c.lastText && (!previews.has(c.id) || previews.get(c.id).seq !== c.raw.last_seq)).slice(0, 4);
        if (!todo.length || disposed) break;
        await Promise.all(todo.map(async (c) => {
          try {
            const d = await get('/conversations/' + enc(c.id));
            const msgs = (d.messages || []).map(message).filter((m) => m.author !== 'system');
            const last = msgs.reduce((a, m) => (!a || (m.seq ?? 0) >= (a.seq ?? 0) ? m : a), null);
            previews.set(c.id, { seq: c.raw.last_seq, text: last ? last.text : '', private: !!(last && last.private) });
          } catch {
            previews.set(c.id, { seq: c.raw.last_seq, text: '', private: false });
          }
        }));
        drawList();
      }
    } finally {
      previewing = false;
    }
  }
  function lastOf(c) {
    if (c.lastText) return { text: c.lastText, private: c.lastPrivate };
    return previews.get(c.id) || { text: '', private: false };
  }

  /** Remembers who a conversation is assigned to; tells me when it is newly me. */
  function noteAssignee(c, announce) {
    const before = knownAssignee.has(c.id) ? knownAssignee.get(c.id) : undefined;
    knownAssignee.set(c.id, c.assignee || null);
    if (!announce || c.assignee !== me.id || before === me.id) return;
    if (selfAssigned.delete(c.id)) return;
    (async () => {
      let who = c.customerName || cachedName(c.customerId);
      if (!who && c.customerId) who = await customer(c.customerId).then((x) => x.name, () => null);
      const last = lastOf(c).text;
      notify('New conversation assigned to you', `${who || 'A customer'}${last ? ': ' + last : ''}`, 'conv-' + c.id, () => open(c.id));
    })();
  }

  function drawList() {
    const now = Date.now();
    shown = list.filter((c) => passes(c, filters, me)).sort((a, b) =>
      (ACTIVE.has(a.status) ? 0 : 1) - (ACTIVE.has(b.status) ? 0 : 1) || compare(a, b));
    listCount.textContent = String(shown.length);
    if (!shown.length) {
      mount(listBox, h('li', { class: 'muted empty' }, list.length ? 'No conversation matches these filters.' : 'No conversations.'));
      return;
    }
    mount(listBox, shown.map((c) => {
      const chName = channelName(c.channel);
      const sla = slaCountdown(c, now, policies);
      const wait = ACTIVE.has(c.status) ? waiting(c, now) : null;
      const name = c.customerName || cachedName(c.customerId) || 'Customer';
      const who = c.assignee ? (c.assignee === me.id ? 'you' : nameOf(c.assignee)) : 'unassigned';
      const last = lastOf(c);
      return h('li', { class: 'conv' + (c.id === openId ? ' current' : '') + (c.status === 'resolved' || c.status === 'closed' ? ' done' : ''), dataset: { id: c.id, channel: c.channel, status: c.status, priority: c.priority } },
        h('a', { href: '/inbox/' + enc(c.id), 'aria-current': c.id === openId ? 'true' : null, onclick: (e) => { if (e.ctrlKey || e.metaKey || e.shiftKey) return; e.preventDefault(); open(c.id); } },
          h('span', { class: 'ch-icon', role: 'img', 'aria-label': chName, title: chName }, channelIcon(c.channel)),
          h('span', { class: 'conv-main' },
            h('span', { class: 'conv-top' },
              h('strong', { class: 'conv-customer' }, name),
              badge(c.priority, 'prio ' + c.priority.toLowerCase()),
              c.intent ? badge(label(c.intent), 'intent') : null,
              c.status !== 'open' ? badge(label(c.status), 'st-' + c.status) : null),
            h('span', { class: 'conv-last' }, last.private ? h('em', {}, 'Note: ') : '', last.text || c.subject || ''),
            h('span', { class: 'conv-meta' },
              wait ? h('span', { class: 'wait', title: 'The customer is waiting for an answer' }, 'Waiting ' + wait) : null,
              sla ? h('span', { class: 'sla ' + sla.kind, title: 'First response due ' + fmtTime(sla.due) }, sla.text) : null,
              h('span', { class: 'who' }, who)))));
    }));
  }

  function cachedName(id) {
    const c = id && customers.get(id);
    return c && c.value ? c.value.name : null;
  }
  function nameOf(id) {
    const u = directory.get(id);
    return u ? u.name : 'another agent';
  }
  function customer(id) {
    if (!customers.has(id)) {
      const p = get('/customers/' + enc(id));
      const entry = { promise: p, value: null };
      p.then((v) => { entry.value = v; }, () => customers.delete(id));
      customers.set(id, entry);
    }
    return customers.get(id).promise;
  }

  // Opens a conversation in place: the URL follows, the page (and the list) stays; the
  // reply box keeps a draft per conversation.
  const drafts = new Map();
  function open(id) {
    if (!id || id === openId) return;
    if (openId) drafts.set(openId, { text: replyText.value, mode });
    openId = id;
    typingBox.hidden = true;
    history.pushState(null, '', '/inbox/' + enc(id));
    const d = drafts.get(id) || { text: '', mode: 'reply' };
    replyText.value = d.text;
    setMode(d.mode, false);
    closePicker();
    drawList();
    loadThread();
  }

  // --- the open conversation
  let threadSeq = 0;
  async function loadThread() {
    if (!openId) {
      detail = null;
      mount(thread, h('div', { class: 'empty' }, h('h2', {}, 'No conversation open'),
        h('p', { class: 'muted' }, 'Pick one from the list (j / k to move, Enter to open). Press ? for the keyboard shortcuts.')));
      mount(context);
      return;
    }
    const mine = ++threadSeq;
    try {
      const d = await get('/conversations/' + enc(openId));
      const conv = conversation(d.conversation || d);
      const msgs = (d.messages || (d.conversation && d.conversation.messages) || []).map(message)
        .sort((a, b) => (a.seq ?? 0) - (b.seq ?? 0) || (a.at || 0) - (b.at || 0));
      const [cust, triage] = await Promise.all([
        conv.customerId ? customer(conv.customerId).catch(() => null) : null,
        get('/conversations/' + enc(openId) + '/triage').catch(() => []),
        loadIntents()]);
      if (mine !== threadSeq || disposed) return;
      noteAssignee(conv, listLoaded);
      const incidents = await get('/conversations/' + enc(openId) + '/incidents').catch(() => []);
      if (mine !== threadSeq || disposed) return;
      if (detail && detail.conv.id === conv.id && msgs.length > detail.messages.length) typingBox.hidden = true;
      detail = { conv, messages: msgs, customer: cust, incidents, triage: Array.isArray(triage) ? triage : [] };
      drawThread();
      loadContext(conv, cust);
      loadBrief(conv);
    } catch (e) {
      if (mine !== threadSeq) return;
      mount(thread, h('h2', {}, 'Conversation'), errorBox(e));
      mount(context);
    }
  }

  // The reply box survives redraws (a live message arrives while the agent types).
  const replyText = h('textarea', { id: 'reply-text', name: 'text', rows: 4, 'aria-label': 'Reply', 'aria-keyshortcuts': 'r' });
  const replyOut = h('div', { id: 'reply-out' });
  const suggest = h('div', { id: 'reply-suggest', class: 'suggest', role: 'listbox', hidden: true });
  const replyHint = h('span', { class: 'muted small', id: 'reply-hint' });
  const sendBtn = h('button', { type: 'submit', class: 'primary', id: 'reply-send' }, 'Send');
  const cannedBtn = h('button', { type: 'button', id: 'canned-btn', 'aria-keyshortcuts': 'c', title: 'Canned responses (c, or /shortcut in the reply box)' }, 'Canned responses');
  let mode = 'reply'; // reply | note
  const modeBtns = [['reply', 'Reply'], ['note', 'Internal note']].map(([m, t]) => h('button', {
    type: 'button', role: 'tab', dataset: { mode: m }, 'aria-selected': String(mode === m), onclick: () => setMode(m, true),
  }, t));
  const copies = copyFields(); // Cc/Bcc, email conversations only
  const mailPanel = h('div', { id: 'mail-panel', hidden: true });
  const replyForm = h('form', { id: 'reply-form', class: 'reply' },
    h('div', { class: 'tabs', role: 'tablist', 'aria-label': 'Reply or note' }, modeBtns),
    copies.row, replyText, suggest,
    h('div', { class: 'row' }, cannedBtn, replyHint, h('span', { class: 'spacer' }), sendBtn),
    replyOut);

  function setMode(m, focus) {
    mode = m;
    for (const b of modeBtns) b.setAttribute('aria-selected', String(b.dataset.mode === m));
    replyForm.classList.toggle('note-mode', m === 'note');
    copies.show(m === 'reply' && !!detail && detail.conv.channel === 'email');
    replyText.placeholder = m === 'note'
      ? 'Internal note, never sent to the customer. @name mentions a colleague. (Ctrl+Enter adds it)'
      : 'Reply to the customer… /shortcut for a canned response (Ctrl+Enter sends)';
    sendBtn.textContent = m === 'note' ? 'Add note' : 'Send';
    replyHint.textContent = m === 'note' ? 'Notes are never sent to the customer' : '';
    closeSuggest();
    if (focus) replyText.focus();
  }
  setMode('reply', false);

  replyForm.addEventListener('submit', (e) => { e.preventDefault(); send(); });
  replyText.addEventListener('keydown', (e) => {
    if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) { e.preventDefault(); send(); return; }
    if (!suggest.hidden) {
      const opts = [...suggest.querySelectorAll('[role=option]')];
      const cur = opts.findIndex((o) => o.getAttribute('aria-selected') === 'true');
      if (e.key === 'ArrowDown' || e.key === 'ArrowUp') {
        e.preventDefault();
        const next = (cur + (e.key === 'ArrowDown' ? 1 : opts.length - 1)) % opts.length;
        opts.forEach((o, i) => o.setAttribute('aria-selected', String(i === next)));
        return;
      }
      if ((e.key === 'Tab' || e.key === 'Enter') && opts.length) { e.preventDefault(); opts[Math.max(cur, 0)].click(); return; }
    }
    if (e.key === 'Escape') { e.preventDefault(); if (!suggest.hidden) closeSuggest(); else replyText.blur(); }
  });
  replyText.addEventListener('input', () => { updateSuggest(); sendTyping(); });

  // Typing hints, never stored: mine reach the customer at most every 3 s while I type
  // a reply (never a note); theirs show for 5 s after each hint.
  let typedAt = 0;
  function sendTyping() {
    const now = Date.now();
    if (mode !== 'reply' || !detail || !replyText.value.trim() || now - typedAt < 3000) return;
    typedAt = now;
    post('/conversations/' + enc(detail.conv.id) + '/typing', {}).catch(() => {});
  }
  let typingTimer = null;
  function customerTyping(convId) {
    if (convId !== openId) return;
    typingBox.hidden = false;
    clearTimeout(typingTimer);
    typingTimer = setTimeout(() => { typingBox.hidden = true; }, 5000);
  }

  async function send() {
    const text = replyText.value.trim();
    if (!text || !detail) return;
    const id = detail.conv.id;
    const note = mode === 'note';
    await act(sendBtn, replyOut, async () => {
      await post('/conversations/' + enc(id) + '/messages', note ? { text, private: true } : { text, ...copies.values() });
      replyText.value = '';
      if (!note) copies.clear();
      closeSuggest();
      toast(note ? 'Note added' : 'Reply sent');
      await loadThread();
    });
  }

  // Suggestions under the reply box: canned responses for `/word` at its start, users
  // for `@word` in a note.
  function closeSuggest() { suggest.hidden = true; suggest.replaceChildren(); }
  function updateSuggest() {
    const caret = replyText.selectionStart;
    const slash = mode === 'reply' ? cannedAt(replyText.value, caret) : null;
    if (slash !== null) {
      const hits = canned.filter((c) => c.shortcut.startsWith(slash) || c.title.toLowerCase().includes(slash)).slice(0, 8);
      return showSuggest(hits.map((c) => [`/${c.shortcut}`, c.title, () => insertCanned(c, true)]), 'No canned response starts with /' + slash);
    }
    const at = mode === 'note' ? mentionAt(replyText.value, caret) : null;
    if (at) {
      const hits = [...directory.values()].filter((u) => u.id !== me.id && u.handle &&
        (u.handle.toLowerCase().startsWith(at.word) || u.name.toLowerCase().includes(at.word))).slice(0, 8);
      return showSuggest(hits.map((u) => {
        const local = u.handle;
        return ['@' + local, u.name, () => {
          const v = replyText.value;
          replyText.value = v.slice(0, at.start) + '@' + local + ' ' + v.slice(caret);
          const pos = at.start + local.length + 2;
          replyText.setSelectionRange(pos, pos);
          closeSuggest();
          replyText.focus();
        }];
      }), 'No colleague matches @' + at.word);
    }
    closeSuggest();
  }
  function showSuggest(options, empty) {
    suggest.hidden = false;
    if (!options.length) { mount(suggest, h('div', { class: 'muted small' }, empty)); return; }
    mount(suggest, options.map(([key, text, pick], i) => h('div', {
      role: 'option', class: 'opt', 'aria-selected': String(i === 0),
      onmousedown: (e) => e.preventDefault(), onclick: pick,
    }, h('code', {}, key), ' ', h('span', {}, text))));
  }

  /** Inserts a canned response, filled for this customer and me, at the caret (or in
   * place of the `/shortcut` being typed). The first placeholder left unfilled is
   * selected, for the agent to type over. */
  function insertCanned(c, replacingSlash) {
    const text = renderCanned(c.body, placeholderValues(detail && detail.customer, user));
    const v = replyText.value;
    let start = replyText.selectionStart;
    let end = replyText.selectionEnd;
    if (replacingSlash) { start = 0; }
    replyText.value = v.slice(0, start) + text + v.slice(end);
    const left = replyText.value.indexOf('{{', start);
    if (left >= 0 && left < start + text.length) {
      const close = replyText.value.indexOf('}}', left);
      replyText.setSelectionRange(left, close + 2);
    } else {
      replyText.setSelectionRange(start + text.length, start + text.length);
    }
    closeSuggest();
    closePicker();
    replyText.focus();
  }

  // The picker (button or `c`): every canned response, filtered by what is typed.
  const picker = h('div', { id: 'canned-picker', class: 'picker card', role: 'dialog', 'aria-label': 'Canned responses', hidden: true });
  function closePicker() { picker.hidden = true; }
  function openPicker() {
    if (!detail) return;
    const filter = h('input', { type: 'search', 'aria-label': 'Find a canned response', placeholder: 'Find a canned response…' });
    const ul = h('ul', { class: 'list' });
    const draw = () => {
      const q = filter.value.trim().toLowerCase();
      const hits = canned.filter((c) => !q || c.shortcut.includes(q) || c.title.toLowerCase().includes(q) || c.body.toLowerCase().includes(q));
      mount(ul, hits.length ? hits.map((c) => h('li', {}, h('button', { type: 'button', class: 'canned', dataset: { shortcut: c.shortcut }, onclick: () => insertCanned(c, false) },
        h('strong', {}, c.title), ' ', h('code', {}, '/' + c.shortcut),
        h('div', { class: 'muted small' }, renderCanned(c.body, placeholderValues(detail && detail.customer, user))))))
        : h('li', { class: 'muted' }, canned.length ? 'Nothing matches.' : 'The library is empty: an admin adds canned responses (Admin → Canned responses).'));
    };
    filter.addEventListener('input', draw);
    filter.addEventListener('keydown', (e) => {
      if (e.key === 'Escape') { e.preventDefault(); closePicker(); replyText.focus(); }
      if (e.key === 'Enter') { e.preventDefault(); const b = ul.querySelector('button.canned'); if (b) b.click(); }
    });
    mount(picker, h('div', { class: 'row' }, h('strong', {}, 'Canned responses'), h('span', { class: 'spacer' }),
      h('button', { type: 'button', class: 'ghost', 'aria-label': 'Close', onclick: () => { closePicker(); replyText.focus(); } }, '✕')), filter, ul);
    draw();
    picker.hidden = false;
    filter.focus();
  }
  cannedBtn.addEventListener('click', () => (picker.hidden ? openPicker() : closePicker()));
  const headBox = h('header', { class: 'thread-head' });
  const logBox = h('ol', { id: 'messages', class: 'messages', 'aria-live': 'polite' });
  const typingBox = h('div', { id: 'customer-typing', class: 'typing muted small', 'aria-live': 'polite', hidden: true }, 'The customer is typing…');
  // The hand-off brief (issue 20): who the customer is, what the bot tried, the summary
  // in the customer's words, suggested articles, and a drafted reply on request.
  const briefBox = h('section', { class: 'brief', id: 'conv-brief', 'aria-label': 'Brief' });
  const replyWrap = h('div', { class: 'reply-wrap' }, typingBox, picker, replyForm);

  function drawThread() {
    const { conv: c, messages: msgs, customer: cust } = detail;
    const chName = channelName(c.channel);
    const statusSel = h('select', { id: 'conv-status', 'aria-label': 'Status' }, STATUSES.map((s) => h('option', { value: s, selected: s === c.status },
      s === 'snoozed' && c.status !== 'snoozed' ? 'snooze 1 h' : label(s))));
    const headOut = h('div');
    statusSel.addEventListener('change', () => setStatus(statusSel.value, headOut));
    const assignSel = h('select', { id: 'conv-assignee', 'aria-label': 'Assignee' },
      h('option', { value: '', selected: !c.assignee }, 'Unassigned'),
      // Agents take a conversation or give theirs back; supervisors assign anyone.
      [...directory.values()].filter((u) => supervisor || u.id === me.id)
        .map((u) => h('option', { value: u.id, selected: u.id === c.assignee }, u.id === me.id ? `${u.name} (me)` : u.name)),
      c.assignee && !supervisor && c.assignee !== me.id ? h('option', { value: c.assignee, selected: true }, nameOf(c.assignee)) : null,
      c.assignee && supervisor && !directory.has(c.assignee) ? h('option', { value: c.assignee, selected: true }, 'another agent') : null);
    assignSel.addEventListener('change', () => assign(assignSel.value || null, headOut));
    const sla = slaCountdown(c, Date.now(), policies);
    const stick = nearBottom();
    // The reply box and the picker are never taken out of the page while the thread
    // redraws (a live message must not steal the focus or the caret from the agent).
    if (!thread.contains(replyWrap)) mount(thread, headBox, briefBox, mailPanel, logBox, replyWrap);
    copies.show(c.channel === 'email' && mode === 'reply');
    if (mailPanel.dataset.conv !== c.id) { mailPanel.hidden = true; mount(mailPanel); mailPanel.dataset.conv = c.id; }
    mount(logBox, msgs.length ? msgs.map(messageItem) : h('li', { class: 'muted' }, 'No messages yet.'));
    mount(headBox,
        h('div', { class: 'row' },
          h('span', { class: 'ch-icon big', role: 'img', 'aria-label': chName, title: chName }, channelIcon(c.channel)),
          h('h2', { id: 'conv-customer' }, (cust && cust.name) || c.customerName || 'Customer'),
          badge(c.priority, 'prio ' + c.priority.toLowerCase()),
          sla ? h('span', { class: 'sla ' + sla.kind }, sla.text) : null,
          h('span', { class: 'spacer' }),
          c.customerId ? h('a', { href: '/agent/customers/' + enc(c.customerId), 'data-link': '', class: 'small' }, 'Customer screen') : null),
        h('div', { class: 'row' },
          h('span', { class: 'muted small' }, chName, c.subject ? ' · ' + c.subject : ''),
          h('span', { class: 'spacer' }),
          c.channel === 'email' ? mailThreadButton(c.id, mailPanel) : null,
          statusSel,
          assignSel,
          c.assignee !== me.id ? h('button', { type: 'button', id: 'assign-me', 'aria-keyshortcuts': 'a', onclick: (e) => assign(me.id, headOut, e.target) }, 'Assign to me') : null,
          ACTIVE.has(c.status) ? h('button', { type: 'button', id: 'resolve', 'aria-keyshortcuts': 'e', onclick: (e) => setStatus('resolved', headOut, e.target) }, '✓ Resolve') : null),
        triageRow(c, headOut),
        headOut,
        // Issue #21: the open incidents this customer is affected by.
        (detail.incidents || []).map((i) => h('div', { class: 'incident-banner', role: 'status' },
          badge(i.severity), ' Incident: ', h('a', { href: '/incidents/' + enc(i.id), 'data-link': '' }, i.title),
          ` — ${i.status.replace('_', ' ')}`)));
    if (stick) logBox.scrollTop = logBox.scrollHeight;
  }

  // --- triage (issue #20): what the classifier said, and a one-click correction
  let intentNames = null;
  async function loadIntents() {
    if (intentNames) return;
    const own = await get('/ai/intents').catch(() => []);
    intentNames = DEFAULT_INTENTS.concat((Array.isArray(own) ? own : []).map((i) => i.name));
  }
  function triageRow(c, out) {
    const last = detail.triage.length ? detail.triage[detail.triage.length - 1].triage : null;
    const intentSel = h('select', { id: 'triage-intent', 'aria-label': 'Intent' },
      !c.intent ? h('option', { value: '', selected: true }, 'intent?') : null,
      (intentNames || DEFAULT_INTENTS).map((i) => h('option', { value: i, selected: i === c.intent }, label(i))));
    const prioSel = h('select', { id: 'triage-priority', 'aria-label': 'Priority' },
      PRIORITIES.map((p) => h('option', { value: p, selected: p === c.priority }, p)));
    const save = h('button', { type: 'button', id: 'triage-correct', title: 'Correct the intent and priority: triage learns from it' }, 'Correct');
    save.addEventListener('click', (e) => correctTriage(intentSel.value, prioSel.value, out, e.target));
    const facts = last ? [
      badge(last.sentiment, 'sentiment ' + last.sentiment),
      last.language && last.language !== 'und' ? badge(last.language, 'lang') : null,
      last.noise ? badge('no human needed', 'noise') : null,
      h('span', { class: 'muted small', title: 'Triage source: ' + last.source }, Math.round((last.confidence || 0) * 100) + '% ' + last.source),
      (last.entities || []).slice(0, 6).map((en) => h('span', { class: 'chip small', title: label(en.kind) }, en.value)),
    ] : [h('span', { class: 'muted small' }, 'Not triaged')];
    return h('div', { class: 'row triage', id: 'triage' },
      h('span', { class: 'small' }, 'Triage:'), intentSel, prioSel, save, facts);
  }
  async function correctTriage(intent, priority, out, btn) {
    if (!detail || !intent) return;
    await act(btn || null, out, async () => {
      await post('/conversations/' + enc(detail.conv.id) + '/triage', { intent, priority });
      toast(`Triage corrected: ${label(intent)}, ${priority}`);
      await Promise.all([loadThread(), loadList()]);
    });
  }

  function nearBottom() {
    if (!thread.contains(logBox)) return true;
    return logBox.scrollHeight - logBox.scrollTop - logBox.clientHeight < 80;
  }

  function messageItem(m) {
    const authorName = m.author === 'customer'
      ? (detail.customer && detail.customer.name) || 'Customer'
      : m.author === 'agent' ? (m.authorUserId ? (m.authorUserId === me.id ? 'You' : nameOf(m.authorUserId)) : 'Agent')
        : m.author === 'bot' ? 'Bot' : 'System';
    const failed = m.status === 'failed';
    return h('li', { class: `msg ${m.author}${m.private ? ' note' : ''}${failed ? ' failed' : ''}`, dataset: { id: m.id, author: m.author } },
      h('div', { class: 'msg-head' },
        h('span', { class: 'msg-author' }, authorName), m.private ? badge('internal note', 'note') : null,
        h('time', { class: 'muted small' }, fmtTime(m.at))),
      h('div', { class: 'msg-text' }, m.text),
      m.attachments.length ? h('div', { class: 'msg-files' }, m.attachments.map((a) => h('span', { class: 'chip' }, 'Attachment: ', a.name || 'file'))) : null,
      m.author === 'agent' && !m.private && m.status ? h('div', { class: 'msg-status small' + (failed ? ' late' : ' muted'), dataset: { status: m.status } },
        failed ? `Not delivered${m.failure ? ': ' + m.failure : ''}` : label(m.status)) : null);
  }

  async function setStatus(status, out, btn) {
    if (!detail) return;
    await act(btn || null, out, async () => {
      const body = status === 'snoozed' ? { status, snoozed_until: new Date(Date.now() + 3600000).toISOString() } : { status };
      await post('/conversations/' + enc(detail.conv.id) + '/status', body);
      toast(`Conversation ${label(status)}`);
      await Promise.all([loadThread(), loadList()]);
    });
  }
  async function assign(userId, out, btn) {
    if (!detail) return;
    if (userId === me.id) selfAssigned.add(detail.conv.id);
    await act(btn || null, out, async () => {
      await post('/conversations/' + enc(detail.conv.id) + '/assign', { user_id: userId });
      toast(userId ? `Assigned to ${userId === me.id ? 'you' : nameOf(userId)}` : 'Unassigned');
      await Promise.all([loadThread(), loadList()]);
    });
  }

  // --- the brief at the top of the conversation, and the drafted reply
  let briefSeq = 0;
  async function loadBrief(c) {
    const mine = ++briefSeq;
    try {
      const b = await get('/conversations/' + enc(c.id) + '/brief');
      if (mine !== briefSeq || disposed) return;
      const out = h('div');
      const draftBtn = h('button', { type: 'button', id: 'draft-reply', title: 'Fills the reply box; nothing is sent' }, 'Draft reply');
      draftBtn.addEventListener('click', () => act(draftBtn, out, async () => {
        const d = await post('/conversations/' + enc(c.id) + '/draft', {});
        setMode('reply', false);
        replyText.value = d.text;
        replyText.focus();
        toast(d.citations.length ? 'Draft from "' + d.citations[0].title + '" — edit it before sending' : 'Draft started — complete it before sending');
      }));
      const bot = b.bot;
      const facts = [
        b.open_cases.length ? `${b.open_cases.length} open case${b.open_cases.length > 1 ? 's' : ''}` : 'no open case',
        b.recent_contacts.length ? `${b.recent_contacts.length} earlier contact${b.recent_contacts.length > 1 ? 's' : ''}` : 'first contact',
        b.csat_history.length ? 'CSAT ' + b.csat_history.join(', ') : null,
        b.tags.length ? 'tags: ' + b.tags.join(', ') : null,
      ].filter(Boolean).join(' · ');
      mount(briefBox,
        h('div', { class: 'row' }, h('strong', {}, 'Brief'), b.upset ? badge('upset', 'late') : null,
          bot ? badge(bot.state === 'handed_off' ? 'bot handed off' : 'bot answering', 'note') : null,
          h('span', { class: 'muted small' }, facts), h('span', { class: 'spacer' }), draftBtn),
        h('p', { class: 'brief-summary' }, b.summary),
        bot && bot.tried.length ? h('p', { class: 'small' }, 'Bot tried: ',
          bot.tried.map((t) => t.articles.map((a) => a.title).join(', ')).filter(Boolean).join('; ') || 'nothing') : null,
        b.suggested_articles.length ? h('div', { class: 'small', id: 'brief-articles' }, 'Suggested articles: ',
          b.suggested_articles.map((a) => h('span', { class: 'chip', title: a.snippet, dataset: { slug: a.slug } }, a.title))) : null,
        out);
    } catch (e) {
      if (mine === briefSeq) mount(briefBox);
    }
  }

  // --- the customer beside it: open cases and timeline
  let contextSeq = 0;
  async function loadContext(c, cust) {
    if (!c.customerId) { mount(context); return; }
    const mine = ++contextSeq;
    try {
      const [cases, tl] = await Promise.all([
        get('/cases' + qs({ customer_id: c.customerId, limit: 50 })),
        get('/customers/' + enc(c.customerId) + '/timeline' + qs({ limit: 30 })),
      ]);
      if (mine !== contextSeq || disposed) return;
      const open = cases.items.filter((x) => CASE_OPEN.has(x.status));
      mount(context,
        h('div', { class: 'card', id: 'conv-customer-card' },
          h('h2', {}, (cust && cust.name) || 'Customer'),
          cust ? h('div', { class: 'ids' }, cust.identities.map((i) => { const l = identityLabel(i); return h('span', { class: 'chip', title: l.title, dataset: { kind: i.kind } }, h('small', {}, l.kind), ' ', l.value); })) : null),
        h('div', { class: 'card', id: 'conv-cases' }, h('h2', {}, 'Open cases ', badge(String(open.length))),
          open.length ? h('ul', { class: 'list' }, open.map((x) => h('li', {},
            h('strong', {}, `#${x.number} ${x.title}`),
            h('div', { class: 'meta' }, badge(label(x.status), x.status), ' ', badge(x.priority, x.priority.toLowerCase())))))
            : h('p', { class: 'muted' }, 'No open case.')),
        h('div', { class: 'card', id: 'conv-timeline' }, h('h2', {}, 'Timeline'),
          tl.items.length ? h('ol', { class: 'timeline compact' }, tl.items.map((i) => h('li', { class: 'item ' + i.kind, dataset: { kind: i.kind } },
            h('div', { class: 'meta' }, fmtTime(i.occurred_at), ' · ', badge(i.kind), ' ', timelineMeta(i).join(' · ')),
            h('div', { class: 'body' }, timelineText(i)))))
            : h('p', { class: 'muted' }, 'Nothing on the timeline yet.')));
    } catch (e) {
      if (mine === contextSeq) mount(context, h('div', { class: 'card' }, errorBox(e)));
    }
  }

  function timelineText(i) {
    if (i.kind === 'call') {
      try { return JSON.parse(i.body).summary || 'Call'; } catch { /* plain text */ }
    }
    return i.body;
  }

  // --- supporting data: who is who, the canned library, SLA targets
  async function loadDirectory() {
    try {
      // Names and mention handles of every active user (GET /colleagues: agents may
      // not list users), and my teams for the "my team" filter.
      const [people, teams] = await Promise.all([get('/colleagues'), get('/teams')]);
      for (const u of people) directory.set(u.id, u);
      for (const t of teams) {
        if (!t.members.includes(me.id)) continue;
        me.teamIds.add(t.id);
        for (const m of t.members) me.teamMates.add(m);
      }
    } catch { /* names fall back to "another agent" */ }
  }
  async function loadCanned() {
    try { canned = await get('/canned-responses'); } catch { canned = []; }
  }
  async function loadPolicies() {
    try {
      for (const p of await get('/sla-policies')) policies[p.priority] = p.first_response_minutes;
    } catch { /* no countdown without targets */ }
  }

  // --- live updates
  let listTimer = null;
  let threadTimer = null;
  const soon = (which) => {
    if (which === 'list') { clearTimeout(listTimer); listTimer = setTimeout(loadList, 150); }
    else { clearTimeout(threadTimer); threadTimer = setTimeout(() => loadThread(), 150); }
  };
  const announced = new Set(); // notes whose mention was shown
  const off = onEvent((ev) => {
    offers.handle(ev);
    if (ev.type === 'connected' || ev.type === 'lagged') { loadList(); loadThread(); offers.reload(); return; }
    if (ev.type.startsWith('work_item.')) { soon('list'); if (detail) soon('thread'); return; }
    if (ev.type.startsWith('canned_response.')) { loadCanned(); return; }
    const d = ev.data || {};
    if (ev.type === 'conversation.typing') {
      if (d.author === 'customer') customerTyping(d.conversation_id);
      return;
    }
    if (ev.type.startsWith('conversation.')) {
      // Data: a conversation, or `{conversation, message}` (a message, a mention), or a
      // message with its `conversation_id`.
      const convData = d.conversation || (d.customer_id && d.status && d.seq === undefined ? d : null);
      const msgData = d.message || (d.seq !== undefined && d.text !== undefined ? d : null);
      const convId = (convData && convData.id) || (msgData && msgData.conversation_id) || d.conversation_id || null;
      // A note that mentions me (`conversation.mentioned`, or a note's own event).
      if (msgData && msgData.private) {
        const m = message({ ...msgData, mentions: d.mentions || msgData.mentions });
        if (m.authorUserId !== me.id && mentions(m, me) && !announced.has(m.id)) {
          announced.add(m.id);
          notify(`${m.authorUserId ? nameOf(m.authorUserId) : 'A colleague'} mentioned you`, m.text, 'note-' + m.id, convId ? () => open(convId) : null);
        }
      }
      if (convData) noteAssignee(conversation(convData), listLoaded);
      soon('list');
      if (openId && (convId === openId || !convId)) soon('thread');
      return;
    }
    if (detail && detail.conv.customerId && ev.customer_id === detail.conv.customerId) {
      customers.delete(detail.conv.customerId);
      loadContext(detail.conv, detail.customer);
    }
  });

  // --- keyboard
  const onKey = (e) => {
    const tag = document.activeElement && document.activeElement.tagName;
    const typing = /^(INPUT|TEXTAREA|SELECT)$/.test(tag);
    if (e.key === 'Escape' && !help.hidden) { help.hidden = true; return; }
    if (typing || e.ctrlKey || e.metaKey || e.altKey) return;
    const idx = shown.findIndex((c) => c.id === openId);
    const go = (i) => { const c = shown[Math.max(0, Math.min(shown.length - 1, i))]; if (c) open(c.id); };
    switch (e.key) {
      case 'j': case 'ArrowDown': e.preventDefault(); go(idx + 1); break;
      case 'k': case 'ArrowUp': e.preventDefault(); go(idx < 0 ? 0 : idx - 1); break;
      case 'r': if (detail) { e.preventDefault(); setMode('reply', true); } break;
      case 'n': if (detail) { e.preventDefault(); setMode('note', true); } break;
      case 'c': if (detail) { e.preventDefault(); setMode('reply', false); openPicker(); } break;
      case 'a': if (detail && detail.conv.assignee !== me.id) { e.preventDefault(); assign(me.id, null); } break;
      case 'e': if (detail && ACTIVE.has(detail.conv.status)) { e.preventDefault(); setStatus('resolved', null); } break;
      case '?': e.preventDefault(); help.hidden = !help.hidden; break;
      default:
    }
  };
  document.addEventListener('keydown', onKey);

  // Waiting times and countdowns move on.
  const tick = setInterval(() => {
    drawList();
    const el = thread.querySelector('.thread-head .sla');
    if (el && detail) {
      const s = slaCountdown(detail.conv, Date.now(), policies);
      if (s) { el.textContent = s.text; el.className = 'sla ' + s.kind; }
    }
  }, TICK_MS);

  await Promise.all([loadDirectory(), loadCanned(), loadPolicies()]);
  await Promise.all([loadList(), loadThread(), offers.reload()]);
  return () => {
    disposed = true;
    off();
    offers.dispose();
    clearInterval(tick);
    clearTimeout(listTimer);
    clearTimeout(threadTimer);
    clearTimeout(typingTimer);
    document.removeEventListener('keydown', onKey);
    document.removeEventListener('pointerdown', unlock);
    document.removeEventListener('keydown', unlock);
    if (audio) audio.close().catch(() => {});
  };
}

function channelName(kind) {
  return (CHANNELS[kind] || [label(kind)])[0];
}

/** A channel's icon: a coloured tile with a speech bubble, an envelope or letters. */
function channelIcon(kind) {
  const [, colour, glyph] = CHANNELS[kind] || [kind, '#475569', String(kind).slice(0, 2).toUpperCase()];
  const tile = h('rect', { x: 0, y: 0, width: 24, height: 24, rx: 6, fill: colour });
  let mark;
  if (glyph === 'chat') mark = h('path', { d: 'M6 6.5h12a1.5 1.5 0 0 1 1.5 1.5v7a1.5 1.5 0 0 1-1.5 1.5h-6.5l-4 3v-3H6A1.5 1.5 0 0 1 4.5 15V8A1.5 1.5 0 0 1 6 6.5z', fill: '#fff' });
  else if (glyph === 'mail') mark = h('g', {}, h('rect', { x: 4.5, y: 7, width: 15, height: 10.5, rx: 1.5, fill: '#fff' }), h('path', { d: 'M5 8l7 5 7-5', fill: 'none', stroke: colour, 'stroke-width': 1.6 }));
  else mark = h('text', { x: 12, y: 16, 'text-anchor': 'middle', 'font-size': glyph.length > 2 ? 7.5 : 10, 'font-weight': 700, fill: '#fff', 'font-family': 'system-ui, sans-serif' }, glyph);
  return h('svg', { viewBox: '0 0 24 24', width: 24, height: 24, 'aria-hidden': 'true', focusable: 'false' }, tile, mark);
}

function loadFilters(supervisor) {
  const base = { view: 'all', channel: '', status: '', priority: '' };
  try {
    const saved = JSON.parse(localStorage.getItem(FILTERS_KEY) || 'null');
    if (saved && typeof saved === 'object') Object.assign(base, saved);
  } catch { /* defaults */ }
  if (!supervisor && !['all', 'mine', 'unassigned', 'team'].includes(base.view)) base.view = 'all';
  return base;
}

function saveFilters(f) {
  localStorage.setItem(FILTERS_KEY, JSON.stringify(f));
}
