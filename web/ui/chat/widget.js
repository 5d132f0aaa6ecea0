// Parley web chat widget: embed on any site with
//   <script type="module" src="https://parley.example/chat/widget.js" data-tenant="demo"
//           data-color="#0b57d0" data-greeting="Hi! How can we help?" data-title="Chat with us"></script>
// Plain ES module, no build step, no dependencies. It draws into a shadow root (the
// host page's CSS does not leak in), keeps the visitor token in localStorage (a reload
// keeps the conversation), receives over a WebSocket and falls back to HTTP long-polling
// when the WebSocket cannot connect or keeps dropping. Every text is set with
// textContent: nothing a visitor or an agent writes is ever parsed as HTML.

const SERVER = new URL('.', import.meta.url); // …/chat/
const BASE = new URL('/chat/v1/', SERVER);
const script = [...document.querySelectorAll('script[data-tenant]')].find((s) => s.src === import.meta.url)
  || document.querySelector('script[data-tenant]');
const cfg = {
  tenant: script?.dataset.tenant || 'demo',
  color: script?.dataset.color || '#0b57d0',
  greeting: script?.dataset.greeting || 'Hi! How can we help you today?',
  title: script?.dataset.title || 'Chat with us',
};
const KEY = `parley-chat:${BASE.origin}:${cfg.tenant}`;

const CSS = `
:host { all: initial; --accent: ${safeColor(cfg.color)}; font: 15px/1.4 system-ui, sans-serif; color: #1f1f1f; }
* { box-sizing: border-box; font: inherit; }
button { cursor: pointer; }
:focus-visible { outline: 3px solid var(--accent); outline-offset: 2px; }
.launcher { position: fixed; right: 20px; bottom: 20px; z-index: 2147483000; border: 0; border-radius: 28px;
  background: var(--accent); color: #fff; padding: 14px 20px; font-weight: 600; box-shadow: 0 4px 14px rgba(0,0,0,.25); }
.panel { position: fixed; right: 20px; bottom: 84px; z-index: 2147483001; width: 360px; height: 540px; max-height: calc(100vh - 104px);
  display: flex; flex-direction: column; background: #fff; border-radius: 12px; box-shadow: 0 8px 30px rgba(0,0,0,.3); overflow: hidden; }
.panel[hidden] { display: none; }
header { background: var(--accent); color: #fff; padding: 12px 14px; display: flex; align-items: center; gap: 8px; }
header h2 { margin: 0; font-size: 16px; font-weight: 600; flex: 1; }
header button { background: transparent; color: #fff; border: 0; font-size: 22px; line-height: 1; padding: 2px 8px; }
.notice { margin: 0; background: #fff4d6; color: #4a3800; padding: 8px 14px; font-size: 14px; }
.notice[hidden] { display: none; }
.log { flex: 1; overflow-y: auto; padding: 12px; display: flex; flex-direction: column; gap: 8px; background: #f6f7f9; }
.msg { max-width: 80%; padding: 8px 12px; border-radius: 14px; white-space: pre-wrap; overflow-wrap: anywhere; }
.msg.customer { align-self: flex-end; background: var(--accent); color: #fff; border-bottom-right-radius: 4px; }
.msg.agent, .msg.bot { align-self: flex-start; background: #fff; border: 1px solid #dde1e6; border-bottom-left-radius: 4px; }
.msg.system { align-self: center; background: transparent; color: #555; font-size: 13px; text-align: center; }
.msg .who { display: block; font-size: 12px; opacity: .75; margin-bottom: 2px; }
form { margin: 0; }
.prechat, .csat { padding: 14px; display: flex; flex-direction: column; gap: 8px; background: #fff; border-top: 1px solid #e3e6ea; }
.prechat[hidden], .csat[hidden], .composer[hidden] { display: none; }
label { font-size: 13px; color: #333; display: flex; flex-direction: column; gap: 3px; }
input, textarea { border: 1px solid #b8bec6; border-radius: 6px; padding: 8px; color: #1f1f1f; background: #fff; }
.primary { background: var(--accent); color: #fff; border: 0; border-radius: 6px; padding: 9px 14px; font-weight: 600; }
.composer { display: flex; gap: 8px; padding: 10px; border-top: 1px solid #e3e6ea; background: #fff; }
.composer textarea { flex: 1; resize: none; height: 42px; }
.stars { display: flex; gap: 6px; border: 0; padding: 0; margin: 0; }
.stars legend { font-size: 14px; margin-bottom: 6px; }
.stars label { flex-direction: row; align-items: center; gap: 2px; border: 1px solid #b8bec6; border-radius: 6px; padding: 6px 10px; }
.typing { font-size: 12px; color: #555; font-style: italic; padding: 4px 14px 0; background: #fff; }
.typing[hidden] { display: none; }
.status { font-size: 12px; color: #666; padding: 0 14px 6px; background: #fff; min-height: 1em; }
.sr { position: absolute; width: 1px; height: 1px; overflow: hidden; clip: rect(0 0 0 0); }
@media (max-width: 480px) {
  .panel { right: 0; bottom: 0; width: 100vw; height: 100vh; max-height: none; border-radius: 0; }
  .launcher { right: 12px; bottom: 12px; }
}
`;

