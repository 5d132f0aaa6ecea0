// The web chat widget in real Chromium against the real `parley` binary (issue #17):
// a plain page served from ANOTHER origin (a second local port) embeds
//   <script type="module" src="http://<parley>/chat/widget.js" data-tenant="demo">
// and the visitor chats:
//   - no agent available → the widget says so and still takes the message;
//   - pre-chat form (name, email), a message with HTML in it shown as text (no element
//     made from it, no alert);
//   - an agent replies through the agents' API (POST /api/v1/conversations/{id}/messages)
//     and the widget shows it (over the WebSocket);
//   - reload keeps the history;
//   - WebSocket blocked (every connection refused) → the widget falls back to
//     long-polling, and a message still arrives;
//   - the agent resolves → the widget asks for a CSAT score, which is stored;
//   - screenshots: artifacts/chat-desktop.png, chat-mobile.png, chat-csat.png.
//
// Environment: PARLEY_BIN, CHROMIUM, ARTIFACTS as the other browser tests. Run inside a
// loopback-only network namespace like them (scripts/test.sh).

import { createServer } from 'node:http';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { ARTIFACTS, CHROMIUM, assert, sleep, startParley } from './harness.mjs';

const SUPERVISOR = 'supervisor@demo.parley.test';

async function waitFor(what, fn, ms = 15000) {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn().catch(() => null);
    if (v) return v;
    if (Date.now() > end) throw new Error('timed out waiting for ' + what);
    await sleep(100);
  }
}

async function login(server, email) {
  const res = await fetch(server.http + '/api/v1/auth/login', {
    method: 'POST', headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ tenant: 'demo', email, password: server.passwords[email] }),
  });
  assert(res.ok, `login ${email}: ${res.status}`);
  return (await res.json()).token;
}

