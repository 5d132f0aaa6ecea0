// Automation rules (issue 23) in real Chromium against the real `parley` binary: an
// admin builds a rule on Admin → Automation (trigger, conditions, actions), tries it with
// a dry run, saves it; a visitor's web chat that matches it is assigned, tagged and
// answered from the canned response; the rule's log shows the run
// (artifacts/rules-builder.png, rules-log.png).
//
// Environment: PARLEY_BIN, CHROMIUM, ARTIFACTS as for run.mjs. Run inside a loopback-only
// network namespace like the other browser tests (scripts/test.sh):
//   unshare -rn sh -c 'ip link set lo up; node tests/browser/rules.spec.mjs'

import { mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { ARTIFACTS, CHROMIUM, assert, startParley } from './harness.mjs';

const ADMIN = 'admin@demo.parley.test';
let server;
let browser;
let adminToken;

async function api(method, path, body) {
  if (!adminToken) {
    const res = await fetch(server.http + '/api/v1/auth/login', {
      method: 'POST', headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ tenant: 'demo', email: ADMIN, password: server.passwords[ADMIN] }),
    });
    assert(res.ok, `login: ${res.status}`);
    adminToken = (await res.json()).token;
  }
  const res = await fetch(server.http + '/api/v1' + path, {
    method, headers: { authorization: 'Bearer ' + adminToken, 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  assert(res.ok, `${method} ${path}: ${res.status} ${text}`);
  return text ? JSON.parse(text) : null;
}

async function visitor(name, text) {
  const res = await fetch(server.http + '/chat/v1/demo/conversations', {
    method: 'POST', headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ name, email: name.toLowerCase().replace(/\W/g, '') + '@example.com' }),
  });
  assert(res.status === 201, `start chat: ${res.status}`);
  const v = await res.json();
  const sent = await fetch(server.http + `/chat/v1/conversations/${v.conversation_id}/messages`, {
    method: 'POST', headers: { 'content-type': 'application/json', authorization: 'Bearer ' + v.visitor_token },
    body: JSON.stringify({ text, client_id: 'm1' }),
  });
  assert(sent.ok, `write: ${sent.status}`);
  return v.conversation_id;
}

const shot = (page, name) => page.screenshot({ path: join(ARTIFACTS, name + '.png'), fullPage: true });
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function main() {
  mkdirSync(ARTIFACTS, { recursive: true });
  for (const f of ['rules-builder', 'rules-log', 'rules-failure']) rmSync(join(ARTIFACTS, f + '.png'), { force: true });
  server = await startParley('rules', { RUST_LOG: process.env.RUST_LOG || 'warn' });
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync'],
  });
  const page = await (await browser.newContext({ viewport: { width: 1440, height: 900 } })).newPage();
  page.errors = [];
  page.on('pageerror', (e) => page.errors.push(String(e)));
  page.setDefaultTimeout(30000);
  try {
    // Something for the dry run to find: a refund chat before the rule exists.
    await visitor('Early Bird', 'Is my refund coming?');
    await page.goto(server.http + '/login');
    await page.waitForSelector('#login-form');
    await page.fill('[name=email]', ADMIN);
    await page.fill('[name=password]', server.passwords[ADMIN]);
    await page.click('#login-form button[type=submit]');
    await page.waitForSelector('#topbar:not([hidden])');
    await page.goto(server.http + '/admin/rules');
    await page.waitForSelector('#new-rule');
    await page.fill('#new-rule [name=name]', 'Refunds to Alice');
    // Condition: the message text contains "refund".
    await page.fill('#new-rule .cond-row .cond-value', 'refund');
    // Actions: assign to Alice, tag billing, reply /welcome.
    await page.selectOption('#new-rule .act-row:nth-child(1) .act-type', 'assign_user');
    await page.selectOption('#new-rule .act-row:nth-child(1) .act-param', { label: 'Alice Agent' });
    await page.click('#new-rule button:has-text("+ action")');
    await page.selectOption('#new-rule .act-row:nth-child(2) .act-type', 'add_tags');
    await page.fill('#new-rule .act-row:nth-child(2) .act-param', 'billing');
    await page.click('#new-rule button:has-text("+ action")');
    await page.selectOption('#new-rule .act-row:nth-child(3) .act-type', 'reply_template');
    await page.selectOption('#new-rule .act-row:nth-child(3) .act-param', 'welcome');
    // Dry run: the earlier refund chat is found.
    await page.click('#dry-run-btn');
    await page.waitForSelector('#dry-run h3:has-text("would fire on 1 of")');
    await shot(page, 'rules-builder');
    await page.click('#new-rule button[type=submit]');
    await page.waitForSelector('#admin-rules tr[data-rule="Refunds to Alice"]');

    // Live traffic: a matching chat is handled by the rule.
    const id = await visitor('Vera Visitor', 'Where is my REFUND?');
    let conv;
    for (let i = 0; i < 100; i++) {
      conv = await api('GET', `/conversations/${id}`);
      if (conv.tags.includes('billing') && conv.messages.some((m) => m.author === 'system')) break;
      await sleep(100);
    }
    assert(conv.tags.includes('billing'), 'tagged: ' + JSON.stringify(conv));
    assert(conv.assignee_id, 'assigned');
    const reply = conv.messages.find((m) => m.author === 'system');
    assert(reply && reply.text.startsWith('Hi Vera'), 'answered from the template: ' + JSON.stringify(conv.messages));

    await page.click('#admin-rules tr[data-rule="Refunds to Alice"] button:has-text("Log")');
    await page.waitForSelector('#rule-log td:has-text("applied")');
    await shot(page, 'rules-log');
    assert(page.errors.length === 0, 'no page errors: ' + page.errors.join('; '));
    console.log('ok   automation rules: built in the browser, dry run, live chat assigned/tagged/answered, log');
  } catch (e) {
    await page.screenshot({ path: join(ARTIFACTS, 'rules-failure.png'), fullPage: true }).catch(() => {});
    console.log('FAIL automation rules\n     ' + String(e.stack || e).split('\n').join('\n     '));
    console.log(server.log.slice(-40).join(''));
    process.exitCode = 1;
  } finally {
    await browser.close();
    server.child.kill('SIGTERM');
    rmSync(server.dir, { recursive: true, force: true });
  }
}

main().catch((e) => { console.error(e); process.exit(1); });