function safeColor(c) {
  // Only plain colour syntax reaches the style sheet.
  return /^(#[0-9a-fA-F]{3,8}|[a-zA-Z]{3,20}|rgb\(\s*\d{1,3}\s*,\s*\d{1,3}\s*,\s*\d{1,3}\s*\))$/.test(c) ? c : '#0b57d0';
}

function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === 'text') e.textContent = v;
    else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else if (v === true) e.setAttribute(k, '');
    else if (v !== false && v != null) e.setAttribute(k, v);
  }
  for (const c of children) e.append(c);
  return e;
}

class ChatWidget {
  constructor() {
    this.host = el('div', { id: 'parley-chat', 'data-transport': 'none' });
    this.root = this.host.attachShadow({ mode: 'open' });
    this.session = load();
    this.lastSeq = 0;
    this.seen = new Set();
    this.status = '';
    this.ws = null;
    this.mode = 'ws';
    this.wsFailures = 0;
    this.stopped = false;
    this.build();
    document.body.append(this.host);
    if (this.session) this.resume();
    this.checkAgents();
  }

  build() {
    const r = this.root;
    r.append(el('style', { text: CSS }));
    this.launcher = el('button', { class: 'launcher', type: 'button', 'aria-expanded': 'false', 'aria-controls': 'panel', text: cfg.title, onclick: () => this.toggle() });
    this.title = el('h2', { id: 'title', text: cfg.title });
    this.closeBtn = el('button', { type: 'button', 'aria-label': 'Close chat', text: '×', onclick: () => this.toggle(false) });
    this.notice = el('p', { class: 'notice', role: 'status', hidden: true });
    this.log = el('div', { class: 'log', role: 'log', 'aria-live': 'polite', 'aria-label': 'Messages', tabindex: '0' });
    this.log.append(el('div', { class: 'msg system', text: cfg.greeting }));
    const name = el('input', { name: 'name', autocomplete: 'name', maxlength: '200' });
    const email = el('input', { name: 'email', type: 'email', autocomplete: 'email', maxlength: '254' });
    this.prechat = el('form', { class: 'prechat', 'aria-label': 'Start a chat', onsubmit: (e) => { e.preventDefault(); this.start(name.value, email.value); } },
      el('label', {}, 'Your name (optional)', name),
      el('label', {}, 'Your email (optional)', email),
      el('button', { class: 'primary', type: 'submit', text: 'Start chat' }));
    this.text = el('textarea', { 'aria-label': 'Your message', placeholder: 'Write a message…', maxlength: '4000', rows: '1' });
    this.text.addEventListener('keydown', (e) => {
      if (e.key === 'Enter' && !e.shiftKey) { e.preventDefault(); this.send(); }
    });
    this.text.addEventListener('input', () => this.typing());
    this.composer = el('form', { class: 'composer', 'aria-label': 'Write a message', hidden: true, onsubmit: (e) => { e.preventDefault(); this.send(); } },
      this.text, el('button', { class: 'primary', type: 'submit', text: 'Send' }));
    this.statusLine = el('div', { class: 'status', 'aria-live': 'polite' });
    this.typingLine = el('div', { class: 'typing', 'aria-live': 'polite', hidden: true, text: 'Agent is typing…' });
    this.csat = this.buildCsat();
    this.panel = el('section', { class: 'panel', id: 'panel', role: 'dialog', 'aria-labelledby': 'title', hidden: true },
      el('header', {}, this.title, this.closeBtn), this.notice, this.log, this.typingLine, this.statusLine, this.prechat, this.composer, this.csat);
    this.panel.addEventListener('keydown', (e) => { if (e.key === 'Escape') this.toggle(false); });
    r.append(this.launcher, this.panel);
  }

