// The customer portal (issue #17): /portal/{tenant}. A customer asks for a sign-in link
// (sent to their address), opens it (the token is in the URL's fragment: it never
// reaches a server log), and sees their own stream — every conversation on every
// channel with the messages they may see, and their cases — and writes. Every text is
// put in the page as text (dom.js `h` makes text nodes), never as HTML.

import { h, mount, fmtTime, errorBox } from '../dom.js';

const tenant = decodeURIComponent(location.pathname.split('/').filter(Boolean)[1] || '');
const KEY = `parley-portal:${tenant}`;
const main = document.getElementById('portal');
const CHANNEL = { web_chat: 'Web chat', email: 'Email', sms: 'SMS', whatsapp: 'WhatsApp', messenger: 'Messenger', instagram: 'Instagram', telegram: 'Telegram', x: 'X', api: 'API' };
const WHO = { customer: 'You', agent: 'Support', bot: 'Assistant', system: '' };

async function call(method, path, body, token) {
  const res = await fetch(path, {
    method,
    headers: { ...(body ? { 'content-type': 'application/json' } : {}), ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  const v = res.status === 204 || res.status === 202 ? {} : await res.json().catch(() => ({}));
  if (!res.ok) {
    const e = new Error((v.error && v.error.message) || `Error ${res.status}`);
    e.status = res.status;
    e.field = v.error && v.error.field;
    throw e;
  }
  return v;
}

function session() { try { return JSON.parse(sessionStorage.getItem(KEY)) || null; } catch { return null; } }
function saveSession(s) { try { if (s) sessionStorage.setItem(KEY, JSON.stringify(s)); else sessionStorage.removeItem(KEY); } catch { /* private mode */ } }

function signInForm(note) {
  const email = h('input', { type: 'email', name: 'email', id: 'portal-email', required: true, autocomplete: 'email', maxlength: 254 });
  const out = h('div', { id: 'portal-out', role: 'status' });
  const form = h('form', { id: 'portal-login', class: 'card narrow' },
    h('h1', {}, 'Your conversations'),
    note ? h('p', { class: 'warn' }, note) : null,
    h('p', { class: 'muted' }, 'Enter your email address: we send you a link to sign in.'),
    h('label', { class: 'field', for: 'portal-email' }, h('span', {}, 'Email'), email),
    h('button', { type: 'submit', class: 'primary' }, 'Send me a link'), out);
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    try {
      await call('POST', `/portal/v1/${encodeURIComponent(tenant)}/login`, { email: email.value.trim() });
      mount(out, h('p', { class: 'ok' }, 'If this address is known to us, a sign-in link is on its way. Open it on this device.'));
    } catch (err) { mount(out, errorBox(err)); }
  });
  mount(main, form);
  email.focus();
}

async function redeem(token) {
  // The token leaves the address bar at once.
  history.replaceState(null, '', location.pathname);
  try {
    const s = await call('POST', `/portal/v1/${encodeURIComponent(tenant)}/session`, { token });
    saveSession({ token: s.session_token, name: s.name });
    return true;
  } catch (e) {
    signInForm(e.status === 401 ? 'This link is not valid any more: ask for a new one.' : e.message);
    return false;
  }
}

let stream = null;
let current = null; // the open conversation's id, or null for "new message"
let draft = ''; // what the customer is typing survives the periodic refresh

async function load() {
  const s = session();
  if (!s) { signInForm(); return; }
  try {
    stream = await call('GET', '/portal/v1/stream', null, s.token);
  } catch (e) {
    if (e.status === 401) { saveSession(null); signInForm('Your session ended: sign in again.'); return; }
    mount(main, errorBox(e));
    return;
  }
  if (current === null && stream.conversations.length) current = stream.conversations[0].id;
  draw();
}

function draw() {
  const s = session();
  const convs = stream.conversations;
  const open = convs.find((c) => c.id === current) || null;
  const list = h('ul', { id: 'portal-conversations', class: 'list' },
    convs.map((c) => {
      const last = c.messages[c.messages.length - 1];
      return h('li', { class: c.id === current ? 'current' : '', dataset: { id: c.id, channel: c.channel } },
        h('button', { type: 'button', class: 'link', 'aria-current': c.id === current ? 'true' : null, onclick: () => { current = c.id; draw(); } },
          h('strong', {}, CHANNEL[c.channel] || c.channel), ' · ', h('span', { class: 'muted small' }, c.status.replace(/_/g, ' '), ' · ', fmtTime(c.last_message_at)),
          last ? h('div', { class: 'small' }, last.text.slice(0, 120)) : null));
    }),
    h('li', {}, h('button', { type: 'button', id: 'portal-new', class: 'link', onclick: () => { current = null; draw(); } }, '+ New message')));
  const log = h('ol', { id: 'portal-messages', class: 'messages', 'aria-live': 'polite' },
    open ? open.messages.map((m) => h('li', { class: 'msg ' + m.author, dataset: { id: m.id, author: m.author } },
      h('div', { class: 'msg-head' }, h('span', { class: 'msg-author' }, WHO[m.author] ?? ''), ' ', h('time', { class: 'muted small' }, fmtTime(m.created_at))),
      h('div', { class: 'msg-text' }, m.text)))
      : h('li', { class: 'muted' }, 'Write to us: we answer here and in your other conversations.'));
  const text = h('textarea', { id: 'portal-text', rows: 3, maxlength: 4000, 'aria-label': 'Your message', required: true, value: draft });
  text.addEventListener('input', () => { draft = text.value; });
  const out = h('div', { id: 'portal-send-out' });
  const form = h('form', { id: 'portal-reply', class: 'reply' }, text,
    h('div', { class: 'row' }, h('span', { class: 'spacer' }), h('button', { type: 'submit', class: 'primary' }, 'Send')), out);
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const body = { text: text.value.trim(), client_id: crypto.randomUUID ? crypto.randomUUID() : String(Date.now()) };
    if (!body.text) return;
    if (current) body.conversation_id = current;
    try {
      const m = await call('POST', '/portal/v1/messages', body, s.token);
      current = m.conversation_id;
      draft = '';
      await load();
    } catch (err) { mount(out, errorBox(err)); }
  });
  const cases = h('section', { id: 'portal-cases', class: 'card' }, h('h2', {}, 'Your cases'),
    stream.cases.length ? h('ul', { class: 'list' }, stream.cases.map((c) => h('li', { dataset: { id: c.id } },
      h('strong', {}, `#${c.number} ${c.title}`), ' ', h('span', { class: 'badge' }, c.status.replace(/_/g, ' ')))))
      : h('p', { class: 'muted' }, 'No case.'));
  mount(main,
    h('header', { class: 'row portal-head' }, h('h1', {}, 'Hello, ', h('span', { id: 'portal-name' }, stream.name)), h('span', { class: 'spacer' }),
      h('button', { type: 'button', id: 'portal-logout', class: 'ghost', onclick: logout }, 'Sign out')),
    h('div', { class: 'portal-cols' },
      h('nav', { class: 'card', 'aria-label': 'Your conversations' }, h('h2', {}, 'Conversations'), list),
      h('section', { class: 'card', 'aria-label': 'Conversation' }, log, form),
      cases));
}

async function logout() {
  const s = session();
  try { if (s) await call('POST', '/portal/v1/logout', null, s.token); } catch { /* gone already */ }
  saveSession(null);
  stream = null;
  signInForm();
}

const m = /[#&]token=([^&]+)/.exec(location.hash);
if (m) {
  if (await redeem(decodeURIComponent(m[1]))) await load();
} else {
  await load();
}
// New answers appear without a reload.
setInterval(() => {
  const typing = document.activeElement && document.activeElement.id === 'portal-text';
  if (session() && stream && !typing && document.visibilityState === 'visible') load();
}, 10000);
