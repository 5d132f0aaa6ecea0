// The unified inbox's pure parts (no DOM, no fetch): reading the conversations API's
// objects, the list's filters, waiting times and SLA countdowns, canned-response
// placeholders, @mentions. Tested with plain Node (tests/browser/inboxlib.test.mjs).

/** Channel kinds (the timeline's channel names) → label, colour and the glyph of its
 * icon (`chat`, `mail`, or up to 3 letters): drawn as SVG, no emoji font needed. */
export const CHANNELS = {
  web_chat: ['Web chat', '#1f5eff', 'chat'],
  email: ['Email', '#7c3aed', 'mail'],
  sms: ['SMS', '#0f766e', 'SMS'],
  whatsapp: ['WhatsApp', '#15803d', 'WA'],
  messenger: ['Messenger', '#2563eb', 'FB'],
  instagram: ['Instagram', '#be185d', 'IG'],
  telegram: ['Telegram', '#0284c7', 'TG'],
  x: ['X', '#111827', 'X'],
  api: ['API', '#475569', 'API'],
};
export const STATUSES = ['open', 'pending', 'snoozed', 'resolved', 'closed'];
export const PRIORITIES = ['P0', 'P1', 'P2', 'P3'];
/** The default triage taxonomy (issue #20); tenants add their own (`/ai/intents`). */
export const DEFAULT_INTENTS = ['billing', 'technical_support', 'how_to', 'account_change', 'cancellation',
  'sales', 'complaint', 'feedback_thanks', 'spam'];

const ms = (t) => (t === null || t === undefined || t === '' ? null : typeof t === 'number' ? t : Date.parse(t));

/** A channel's kind from a conversation (the API may give a kind string or a channel
 * object). */
export function channelKind(c) {
  if (!c) return 'api';
  if (typeof c.channel === 'string') return c.channel;
  if (c.channel && typeof c.channel === 'object') return c.channel.kind || 'api';
  return c.channel_kind || c.kind || 'api';
}

/** A conversation as the inbox uses it, whatever optional fields the API sent. */
export function conversation(c) {
  const last = c.last_message && typeof c.last_message === 'object' ? c.last_message : null;
  return {
    id: c.id,
    customerId: c.customer_id || (c.customer && c.customer.id) || null,
    customerName: c.customer_name || (c.customer && c.customer.name) || null,
    channel: channelKind(c),
    status: c.status || 'open',
    assignee: c.assignee_id !== undefined ? c.assignee_id : (c.assignee && typeof c.assignee === 'object' ? c.assignee.id : c.assignee || null),
    teamId: c.team_id || null,
    priority: c.priority || 'P2',
    intent: c.intent || null,
    subject: c.subject || null,
    lastText: last ? last.text : (typeof c.last_message === 'string' ? c.last_message : c.last_message_text || c.preview || ''),
    lastPrivate: !!(last && last.private),
    lastAt: ms(c.last_message_at || (last && last.created_at) || c.updated_at),
    waitingSince: ms(c.waiting_since),
    slaDueAt: ms(c.sla_due_at || c.first_response_due_at || (c.sla && c.sla.first_response_due_at)),
    tags: c.tags || [],
    raw: c,
  };
}

/** A message as the inbox shows it. */
export function message(m) {
  const author = m.author || m.author_kind || (m.direction === 'inbound' ? 'customer' : 'agent');
  return {
    id: m.id,
    seq: m.seq,
    author,
    authorUserId: m.author_user_id || null,
    text: m.text === undefined || m.text === null ? '' : String(m.text),
    private: !!m.private || m.direction === 'internal',
    at: ms(m.created_at),
    status: m.status || null,
    failure: m.failure_reason || (m.failure && m.failure.reason) || null,
    attachments: m.attachments || [],
    mentions: m.mentions || null,
  };
}

/**
 * Whether conversation `c` (from `conversation()`) passes the filters `f`:
 * `{ view: 'mine'|'unassigned'|'team'|'all', channel, status, priority }` for `me`
 * (`{ id, teamIds: Set, teamMates: Set }`).
 */
export function passes(c, f, me) {
  if (f.view === 'mine' && c.assignee !== me.id) return false;
  if (f.view === 'unassigned' && c.assignee) return false;
  if (f.view === 'team' && !((c.teamId && me.teamIds.has(c.teamId)) || (c.assignee && me.teamMates.has(c.assignee)))) return false;
  if (f.channel && c.channel !== f.channel) return false;
  if (f.status && c.status !== f.status) return false;
  if (f.priority && c.priority !== f.priority) return false;
  return true;
}

/** The server-side query for filters `f` (what the pinned API filters itself). */
export function listQuery(f, me) {
  const q = {};
  if (f.status) q.status = f.status;
  if (f.channel) q.channel = f.channel;
  if (f.view === 'mine') q.assignee = me.id;
  return q;
}

/** Most urgent first: priority, then the SLA due time, then the longest waiting, then
 * the latest message. */
export function compare(a, b) {
  if (a.priority !== b.priority) return a.priority < b.priority ? -1 : 1;
  const da = a.slaDueAt ?? Infinity;
  const db = b.slaDueAt ?? Infinity;
  if (da !== db) return da - db;
  const wa = a.waitingSince ?? Infinity;
  const wb = b.waitingSince ?? Infinity;
  if (wa !== wb) return wa - wb;
  return (b.lastAt || 0) - (a.lastAt || 0);
}

