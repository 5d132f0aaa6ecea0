// Incidents (issue 21) in real Chromium against the real `parley` binary: three web-chat
// visitors report the same checkout error through `/chat/v1`; the supervisor sees the
// burst among the suggestions on /incidents, opens an incident with the conversations
// linked in one click, writes a public update (preview per channel), posts it — every
// visitor receives it once, personalised — and moves the status; the board shows it
// under its status; an agent opening one of the conversations in /inbox sees the
// incident banner. Screenshots: artifacts/incidents-suggestions.png, incidents-view.png,
// incidents-board.png, incidents-inbox-banner.png.
//
// Environment: PARLEY_BIN, CHROMIUM, ARTIFACTS as for run.mjs. Run inside a loopback-only
// network namespace like the other browser tests (scripts/test.sh):
//   unshare -rn sh -c 'ip link set lo up; node tests/browser/incidents.spec.mjs'

import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { ARTIFACTS, CHROMIUM, assert, sleep, startParley } from './harness.mjs';

const SUPERVISOR = 'supervisor@demo.parley.test';
const AGENT = 'agent1@demo.parley.test';

let server;
let browser;

async function visitor(name) {
  const res = await fetch(server.http + '/chat/v1/demo/conversations', {
    method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ name }),
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

async function newPage() {
  const context = await browser.newContext({ viewport: { width: 1440, height: 900 } });
  const page = await context.newPage();
  page.errors = [];
  page.on('pageerror', (e) => page.errors.push(String(e)));
  page.on('console', (m) => { if (m.type() === 'error' && !m.text().startsWith('Failed to load resource')) page.errors.push(m.text()); });
  page.setDefaultTimeout(30000);
  return page;
}

async function login(page, email) {
  await page.goto(server.http + '/login');
  await page.waitForSelector('#login-form');
  await page.fill('[name=email]', email);
  await page.fill('[name=password]', server.passwords[email]);
  await page.click('#login-form button[type=submit]');
  await page.waitForSelector('#topbar:not([hidden])');
}

const shot = (page, name) => page.screenshot({ path: join(ARTIFACTS, name + '.png'), fullPage: true });

async function main() {
  mkdirSync(ARTIFACTS, { recursive: true });
  server = await startParley('incidents', { RUST_LOG: process.env.RUST_LOG || 'warn' });
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync'],
  });
  try {
    const visitors = [];
    for (const [name, text] of [
      ['Ann Lee', 'Checkout fails with error 500 when I pay'],
      ['Bo Chan', 'checkout error 500 on pay'],
      ['Cy Diaz', 'Error 500 at checkout, cannot pay'],
    ]) {
      const v = await visitor(name);
      await v.say(text);
      visitors.push(v);
    }

    const sup = await newPage();
    await login(sup, SUPERVISOR);
    await sup.click('#nav a[href="/incidents"]');
    await sup.waitForSelector('#suggestions li.suggestion button').catch(async (e) => {
      await shot(sup, 'incidents-failure');
      throw new Error(`${e.message}\npage: ${await sup.textContent('#view')}\nerrors: ${sup.errors.join('\n')}`);
    });
    const sug = await sup.textContent('#suggestions');
    assert(sug.includes('3 customers'), 'the burst names its customers: ' + sug);
    await shot(sup, 'incidents-suggestions');
    await sup.click('#suggestions li.suggestion button');
    await sup.waitForSelector('#incident-status');
    await sup.waitForFunction(() => document.querySelector('#affected')?.textContent.startsWith('3 '));

    // A public update with its preview, posted to the three customers.
    await sup.fill('#composer textarea', 'Card payments fail at checkout; a fix is being deployed.');
    await sup.check('#composer input[type=checkbox]');
    await sup.waitForSelector('.preview-msg[data-channel=web_chat]');
    const preview = await sup.textContent('.preview');
    assert(preview.includes('an update on'), 'preview: ' + preview);
    await sup.click('#composer button[type=submit]');
    await sup.waitForSelector('.incident-timeline li[data-kind=update]');
    await sup.waitForFunction(() => document.querySelector('#deliveries')?.textContent.includes('web_chat'));
    await sup.click('button[data-to=identified]');
    await sup.waitForFunction(() => document.querySelector('#incident-status')?.textContent === 'Identified');
    await shot(sup, 'incidents-view');

    // Every visitor receives it once, personalised (the delivery worker sends it).
    for (const [i, v] of visitors.entries()) {
      let got = [];
      for (let t = 0; t < 100 && got.length === 0; t++) {
        got = (await v.messages()).filter((m) => m.text.includes('a fix is being deployed'));
        if (!got.length) await sleep(100);
      }
      assert(got.length === 1, `visitor ${i} got the update once: ${JSON.stringify(got)}`);
      const first = ['Ann', 'Bo', 'Cy'][i];
      assert(got[0].text.startsWith(`Hi ${first},`), 'personalised: ' + got[0].text);
    }

    await sup.click('a[href="/incidents"]');
    await sup.waitForSelector('.incident-col[data-status=identified] .incident-card');
    await shot(sup, 'incidents-board');

    // The agent sees the incident on the conversation.
    const agent = await newPage();
    await login(agent, AGENT);
    await agent.goto(server.http + '/inbox/' + visitors[0].conversation_id);
    await agent.waitForSelector('.incident-banner');
    const banner = await agent.textContent('.incident-banner');
    assert(banner.includes('Reports:') && banner.includes('identified'), 'banner: ' + banner);
    await shot(agent, 'incidents-inbox-banner');
    for (const p of [sup, agent]) assert(p.errors.length === 0, 'page errors: ' + p.errors.join('\n'));
    console.log('incidents.spec: ok');
  } finally {
    await browser.close();
    server.child.kill();
  }
}

main().catch((e) => {
  console.error(e);
  if (server) console.error(server.log.join('').slice(-4000));
  process.exit(1);
});
