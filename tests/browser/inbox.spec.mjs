// The unified inbox (issue 17) in real Chromium against the real `parley` binary:
// visitors write through the public chat API (`/chat/v1`), agents work in /inbox.
//   - several conversations in one list, with channel, customer, last message, waiting
//     time, SLA countdown and priority; filters; the customer's cases and timeline
//     beside the open conversation (artifacts/inbox-list.png, inbox-open.png);
//   - a customer's `<img src=x onerror=alert(1)>` is shown literally and runs nothing;
//   - a canned response typed as /shortcut, placeholders filled, sent to the visitor
//     (inbox-canned.png); an internal note with an @mention notifies the mentioned
//     agent only (inbox-note.png); a new assignment brings a desktop notification and
//     the chime; a visitor's message arrives live; keyboard shortcuts; the supervisor
//     sees every conversation and the wallboard counts chats (inbox-wallboard.png).
//
// Environment: PARLEY_BIN, CHROMIUM, ARTIFACTS as for run.mjs. Run inside a loopback-only
// network namespace like the other browser tests (scripts/test.sh):
//   unshare -rn sh -c 'ip link set lo up; node tests/browser/inbox.spec.mjs'

import { mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { ARTIFACTS, CHROMIUM, assert, startParley } from './harness.mjs';

const ADMIN = 'admin@demo.parley.test';
const SUPERVISOR = 'supervisor@demo.parley.test';
const AGENT = 'agent1@demo.parley.test';
const AGENT2 = 'agent2@demo.parley.test';
const XSS = '<img src=x onerror=alert(1)>';

let server;
let browser;
const tokens = {};

async function token(email) {
  if (tokens[email]) return tokens[email];
  const res = await fetch(server.http + '/api/v1/auth/login', {
    method: 'POST', headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ tenant: 'demo', email, password: server.passwords[email] }),
  });
  assert(res.ok, `login ${email}: ${res.status}`);
  tokens[email] = (await res.json()).token;
  return tokens[email];
}