async function api(server, token, method, path, body) {
  const res = await fetch(server.http + '/api/v1' + path, {
    method, headers: { authorization: 'Bearer ' + token, 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  assert(res.ok, `${method} ${path}: ${res.status} ${text}`);
  return text ? JSON.parse(text) : null;
}

/** The plain page of "another site": only the embed snippet. */
function startShop(parley) {
  const page = `<!doctype html><html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><title>Demo Shop</title>
<style>body{font-family:Georgia,serif;margin:40px;background:#fbf8f3}</style></head>
<body><h1>Demo Shop</h1><p>Hand-made things. Questions? Chat with us.</p>
<script type="module" src="${parley}/chat/widget.js" data-tenant="demo" data-color="#7a2b8f"
  data-greeting="Hello from Demo Shop! Ask us anything." data-title="Chat with Demo Shop"></script>
</body></html>`;
  const srv = createServer((req, res) => {
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
    res.end(page);
  });
  return new Promise((ok) => srv.listen(0, '127.0.0.1', () => ok(srv)));
}

/** The widget's bubbles (author class, text), in order. */
function bubbles(page) {
  return page.evaluate(() => [...document.querySelector('#parley-chat').shadowRoot.querySelectorAll('.msg[data-seq]')]
    .map((b) => ({ author: b.classList[1], text: b.lastChild.textContent })));
}

async function main() {
  mkdirSync(ARTIFACTS, { recursive: true });
  const server = await startParley('chat', { RUST_LOG: process.env.RUST_LOG || 'warn' });
  const shop = await startShop(server.http);
  const shopUrl = `http://127.0.0.1:${shop.address().port}/`;
  assert(!shopUrl.startsWith(server.http), 'the shop is another origin');
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync'],
  });
  const errors = [];
  let page;
  try {
    const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    page = await context.newPage();
    page.on('dialog', (d) => { errors.push('dialog: ' + d.message()); d.dismiss(); });
    page.on('pageerror', (e) => errors.push('page error: ' + e.message));

    // Every agent goes offline: the widget must say nobody is there.
    const sup = await login(server, SUPERVISOR);
    for (const u of await api(server, sup, 'GET', '/users')) {
      if (u.role === 'agent') await api(server, sup, 'PUT', `/users/${u.id}/presence`, { status: 'offline' });
    }
    await waitFor('no agent available', async () => {
      const c = await (await fetch(server.http + '/chat/v1/demo/config')).json();
      return c.agents_available === false;
    });
    await page.goto(shopUrl);

    // No agent is available: the widget says so and still takes a message.
    const launcher = page.getByRole('button', { name: 'Chat with Demo Shop' });
    await launcher.click();
    assert(await launcher.getAttribute('aria-expanded') === 'true', 'launcher expanded');
    const dialog = page.getByRole('dialog', { name: 'Chat with Demo Shop' });
    await dialog.getByText('No agent is available right now').waitFor();
    await dialog.getByText('Hello from Demo Shop!').waitFor();

    // Pre-chat form, with the keyboard.
    await dialog.getByLabel('Your name (optional)').fill('Vera Visitor');
    await dialog.getByLabel('Your email (optional)').fill('vera@example.com');
    await dialog.getByRole('button', { name: 'Start chat' }).click();
    const box = dialog.getByRole('textbox', { name: 'Your message' });
    await box.waitFor();
    const evil = 'Hello, I need help <img src=x onerror=alert(1)>';
    await box.fill(evil);
    await box.press('Enter');
    await waitFor('my message', async () => (await bubbles(page)).some((b) => b.author === 'customer' && b.text === evil));
    const imgs = await page.evaluate(() => document.querySelector('#parley-chat').shadowRoot.querySelectorAll('.log img').length);
    assert(imgs === 0, 'HTML from a message became an element');
    await waitFor('the WebSocket', async () => (await page.evaluate(() => document.querySelector('#parley-chat').dataset.transport)) === 'ws');

    const session = await page.evaluate(() => {
      const k = Object.keys(localStorage).find((x) => x.startsWith('parley-chat:'));
      return JSON.parse(localStorage.getItem(k));
    });
    assert(session?.id && session?.token, 'the session is kept');

    // The agent replies through the agents' API; the widget shows it.
    await api(server, sup, 'POST', `/conversations/${session.id}/messages`, { text: 'Hi Vera, Alex here. How can I help?' });
    await waitFor('the agent reply', async () => (await bubbles(page)).some((b) => b.author === 'agent' && b.text.includes('Alex here')));
    await page.screenshot({ path: join(ARTIFACTS, 'chat-desktop.png') });

    // Reload keeps the history.
    await page.reload();
    await page.getByRole('button', { name: 'Chat with Demo Shop' }).click();
    await waitFor('history after reload', async () => {
      const b = await bubbles(page);
      return b.length === 2 && b[0].text === evil && b[1].author === 'agent';
    });

    // WebSocket blocked: every connection attempt is refused; long-polling delivers.
    const blocked = await context.newPage();
    blocked.on('dialog', (d) => { errors.push('dialog: ' + d.message()); d.dismiss(); });
    await blocked.routeWebSocket(/\/chat\/v1\//, (ws) => ws.close({ code: 1011, reason: 'blocked by test' }));
    await blocked.goto(shopUrl);
    await blocked.getByRole('button', { name: 'Chat with Demo Shop' }).click();
    await waitFor('long-poll fallback', async () => (await blocked.evaluate(() => document.querySelector('#parley-chat').dataset.transport)) === 'poll');
    await waitFor('history over long-poll', async () => (await bubbles(blocked)).length === 2);
    await api(server, sup, 'POST', `/conversations/${session.id}/messages`, { text: 'Your parcel ships tomorrow.' });
    await waitFor('a reply over long-poll', async () => (await bubbles(blocked)).some((b) => b.text === 'Your parcel ships tomorrow.'));
    // … and the WebSocket page got it too, once.
    await waitFor('the reply over the WebSocket', async () => (await bubbles(page)).filter((b) => b.text === 'Your parcel ships tomorrow.').length === 1);
    await blocked.close();

    // Mobile viewport: the panel fills the screen.
    const mobile = await browser.newContext({ viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true });
    const phone = await mobile.newPage();
    await phone.goto(shopUrl);
    await phone.getByRole('button', { name: 'Chat with Demo Shop' }).click();
    const size = await phone.evaluate(() => {
      const r = document.querySelector('#parley-chat').shadowRoot.querySelector('.panel').getBoundingClientRect();
      return { w: r.width, h: r.height };
    });
    assert(size.w === 390 && size.h === 844, `mobile panel ${JSON.stringify(size)}`);
    await phone.getByLabel('Your name (optional)').fill('Max Mobile');
    await phone.getByRole('button', { name: 'Start chat' }).click();
    await phone.getByRole('textbox', { name: 'Your message' }).fill('Do you ship to Lisbon?');
    await phone.getByRole('button', { name: 'Send' }).click();
    await waitFor('mobile message', async () => (await bubbles(phone)).length === 1);
    await phone.screenshot({ path: join(ARTIFACTS, 'chat-mobile.png') });
    await mobile.close();

    // Resolution → CSAT, stored on the conversation.
    await api(server, sup, 'POST', `/conversations/${session.id}/status`, { status: 'resolved' });
    const csat = page.getByRole('form', { name: 'Rate this conversation' });
    await csat.waitFor();
    await csat.getByLabel('4').check();
    await csat.getByRole('textbox', { name: 'Comment (optional)' }).fill('Quick and kind');
    await page.screenshot({ path: join(ARTIFACTS, 'chat-csat.png') });
    await csat.getByRole('button', { name: 'Send rating' }).click();
    await page.getByText('Thank you for your feedback!').waitFor();
    const after = await api(server, sup, 'GET', `/conversations/${session.id}`);
    const stored = after.csat || after.conversation?.csat;
    assert(stored?.score === 4 && stored?.comment === 'Quick and kind', 'CSAT stored: ' + JSON.stringify(stored));

    assert(errors.length === 0, errors.join('\n'));
    console.log('chat.spec: ok');
  } catch (e) {
    await page?.screenshot({ path: join(ARTIFACTS, 'chat-failure.png') }).catch(() => {});
    writeFileSync(join(ARTIFACTS, 'chat-parley.log'), server.log.join(''));
    throw e;
  } finally {
    await browser.close();
    shop.close();
    server.child.kill('SIGTERM');
    rmSync(server.dir, { recursive: true, force: true });
  }
}

main().catch((e) => { console.error(e); process.exit(1); });