  buildCsat() {
    const stars = el('fieldset', { class: 'stars' }, el('legend', { text: 'How did we do? (1 = poor, 5 = great)' }));
    for (let i = 1; i <= 5; i++) {
      stars.append(el('label', {}, el('input', { type: 'radio', name: 'score', value: String(i), required: true }), String(i)));
    }
    const comment = el('textarea', { name: 'comment', 'aria-label': 'Comment (optional)', placeholder: 'Anything to add? (optional)', maxlength: '2000' });
    const form = el('form', { class: 'csat', 'aria-label': 'Rate this conversation', hidden: true, onsubmit: async (e) => {
      e.preventDefault();
      const score = Number(new FormData(form).get('score'));
      if (!score) return;
      const ok = await this.api('POST', `conversations/${this.session.id}/csat`, { score, comment: comment.value || undefined });
      if (ok) {
        this.session.rated = true; save(this.session);
        form.replaceChildren(el('p', { role: 'status', text: 'Thank you for your feedback!' }));
      }
    } }, stars, comment, el('button', { class: 'primary', type: 'submit', text: 'Send rating' }));
    return form;
  }

  toggle(open = this.panel.hidden) {
    this.panel.hidden = !open;
    this.launcher.setAttribute('aria-expanded', String(open));
    if (open) { (this.session ? this.text : this.prechat.querySelector('input')).focus(); this.markRead(); }
    else this.launcher.focus();
  }

  async checkAgents() {
    try {
      const res = await fetch(new URL(`${encodeURIComponent(cfg.tenant)}/config`, BASE));
      const c = await res.json();
      if (!c.agents_available) {
        this.notice.textContent = 'No agent is available right now. Leave a message here and we will answer in this chat.';
        this.notice.hidden = false;
      }
    } catch { /* the chat still works without the notice */ }
  }