async function api(email, method, path, body) {
  const res = await fetch(server.http + '/api/v1' + path, {
    method, headers: { authorization: 'Bearer ' + await token(email), 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  assert(res.ok, `${method} ${path}: ${res.status} ${text}`);
  return text ? JSON.parse(text) : null;
}

/** A visitor of the demo tenant's web chat: starts a conversation, writes. */
async function visitor(name, email) {
  const res = await fetch(server.http + '/chat/v1/demo/conversations', {
    method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ name, email }),
  });
  const text = await res.text();
  assert(res.status === 201, `start chat: ${res.status} ${text}`);
  const v = JSON.parse(text);
  v.say = async (msg) => {
    const r = await fetch(`${server.http}/chat/v1/conversations/${v.conversation_id}/messages`, {
      method: 'POST', headers: { authorization: 'Bearer ' + v.visitor_token, 'content-type': 'application/json' },
      body: JSON.stringify({ text: msg, client_id: 'c-' + Math.random().toString(36).slice(2) }),
    });
    assert(r.status === 201, `visitor message: ${r.status} ${await r.text()}`);
  };
  v.messages = async () => {
    const r = await fetch(`${server.http}/chat/v1/conversations/${v.conversation_id}/messages?after=0`, {
      headers: { authorization: 'Bearer ' + v.visitor_token },
    });
    assert(r.ok, `visitor stream: ${r.status}`);
    return (await r.json()).messages;
  };
  return v;
}

/** A page that records what would reach the user: desktop notifications, chimes
 * (oscillators started), and any dialog (an `alert` run by injected markup). */
async function newPage(grant = true) {
  const context = await browser.newContext({ viewport: { width: 1440, height: 900 } });
  if (grant) await context.grantPermissions(['notifications'], { origin: server.http });
  await context.addInitScript(() => {
    window.__notes = [];
    window.__chimes = 0;
    window.__dialogs = [];
    const N = window.Notification;
    if (N) {
      class Recorded extends N {
        constructor(title, opts) { window.__notes.push({ title, body: opts && opts.body }); super(title, opts); }
      }
      Object.defineProperty(Recorded, 'permission', { get: () => N.permission });
      Recorded.requestPermission = (...a) => N.requestPermission(...a);
      window.Notification = Recorded;
    }
    const start = OscillatorNode.prototype.start;
    OscillatorNode.prototype.start = function (...a) { window.__chimes++; return start.apply(this, a); };
  });
  const page = await context.newPage();
  page.errors = [];
  page.on('pageerror', (e) => page.errors.push(String(e)));
  page.on('console', (m) => { if (m.type() === 'error' && !m.text().startsWith('Failed to load resource')) page.errors.push(m.text()); });
  page.on('dialog', async (d) => { page.errors.push('dialog: ' + d.message()); await d.dismiss(); });
  page.setDefaultTimeout(30000);
  return page;
}

async function login(page, email, path) {
  await page.goto(server.http + '/login');
  await page.waitForSelector('#login-form');
  await page.fill('[name=email]', email);
  await page.fill('[name=password]', server.passwords[email]);
  await page.click('#login-form button[type=submit]');
  await page.waitForSelector('#topbar:not([hidden])');
  await page.waitForSelector('#conn.open');
  if (path) {
    await page.click(`#nav a[href="${path}"]`);
    await page.waitForSelector('#conversations');
  }
}

const shot = (page, name) => page.screenshot({ path: join(ARTIFACTS, name + '.png'), fullPage: true });
const rowOf = (id) => `#conversations li.conv[data-id="${id}"]`;

async function main() {
  mkdirSync(ARTIFACTS, { recursive: true });
  for (const f of ['inbox-admin-canned', 'inbox-list', 'inbox-open', 'inbox-canned', 'inbox-note', 'inbox-wallboard', 'inbox-failure']) rmSync(join(ARTIFACTS, f + '.png'), { force: true });
  server = await startParley('inbox', { RUST_LOG: process.env.RUST_LOG || 'warn' });
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', '--autoplay-policy=no-user-gesture-required'],
  });
  const pages = [];
  try {
    // The library: an admin's canned response with placeholders.
    await api(ADMIN, 'POST', '/canned-responses', {
      shortcut: 'hello', title: 'Greeting', body: 'Hi {{customer.first_name}}, this is {{agent.first_name}} from Parley. How can I help?',
    });
    // The second one through the admin page; an unknown placeholder is refused there.
    const adm = await newPage();
    pages.push(adm);
    await login(adm, ADMIN);
    await adm.goto(server.http + '/admin/canned');
    await adm.waitForSelector('#new-canned');
    await adm.fill('#new-canned [name=shortcut]', 'refund');
    await adm.fill('#new-canned [name=title]', 'Refund sent');
    await adm.fill('#new-canned [name=body]', 'Your refund is on its way, {{customer.nickname}}.');
    await adm.click('#new-canned button[type=submit]');
    await adm.waitForSelector('#new-canned .error >> text=unknown placeholder');
    await adm.fill('#new-canned [name=body]', 'Your refund is on its way, {{customer.name}}.');
    await adm.click('#new-canned button[type=submit]');
    await adm.waitForSelector('#admin-canned tr[data-shortcut=refund]');
    await shot(adm, 'inbox-admin-canned');

    // Three visitors write.
    const maria = await visitor('Maria Lopez', 'maria.lopez@example.com');
    await maria.say('My order #1234 never arrived.');
    const evil = await visitor('Eve Mallory', 'eve@example.com');
    await evil.say(XSS);
    const ken = await visitor('Ken Tanaka', 'ken@example.com');
    await ken.say('Can I change my plan to the yearly one?');

    // The supervisor sees every conversation.
    const sup = await newPage();
    pages.push(sup);
    await login(sup, SUPERVISOR, '/inbox');
    await sup.click('#inbox-filters [data-view=all]');
    for (const v of [maria, evil, ken]) await sup.waitForSelector(rowOf(v.conversation_id));

    // Agent 1's inbox: several conversations, one list.
    const a1 = await newPage();
    pages.push(a1);
    await login(a1, AGENT, '/inbox');
    await a1.click('#inbox-filters [data-view=all]');
    for (const v of [maria, evil, ken]) await a1.waitForSelector(rowOf(v.conversation_id));
    // Last messages and customers' names fill in as they are read.
    await a1.waitForFunction(([m, e]) => {
      const last = (id) => (document.querySelector(`#conversations li.conv[data-id="${id}"] .conv-last`) || {}).textContent;
      return /never arrived/.test(last(m) || '') && last(e) === '<img src=x onerror=alert(1)>'
        && document.querySelector(`#conversations li.conv[data-id="${m}"] .conv-customer`).textContent === 'Maria Lopez';
    }, [maria.conversation_id, evil.conversation_id]);
    const row = await a1.$eval(rowOf(maria.conversation_id), (li) => ({
      channel: li.querySelector('.ch-icon').getAttribute('aria-label'),
      customer: li.querySelector('.conv-customer').textContent,
      last: li.querySelector('.conv-last').textContent,
      priority: li.querySelector('.badge.prio').textContent,
      wait: (li.querySelector('.wait') || {}).textContent || '',
      sla: (li.querySelector('.sla') || {}).textContent || '',
    }));
    assert(row.channel === 'Web chat', 'channel icon: ' + JSON.stringify(row));
    assert(row.customer === 'Maria Lopez', 'customer: ' + JSON.stringify(row));
    assert(row.last.includes('never arrived'), 'last message: ' + JSON.stringify(row));
    assert(/^P[0-3]$/.test(row.priority), 'priority: ' + JSON.stringify(row));
    assert(row.wait.startsWith('Waiting'), 'waiting time: ' + JSON.stringify(row));
    assert(/SLA/.test(row.sla), 'SLA countdown: ' + JSON.stringify(row));
    // The customer's markup is text in the list too.
    assert((await a1.textContent(rowOf(evil.conversation_id) + ' .conv-last')) === XSS, 'list shows the markup literally');
    await shot(a1, 'inbox-list');

    // Filters: a channel with no conversation empties the list; back to any.
    await a1.selectOption('#inbox-filters select[name=channel]', 'email');
    await a1.waitForSelector('#conversations li.empty');
    await a1.selectOption('#inbox-filters select[name=channel]', '');
    await a1.waitForSelector(rowOf(maria.conversation_id));

    // The markup conversation: literal text, no element, no script.
    await a1.click(rowOf(evil.conversation_id) + ' a');
    await a1.waitForSelector('#messages li.msg.customer');
    const shown = await a1.$eval('#messages li.msg.customer .msg-text', (d) => ({ text: d.textContent, imgs: d.querySelectorAll('img').length }));
    assert(shown.text === XSS && shown.imgs === 0, 'the message is shown as text: ' + JSON.stringify(shown));
    assert(await a1.$$eval('#conversation img, #conversations img', (l) => l.length) === 0, 'no image element anywhere');

    // Maria's conversation beside her customer record.
    await a1.click(rowOf(maria.conversation_id) + ' a');
    await a1.waitForFunction(() => (document.querySelector('#conv-customer') || {}).textContent === 'Maria Lopez');
    await a1.waitForSelector('#conv-timeline');
    await a1.waitForSelector('#conv-cases');
    assert(new URL(a1.url()).pathname === '/inbox/' + maria.conversation_id, 'the URL follows: ' + a1.url());
    if (await a1.$('#assign-me')) {
      await a1.click('#assign-me');
      await a1.waitForSelector('#assign-me', { state: 'detached' });
    }
    await shot(a1, 'inbox-open');

    // A canned response by its shortcut: /hel + Tab, placeholders filled.
    await a1.click('#reply-form [data-mode=reply]');
    await a1.focus('#reply-text');
    await a1.keyboard.type('/hel');
    await a1.waitForSelector('#reply-suggest .opt');
    await a1.keyboard.press('Tab');
    const filled = await a1.inputValue('#reply-text');
    assert(filled === 'Hi Maria, this is Alice from Parley. How can I help?', 'canned response filled: ' + filled);
    await shot(a1, 'inbox-canned');
    await a1.keyboard.press('Control+Enter');
    await a1.waitForSelector('#messages li.msg.agent >> text=this is Alice from Parley');
    // Its delivery status shows under it (queued until the channel has it, then sent…).
    const status = await a1.getAttribute('#messages li.msg.agent .msg-status', 'data-status');
    assert(['queued', 'sent', 'delivered', 'read'].includes(status), 'delivery status shown: ' + status);
    // The delivery worker hands it to the web chat: the visitor's stream has it.
    let got = [];
    for (const until = Date.now() + 20000; Date.now() < until && !got.some((m) => m.author === 'agent');) {
      got = await maria.messages();
      if (!got.some((m) => m.author === 'agent')) await new Promise((r) => setTimeout(r, 100));
    }
    assert(got.some((m) => m.author === 'agent' && m.text.includes('this is Alice')), 'the visitor got the reply: ' + JSON.stringify(got));
    // …and the agent's page shows it delivered, live.
    await a1.waitForSelector('#messages li.msg.agent .msg-status:not([data-status=queued])', { timeout: 15000 });

    // The picker (c) inserts the other response at the caret.
    await a1.click('#messages');
    await a1.keyboard.press('c');
    await a1.waitForSelector('#canned-picker:not([hidden]) input');
    await a1.keyboard.type('refund');
    await a1.keyboard.press('Enter');
    assert((await a1.inputValue('#reply-text')) === 'Your refund is on its way, Maria Lopez.', 'picker inserted: ' + await a1.inputValue('#reply-text'));
    await a1.fill('#reply-text', '');

    // Agent 2 and the supervisor watch; agent 1 writes a note mentioning agent 2.
    const a2 = await newPage();
    pages.push(a2);
    await login(a2, AGENT2, '/inbox');
    await a1.click('#messages');
    await a1.keyboard.press('n');
    await a1.keyboard.type('Refund approved, @agen');
    await a1.waitForSelector('#reply-suggest .opt >> text=@agent2');
    await a1.click('#reply-suggest .opt >> text=@agent2');
    await a1.keyboard.type('please confirm the courier.');
    await a1.click('#reply-send');
    await a1.waitForSelector('#messages li.msg.note >> text=please confirm the courier');
    await a2.waitForFunction(() => window.__notes.some((n) => /mentioned you/.test(n.title)), null, { timeout: 15000 });
    const note2 = await a2.evaluate(() => window.__notes.find((n) => /mentioned you/.test(n.title)));
    assert(note2.body.includes('@agent2 please confirm the courier'), 'mention notification body: ' + JSON.stringify(note2));
    assert(await a2.evaluate(() => window.__chimes) > 0, 'the mention chimed');
    await shot(a1, 'inbox-note');
    // The note is never sent to the visitor.
    const seen = await maria.messages();
    assert(!seen.some((m) => m.text.includes('courier')), 'the note stays internal: ' + JSON.stringify(seen));

    // A new assignment: the supervisor gives Ken to agent 2 → notification and chime.
    await api(SUPERVISOR, 'POST', `/conversations/${ken.conversation_id}/assign`, { user_id: (await api(AGENT2, 'GET', '/me')).id });
    await a2.waitForFunction(() => window.__notes.some((n) => /assigned to you/.test(n.title)), null, { timeout: 15000 });
    const assigned = await a2.evaluate(() => window.__notes.find((n) => /assigned to you/.test(n.title)));
    assert(assigned.body.includes('Ken Tanaka'), 'assignment notification names the customer: ' + JSON.stringify(assigned));
    // Only the mentioned agent was told about the note; nobody but agent 2 about Ken.
    // (agent 1 assigned Maria to herself: that is no news to her.)
    const others = [...await a1.evaluate(() => window.__notes), ...await sup.evaluate(() => window.__notes)];
    assert(!others.some((n) => /mentioned you|assigned to you/.test(n.title)), 'no one else was notified: ' + JSON.stringify(others));

    // Live: Maria writes again; agent 1 sees it in the open conversation, no reload.
    await a1.evaluate(() => { window.__noReload = true; });
    await maria.say('Thank you! It just arrived.');
    await a1.waitForSelector('#messages li.msg.customer >> text=It just arrived', { timeout: 15000 });
    assert(await a1.evaluate(() => window.__noReload === true), 'the page did not reload');

    // Keyboard: j / k move to the next / previous conversation and back, e resolves.
    await a1.click('#messages');
    const before = new URL(a1.url()).pathname;
    const order = await a1.$$eval('#conversations li.conv', (l) => l.map((li) => li.dataset.id));
    const [away, back] = order.indexOf(maria.conversation_id) < order.length - 1 ? ['j', 'k'] : ['k', 'j'];
    await a1.keyboard.press(away);
    await a1.waitForFunction((p) => location.pathname !== p, before);
    await a1.keyboard.press(back);
    await a1.waitForFunction((p) => location.pathname === p, before);
    await a1.waitForFunction(() => (document.querySelector('#conv-customer') || {}).textContent === 'Maria Lopez');
    await a1.keyboard.press('e');
    await a1.waitForSelector(rowOf(maria.conversation_id) + '[data-status=resolved]');
    await a1.keyboard.press('?');
    await a1.waitForSelector('#shortcuts:not([hidden])');
    await a1.keyboard.press('Escape');

    // The wallboard counts chats.
    await sup.click('#nav a[href="/supervisor"]');
    await sup.waitForSelector('#wallboard [data-source=chats] .tile');
    const tiles = await sup.$$eval('#wallboard [data-source=chats] .tile', (l) => Object.fromEntries(l.map((t) => [t.querySelector('.label').textContent, t.querySelector('.value').textContent])));
    assert(tiles['Open'] === '2' && tiles['Web chats'] === '2', 'chats on the wallboard: ' + JSON.stringify(tiles));
    await shot(sup, 'inbox-wallboard');

    for (const p of pages) assert(p.errors.length === 0, 'no page errors or dialogs: ' + p.errors.join('; '));
    console.log('ok   the unified inbox: list, filters, markup as text, canned responses, notes with mentions, notifications, live, keyboard, wallboard');
  } catch (e) {
    for (const [i, p] of pages.entries()) await p.screenshot({ path: join(ARTIFACTS, `inbox-failure-${i}.png`), fullPage: true }).catch(() => {});
    console.log('FAIL the unified inbox\n     ' + String(e.stack || e).split('\n').join('\n     '));
    console.log(server.log.slice(-40).join(''));
    process.exitCode = 1;
  } finally {
    await browser.close();
    server.child.kill('SIGTERM');
    rmSync(server.dir, { recursive: true, force: true });
  }
}

main().catch((e) => { console.error(e); process.exit(1); });