/** "45 s", "12 min", "3 h 5 min", "2 d 4 h". */
export function shortDuration(msec) {
  const s = Math.max(0, Math.floor(msec / 1000));
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min`;
  const h = Math.floor(m / 60);
  if (h < 24) return m % 60 ? `${h} h ${m % 60} min` : `${h} h`;
  const d = Math.floor(h / 24);
  return h % 24 ? `${d} d ${h % 24} h` : `${d} d`;
}

/** How long the customer has been waiting for an answer, or null. */
export function waiting(c, now) {
  return c.waitingSince ? shortDuration(now - c.waitingSince) : null;
}

/** The SLA countdown: `{ text, kind: 'ok'|'soon'|'late' }` or null. `soon`: under
 * 5 minutes left. The due time is the API's, else the first-response target of the
 * conversation's priority (`policies`: priority → minutes) from when it started
 * waiting. Resolved and closed conversations have none. */
export function slaCountdown(c, now, policies) {
  if (c.status === 'resolved' || c.status === 'closed') return null;
  let due = c.slaDueAt;
  if (!due && c.waitingSince && policies && policies[c.priority]) due = c.waitingSince + policies[c.priority] * 60000;
  if (!due) return null;
  const left = due - now;
  if (left < 0) return { text: `SLA breached ${shortDuration(-left)} ago`, kind: 'late', due };
  return { text: `SLA ${shortDuration(left)} left`, kind: left < 5 * 60000 ? 'soon' : 'ok', due };
}

/** Placeholder values for a canned response: `customer` as the API gives it (name,
 * identities), `agent` the signed-in user. Missing ones are absent. */
export function placeholderValues(customer, agent) {
  const v = {};
  const first = (s) => String(s).trim().split(/\s+/)[0];
  if (customer && customer.name) { v['customer.name'] = customer.name; v['customer.first_name'] = first(customer.name); }
  for (const i of (customer && customer.identities) || []) {
    if (i.kind === 'email' && !v['customer.email']) v['customer.email'] = i.value;
    if (i.kind === 'phone' && !v['customer.phone']) v['customer.phone'] = i.value;
  }
  if (agent && agent.name) { v['agent.name'] = agent.name; v['agent.first_name'] = first(agent.name); }
  return v;
}

/** Fills `{{name}}` placeholders from `values`; unknown or empty ones stay as written
 * (the agent sees what is left to fill). Values are inserted as they are, never read
 * again as a template. Mirrors `parley_cases::canned::render`. */
export function renderCanned(body, values) {
  return String(body).replace(/\{\{([^}]*)\}\}/g, (all, name) => {
    const v = values[name.trim()];
    return v === undefined || v === null || v === '' ? all : String(v);
  });
}

/** `@name` tokens of a note, lower case: the local part of a user's email (the same
 * rule as the timeline's notes: an `@` inside a word, as in an email address, is not a
 * mention). */
export function mentionTokens(text) {
  const out = [];
  const re = /@([\p{L}\p{N}._-]+)/gu;
  let m;
  while ((m = re.exec(text))) {
    const before = m.index > 0 ? text[m.index - 1] : '';
    if (before && /[\p{L}\p{N}]/u.test(before)) continue;
    const tok = m[1].replace(/\.+$/, '').toLowerCase();
    if (tok && !out.includes(tok)) out.push(tok);
  }
  return out;
}

/** Whether note `m` (from `message()`) mentions user `me` (`{ id, email }`): by the
 * server's resolved list when it sent one, else by the note's tokens. */
export function mentions(m, me) {
  if (!m.private) return false;
  if (Array.isArray(m.mentions)) return m.mentions.includes(me.id);
  const local = String(me.email || '').split('@')[0].toLowerCase();
  return !!local && mentionTokens(m.text).includes(local);
}

/** The `@word` being typed at `caret` in `text`, or null: `{ start, word }`. */
export function mentionAt(text, caret) {
  const upto = text.slice(0, caret);
  const m = /(^|[^\p{L}\p{N}])@([\p{L}\p{N}._-]*)$/u.exec(upto);
  if (!m) return null;
  return { start: caret - m[2].length - 1, word: m[2].toLowerCase() };
}

/** The `/shortcut` being typed at the start of the reply box, or null. */
export function cannedAt(text, caret) {
  const m = /^\/([a-z0-9_-]*)$/.exec(text.slice(0, caret));
  return m ? m[1] : null;
}

/** What an identity chip shows: `{ kind, value, title }`. A web chat visitor's
 * identity is an opaque token hash, meaningless to an agent: it reads "Web chat
 * visitor" with a short reference (the full value stays in the tooltip). */
export function identityLabel(i) {
  const kind = String((i && i.kind) || '');
  const value = String((i && i.value) || '');
  if (kind === 'web_chat') {
    return { kind: 'web chat', value: 'Visitor ' + value.replace(/[^0-9a-z]/gi, '').slice(0, 6), title: value };
  }
  return { kind: kind.replace(/_/g, ' '), value, title: value };
}

/** A timeline row's meta parts after its kind: the channel, then the direction unless
 * it says the same thing (a note is `internal` on the `internal` channel: shown once). */
export function timelineMeta(i) {
  const channel = String((i && i.channel) || '').replace(/_/g, ' ');
  const direction = String((i && i.direction) || '');
  return direction && direction !== channel ? [channel, direction] : [channel];
}