  async start(name, email) {
    const body = {};
    if (name.trim()) body.name = name.trim();
    if (email.trim()) body.email = email.trim();
    const res = await fetch(new URL(`${encodeURIComponent(cfg.tenant)}/conversations`, BASE), {
      method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body),
    });
    const v = await res.json().catch(() => ({}));
    if (!res.ok) { this.say(v.error?.message || 'Could not start the chat.'); return; }
    this.session = { id: v.conversation_id, token: v.visitor_token, email: !!body.email };
    save(this.session);
    this.resume();
    this.text.focus();
  }

  resume() {
    this.prechat.hidden = true;
    this.composer.hidden = false;
    this.connect();
  }

  say(text) { this.statusLine.textContent = text; }

  async api(method, path, body) {
    const res = await fetch(new URL(path, BASE), {
      method,
      headers: { authorization: `Bearer ${this.session.token}`, ...(body ? { 'content-type': 'application/json' } : {}) },
      body: body ? JSON.stringify(body) : undefined,
    });
    const v = res.status === 204 ? {} : await res.json().catch(() => ({}));
    if (res.status === 401 || res.status === 404) {
      // The token no longer reaches a conversation: start afresh.
      clear(); this.session = null; this.stop(); this.prechat.hidden = false; this.composer.hidden = true;
    }
    if (!res.ok) { this.say(v.error?.message || `Error ${res.status}`); return null; }
    return v;
  }

  async send() {
    const text = this.text.value.trim();
    if (!text || !this.session) return;
    const clientId = crypto.randomUUID ? crypto.randomUUID() : String(Math.random()).slice(2) + Date.now();
    this.text.value = '';
    // Retry with the same client id: the server stores the message once.
    for (let attempt = 0; attempt < 5; attempt++) {
      try {
        const v = await this.api('POST', `conversations/${this.session.id}/messages`, { text, client_id: clientId });
        if (v) { this.say(''); this.add({ id: v.id, seq: v.seq, author: 'customer', text }); }
        else if (this.text.value === '') this.text.value = text;
        return;
      } catch {
        this.say('Reconnecting…');
        await sleep(1000 * (attempt + 1));
      }
    }
    this.text.value = text;
    this.say('Could not send; please try again.');
  }

  // Typing hints over the WebSocket, never stored: mine at most every 2 s while I
  // type; the agent's shown for 5 s after each of theirs.
  typing() {
    const now = Date.now();
    if (!this.ws || this.ws.readyState !== 1 || now - (this.typedAt || 0) < 2000) return;
    this.typedAt = now;
    try { this.ws.send(JSON.stringify({ type: 'typing' })); } catch { /* closing */ }
  }

  agentTyping() {
    this.typingLine.hidden = false;
    clearTimeout(this.typingTimer);
    this.typingTimer = setTimeout(() => { this.typingLine.hidden = true; }, 5000);
  }

  add(m) {
    if (this.seen.has(m.id)) return;
    this.seen.add(m.id);
    const who = { agent: 'Agent', bot: 'Bot', customer: 'You', system: '' }[m.author] ?? '';
    const bubble = el('div', { class: `msg ${['customer', 'agent', 'bot', 'system'].includes(m.author) ? m.author : 'system'}`, 'data-seq': String(m.seq) });
    if (who && m.author !== 'customer') bubble.append(el('span', { class: 'who', text: who }));
    bubble.append(document.createTextNode(m.text));
    // Keep seq order even when a send's answer and the stream cross.
    const later = [...this.log.querySelectorAll('[data-seq]')].find((b) => Number(b.dataset.seq) > m.seq);
    this.log.insertBefore(bubble, later || null);
    this.log.scrollTop = this.log.scrollHeight;
  }

  receive(m) {
    this.add(m);
    if (m.seq > this.lastSeq) this.lastSeq = m.seq;
    if (m.author !== 'customer') {
      if (m.author === 'agent') { this.typingLine.hidden = true; clearTimeout(this.typingTimer); }
      // Someone answered: the "no agent" notice no longer holds.
      if (m.author === 'agent') this.notice.hidden = true;
      this.markRead();
    }
  }

  // Read receipt: the visitor has the panel open and has seen everything so far.
  markRead() {
    if (this.panel.hidden || !this.session || this.lastSeq <= (this.readSeq || 0)) return;
    this.readSeq = this.lastSeq;
    this.api('POST', `conversations/${this.session.id}/read`, { seq: this.lastSeq }).catch(() => {});
  }

  onStatus(status) {
    if (status === this.status) return;
    this.status = status;
    const done = status === 'resolved' || status === 'closed';
    this.csat.hidden = !done || !!this.session?.rated;
    if (done) this.say('This conversation was resolved. Write again any time.');
    if (done && this.session?.email && !this.transcriptBtn) {
      // The transcript by email, to the address given in the pre-chat form.
      this.transcriptBtn = el('button', { type: 'button', class: 'primary', text: 'Email me the transcript', onclick: async () => {
        const ok = await this.api('POST', `conversations/${this.session.id}/transcript`, {});
        if (ok) { this.transcriptBtn.disabled = true; this.say(`The transcript is on its way to ${ok.email}.`); }
      } });
      this.panel.insertBefore(this.transcriptBtn, this.csat);
    }
  }

  stop() {
    this.stopped = true;
    if (this.ws) { this.ws.onclose = null; this.ws.close(); this.ws = null; }
  }

  connect() {
    this.stopped = false;
    if (this.mode === 'ws' && typeof WebSocket === 'function') this.openWs();
    else this.poll();
  }

  openWs() {
    const u = new URL(`conversations/${this.session.id}/ws`, BASE);
    u.protocol = u.protocol === 'https:' ? 'wss:' : 'ws:';
    u.searchParams.set('token', this.session.token);
    u.searchParams.set('after', String(this.lastSeq));
    let opened = false;
    let ws;
    try { ws = new WebSocket(u); } catch { this.fallBack(); return; }
    this.ws = ws;
    ws.onopen = () => { opened = true; this.host.dataset.transport = 'ws'; };
    ws.onmessage = (e) => {
      let m; try { m = JSON.parse(e.data); } catch { return; }
      if (m.type === 'status') this.onStatus(m.status);
      else if (m.type === 'typing') this.agentTyping();
      else if (!m.type) { this.receive(m); this.wsFailures = 0; }
    };
    ws.onclose = () => {
      this.ws = null;
      if (this.stopped) return;
      // A socket that never opened, or drops again and again: long-poll instead.
      this.wsFailures += opened ? 1 : 2;
      if (this.wsFailures >= 2) this.fallBack();
      else setTimeout(() => this.connect(), 1000);
    };
  }

  fallBack() {
    this.mode = 'poll';
    this.poll();
  }

  async poll() {
    this.host.dataset.transport = 'poll';
    while (!this.stopped && this.session) {
      try {
        const v = await this.api('GET', `conversations/${this.session.id}/messages?after=${this.lastSeq}&wait=25`);
        if (!v) { await sleep(3000); continue; }
        for (const m of v.messages) this.receive(m);
        this.onStatus(v.status);
      } catch {
        await sleep(2000);
      }
    }
  }
}

function sleep(ms) { return new Promise((r) => setTimeout(r, ms)); }
function load() { try { return JSON.parse(localStorage.getItem(KEY)) || null; } catch { return null; } }
function save(s) { try { localStorage.setItem(KEY, JSON.stringify(s)); } catch { /* private mode */ } }
function clear() { try { localStorage.removeItem(KEY); } catch { /* private mode */ } }

const start = () => { window.parleyChat = new ChatWidget(); };
if (document.body) start(); else document.addEventListener('DOMContentLoaded', start);
