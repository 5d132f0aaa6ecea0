// The unified inbox's pure parts (web/ui/pages/inboxlib.js), with plain Node (no
// browser): `node tests/browser/inboxlib.test.mjs`. Issue 17: filters, waiting times,
// SLA countdowns, canned-response placeholders, @mentions.

import {
  conversation, message, passes, compare, slaCountdown, waiting, renderCanned, placeholderValues,
  mentionTokens, mentions, mentionAt, cannedAt, shortDuration, identityLabel, timelineMeta,
} from '../../web/ui/pages/inboxlib.js';

let failed = 0;
function check(name, got, want) {
  const [g, w] = [JSON.stringify(got), JSON.stringify(want)];
  if (g === w) console.log('ok   ' + name);
  else { failed++; console.log(`FAIL ${name}\n  got  ${g}\n  want ${w}`); }
}

const T = Date.parse('2026-12-06T22:00:00Z');
const c = (o) => conversation({ id: 'c', customer_id: 'k', channel: 'web_chat', status: 'open', priority: 'P2', ...o });
const me = { id: 'u1', teamIds: new Set(['t1']), teamMates: new Set(['u1', 'u2']) };

check('channel object', conversation({ id: 'x', channel: { kind: 'email' } }).channel, 'email');
check('last message object', c({ last_message: { text: 'hi', private: false } }).lastText, 'hi');
check('mine', [c({ assignee_id: 'u1' }), c({ assignee_id: 'u2' }), c({ assignee_id: null })].map((x) => passes(x, { view: 'mine' }, me)), [true, false, false]);
check('unassigned', [c({ assignee_id: 'u1' }), c({ assignee_id: null })].map((x) => passes(x, { view: 'unassigned' }, me)), [false, true]);
check('team: by team or by a team mate', [c({ team_id: 't1' }), c({ assignee_id: 'u2' }), c({ assignee_id: 'u9' })].map((x) => passes(x, { view: 'team' }, me)), [true, true, false]);
check('channel, status, priority', [
  passes(c({}), { view: 'all', channel: 'email' }, me),
  passes(c({}), { view: 'all', status: 'open', priority: 'P2', channel: 'web_chat' }, me),
  passes(c({ priority: 'P1' }), { view: 'all', priority: 'P2' }, me),
], [false, true, false]);

const sorted = [
  c({ id: 'late-p2', waiting_since: '2026-12-06T21:00:00Z' }),
  c({ id: 'p1', priority: 'P1' }),
  c({ id: 'early-p2', waiting_since: '2026-12-06T20:00:00Z' }),
].sort(compare).map((x) => x.id);
check('most urgent first', sorted, ['p1', 'early-p2', 'late-p2']);

check('durations', [shortDuration(5000), shortDuration(12 * 60000), shortDuration(185 * 60000), shortDuration(50 * 3600000)], ['5 s', '12 min', '3 h 5 min', '2 d 2 h']);
const w = c({ waiting_since: '2026-12-06T21:48:00Z' });
check('waiting', waiting(w, T), '12 min');
check('SLA from the policy', slaCountdown(w, T, { P2: 15 }), { text: 'SLA 3 min left', kind: 'soon', due: T + 3 * 60000 });
check('SLA breached', slaCountdown(w, T, { P2: 10 }).text, 'SLA breached 2 min ago');
check('SLA from the API', slaCountdown(c({ sla_due_at: '2026-12-06T23:00:00Z' }), T, {}).kind, 'ok');
check('no SLA once resolved', slaCountdown(c({ status: 'resolved', sla_due_at: '2026-12-06T23:00:00Z' }), T, {}), null);

const values = placeholderValues({ name: 'Maria Garcia', identities: [{ kind: 'email', value: 'maria@example.com' }] }, { name: 'Alex Agent' });
check('placeholders filled', renderCanned('Hi {{customer.first_name}}, {{ agent.first_name }} here ({{customer.email}}).', values), 'Hi Maria, Alex here (maria@example.com).');
check('missing placeholders stay', renderCanned('Call {{customer.phone}}', values), 'Call {{customer.phone}}');
check('values are not templates', renderCanned('{{customer.name}}', { 'customer.name': '{{agent.name}} <b>' }), '{{agent.name}} <b>');

check('mention tokens', mentionTokens('@agent2 and @Supervisor. not mail@example.com'), ['agent2', 'supervisor']);
const note = message({ id: 'm', text: 'please look @agent2', private: true, author_kind: 'agent' });
check('mentioned by token', [mentions(note, { id: 'u2', email: 'agent2@demo.parley.test' }), mentions(note, { id: 'u1', email: 'agent1@demo.parley.test' })], [true, false]);
check('mentioned by the server list', mentions(message({ text: '@x', private: true, mentions: ['u1'] }), { id: 'u1', email: 'z@z' }), true);
check('a reply is not a note', mentions(message({ text: '@agent2', private: false }), { id: 'u2', email: 'agent2@x' }), false);
check('mention at caret', mentionAt('hi @ag', 6), { start: 3, word: 'ag' });
check('no mention in an address', mentionAt('mail@ex', 7), null);
check('canned at caret', [cannedAt('/ref', 4), cannedAt('x /ref', 6)], ['ref', null]);

// Regression (issue 17 review): the customer card showed a web chat visitor's raw token
// hash, and a note's timeline row read "internal · internal".
check('web chat identity label', identityLabel({ kind: 'web_chat', value: 'a1b2c3d4e5f6a7b8c9' }), { kind: 'web chat', value: 'Visitor a1b2c3', title: 'a1b2c3d4e5f6a7b8c9' });
check('other identities as they are', identityLabel({ kind: 'email', value: 'x@y.z' }), { kind: 'email', value: 'x@y.z', title: 'x@y.z' });
check('note meta once', [timelineMeta({ channel: 'internal', direction: 'internal' }), timelineMeta({ channel: 'web_chat', direction: 'inbound' })], [['internal'], ['web chat', 'inbound']]);

if (failed) { console.log(`${failed} failed`); process.exit(1); }
console.log('all passed');
