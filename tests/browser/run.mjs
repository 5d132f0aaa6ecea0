// Parley's browser tests: the real `parley` binary and Debian's Chromium (driven by
// playwright-core), on loopback, with a fresh data directory. Run from scripts/test.sh
// inside a network namespace of their own:
//
//   unshare -n sh -c 'ip link set lo up; node tests/browser/run.mjs'
//
// Environment: PARLEY_BIN (default: $CARGO_TARGET_DIR/debug/parley, else target/debug),
// CHROMIUM (default /usr/bin/chromium), ARTIFACTS (default tests/browser/artifacts:
// one screenshot per page, plus failure screenshots and the server log).

import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, readdirSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createSocket } from 'node:dgram';
import { chromium } from 'playwright-core';
import { ARTIFACTS, BIN, CHROMIUM, assert, here, root, startParley as startHarness } from './harness.mjs';

const ONLY = process.argv[2] || '';

// ------------------------------------------------------------------------------------
// The server

function startParley() {
  return startHarness('browser', {
    // The call tests' sipp caller sends RTP only for its DTMF digit, then waits for
    // the controls to end the call: no hang-up for lack of RTP meanwhile.
    PARLEY_RTP_TIMEOUT_SECS: '0',
    RUST_LOG: process.env.RUST_LOG || 'warn',
  });
}

function stopParley(p) {
  if (!p) return;
  p.child.kill('SIGTERM');
  writeFileSync(join(ARTIFACTS, 'parley.log'), p.log.join(''));
  rmSync(p.dir, { recursive: true, force: true });
}

// ------------------------------------------------------------------------------------
// Helpers

let server;
let browser;

async function apiAs(email, method, path, body) {
  const login = await fetch(server.http + '/api/v1/auth/login', {
    method: 'POST', headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ tenant: 'demo', email, password: server.passwords[email] }),
  });
  if (!login.ok) throw new Error(`login ${email}: ${login.status}`);
  const { token } = await login.json();
  const res = await fetch(server.http + '/api/v1' + path, {
    method, headers: { authorization: 'Bearer ' + token, 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : null };
}


async function newPage() {
  const context = await browser.newContext({ viewport: { width: 1440, height: 900 } });
  const page = await context.newPage();
  page.errors = [];
  page.on('pageerror', (e) => page.errors.push(String(e)));
  // HTTP errors the UI handles (a wrong password's 401) are logged by Chromium too.
  page.on('console', (m) => { if (m.type() === 'error' && !m.text().startsWith('Failed to load resource')) page.errors.push(m.text()); });
  page.on('response', (r) => { if (r.status() >= 400) console.log(`     (http ${r.status()} ${r.request().method()} ${new URL(r.url()).pathname})`); });
  page.setDefaultTimeout(30000); // the build machines are loaded: bound waits generously
  return page;
}

async function login(page, email) {
  await page.goto(server.http + '/');
  await page.waitForSelector('#login-form');
  await page.fill('[name=email]', email);
  await page.fill('[name=password]', server.passwords[email]);
  await page.click('#login-form button[type=submit]');
  await page.waitForSelector('#topbar:not([hidden])');
  await page.waitForSelector('#conn.open');
}

/** Clicks a recording's play button; resolves to what the server sent the page for its
 * player (which plays it from a blob: URL): status, type, size, RIFF/WAVE magic. The
 * response passes through a route handler that keeps a copy of its body. */
async function playRecording(page, selector) {
  const pattern = /\/api\/v1\/interactions\/[^/]+\/attachments\/\d+$/;
  let got = null;
  const handler = async (route) => {
    const res = await route.fetch();
    const body = await res.body();
    got = {
      status: res.status(), type: res.headers()['content-type'], size: body.length,
      riff: body.subarray(0, 4).toString('latin1'), wave: body.subarray(8, 12).toString('latin1'),
    };
    await route.fulfill({ response: res, body });
  };
  await page.route(pattern, handler);
  await page.click(selector);
  await page.waitForSelector('#timeline audio.recording-audio');
  await page.unroute(pattern, handler);
  assert(got, 'the player downloaded the recording');
  return got;
}

async function shot(page, name) {
  await page.screenshot({ path: join(ARTIFACTS, name + '.png'), fullPage: true });
}

const ADMIN = 'admin@demo.parley.test';
const SUPERVISOR = 'supervisor@demo.parley.test';
const AGENT = 'agent1@demo.parley.test';
const AGENT2 = 'agent2@demo.parley.test';

// ------------------------------------------------------------------------------------
// Tests

const tests = [];
const test = (name, f) => tests.push({ name, f });

test('the UI is served by the binary with content types and cache headers', async () => {
  const index = await fetch(server.http + '/agent/customers/x');
  assert(index.status === 200, 'SPA route answers index.html');
  assert(index.headers.get('content-type').startsWith('text/html'), 'html content type');
  assert(index.headers.get('cache-control') === 'no-cache', 'index revalidated');
  assert((await index.text()).includes('/assets/app.js'), 'the shell loads app.js');
  const js = await fetch(server.http + '/assets/app.js');
  assert(js.headers.get('content-type').startsWith('text/javascript'), 'js content type');
  const etag = js.headers.get('etag');
  assert(etag, 'etag');
  const again = await fetch(server.http + '/assets/app.js', { headers: { 'if-none-match': etag } });
  assert(again.status === 304, 'revalidation is a 304');
  const api404 = await fetch(server.http + '/api/v1/nope');
  assert(api404.status === 401 || api404.status === 404, 'API paths are not the UI');
  assert((await fetch(server.http + '/assets/nope.js')).status === 404, 'unknown asset is 404');
});

test('API docs (Swagger UI) render under the Content-Security-Policy, and no page may be framed', async () => {
  const page = await newPage();
  const res = await page.goto(server.http + '/api/v1/docs/');
  const csp = res.headers()['content-security-policy'] || '';
  assert(csp.includes("frame-ancestors 'none'"), 'CSP on the docs page: ' + csp);
  await page.waitForSelector('.swagger-ui .opblock');
  await shot(page, '00-api-docs');
  // A CSP violation is a console error ("Refused to …"): none.
  assert(page.errors.length === 0, 'no page errors: ' + page.errors.join('; '));
  for (const path of ['/', '/assets/app.js', '/api/v1/openapi.json']) {
    const r = await fetch(server.http + path);
    assert((r.headers.get('content-security-policy') || '').includes("script-src 'self'"), 'CSP on ' + path);
    assert(r.headers.get('x-frame-options') === 'DENY', 'X-Frame-Options on ' + path);
    assert(r.headers.get('x-content-type-options') === 'nosniff', 'nosniff on ' + path);
  }
  await page.context().close();
});

test('login: a wrong password is an error on the form; the agent lands on the desktop', async () => {
  const page = await newPage();
  await page.goto(server.http + '/');
  await page.waitForSelector('#login-form');
  assert(!(await page.isVisible('#topbar')), 'no navigation before login');
  await shot(page, '01-login');
  await page.fill('[name=email]', AGENT);
  await page.fill('[name=password]', 'not the password');
  await page.click('#login-form button[type=submit]');
  await page.waitForSelector('#login-error .error');
  await login(page, AGENT);
  assert(new URL(page.url()).pathname === '/agent', 'agent home is /agent, got ' + page.url());
  await page.waitForSelector('#inbox li a');
  const inbox = await page.textContent('#inbox');
  assert(inbox.includes('Charged twice for November'), "the agent's case is in the inbox");
  assert(await page.$('section#softphone'), 'softphone mount point');
  assert(page.errors.length === 0, 'no page errors: ' + page.errors.join('; '));
  await page.context().close();
});

test('agent desktop: customer timeline, notes, case status, live updates without reload', async () => {
  const page = await newPage();
  await login(page, AGENT);
  await page.click('#inbox li a');
  await page.waitForSelector('#timeline li.item');
  assert((await page.textContent('#customer-name')) === 'Maria Garcia', 'the case customer opens');
  const before = await page.$$eval('#timeline li.item', (l) => l.length);
  // Mark the document: a reload would lose it.
  await page.evaluate(() => { window.__noReload = true; });
  // A note typed by the agent, attached to the case.
  await page.fill('#note-form textarea', 'Called back, refund confirmed.');
  await page.selectOption('#note-form select', { index: 1 });
  await page.click('#note-form button[type=submit]');
  await page.waitForFunction(() => document.querySelector('#timeline').textContent.includes('Called back, refund confirmed.'));
  // An interaction from elsewhere (another user, through the API) arrives live.
  const customerId = decodeURIComponent(new URL(page.url()).pathname.split('/').pop());
  const r = await apiAs(SUPERVISOR, 'POST', `/customers/${customerId}/interactions`, {
    kind: 'message', channel: 'whatsapp', direction: 'inbound', body: 'Thanks, all good now!',
  });
  assert(r.status === 201, 'interaction created: ' + r.status);
  await page.waitForSelector('#timeline li.item.fresh >> text=Thanks, all good now!', { timeout: 10000 });
  assert(await page.evaluate(() => window.__noReload === true), 'the page did not reload');
  const after = await page.$$eval('#timeline li.item', (l) => l.length);
  assert(after === before + 2, `timeline grew by 2 (${before} -> ${after})`);
  // Case status update.
  await page.selectOption('#open-cases select', 'pending_customer');
  await page.click('#open-cases .case button');
  await page.waitForFunction(() => document.querySelector('#open-cases').textContent.includes('pending customer'));
  await shot(page, '02-agent-desktop');
  assert(page.errors.length === 0, 'no page errors: ' + page.errors.join('; '));
  await page.context().close();
});

test('agent desktop: a dropped events connection shows an error and recovers', async () => {
  const page = await newPage();
  await login(page, AGENT);
  await page.waitForSelector('#inbox li a');
  // The network goes away: the events socket is reopened and cannot connect.
  await page.context().setOffline(true);
  await page.evaluate(async () => { const m = await import('/assets/events.js'); m.stop(); m.start(); });
  await page.waitForSelector('#banner:not([hidden])', { timeout: 10000 });
  await shot(page, '03-agent-offline');
  await page.context().setOffline(false);
  await page.click('#banner button');
  await page.waitForSelector('#conn.open', { timeout: 15000 });
  assert(await page.$eval('#banner', (b) => b.hidden), 'the banner goes away');
  await page.context().close();
});

test('supervisor: wallboard tiles from live counters and a live activity feed', async () => {
  const page = await newPage();
  await login(page, SUPERVISOR);
  assert(new URL(page.url()).pathname === '/supervisor', 'supervisor home');
  await page.waitForSelector('#wallboard [data-source=calls] .tile');
  await page.waitForSelector('#team-cases table');
  const c = await apiAs(AGENT, 'GET', '/customers?q=Aiko');
  const id = c.body.items[0].id;
  await apiAs(AGENT, 'POST', `/customers/${id}/notes`, { body: 'Supervisor should see this' });
  await page.waitForSelector('#activity li >> text=Supervisor should see this');
  await shot(page, '04-supervisor');
  assert(page.errors.length === 0, 'no page errors: ' + page.errors.join('; '));
  await page.context().close();
});

test('admin: users, teams, skills, trunks and numbers, business hours', async () => {
  const page = await newPage();
  await login(page, ADMIN);
  assert(new URL(page.url()).pathname.startsWith('/admin'), 'admin home');
  await page.waitForSelector('#admin-users table');
  // A new agent with an extension and a SIP password.
  await page.fill('#new-user [name=name]', 'Carol Agent');
  await page.fill('#new-user [name=email]', 'carol@demo.parley.test');
  await page.fill('#new-user [name=password]', 'carol password 1');
  await page.fill('#new-user [name=extension]', '1003');
  await page.fill('#new-user [name=sip_password]', 'carol sip 1');
  await page.click('#new-user button[type=submit]');
  await page.waitForSelector('tr[data-email="carol@demo.parley.test"]');
  const row = await page.textContent('tr[data-email="carol@demo.parley.test"]');
  assert(row.includes('1003') && row.includes('set'), 'extension and SIP password shown: ' + row);
  await shot(page, '05-admin-users');
  // Skills and teams.
  await page.click('.tabs a[href="/admin/skills"]');
  await page.fill('#new-skill [name=name]', 'mandarin');
  await page.click('#new-skill button[type=submit]');
  await page.waitForSelector('#admin-skills li >> text=mandarin');
  await shot(page, '06-admin-skills');
  // Edit Carol: a skill with proficiency, a new name.
  await page.click('.tabs a[href="/admin/users"]');
  await page.click('#admin-users button.link >> text=Carol Agent');
  await page.waitForSelector('#edit-user');
  await page.selectOption('#user-detail select[aria-label=Skill]', { label: 'mandarin' });
  await page.fill('#user-detail input[aria-label="Proficiency 1 to 5"]', '4');
  await page.click('#user-detail button >> text=Set skill');
  await page.waitForSelector('#user-detail li >> text=mandarin — 4/5');
  await page.fill('#edit-user [name=name]', 'Carol Ramos');
  await page.click('#edit-user button[type=submit]');
  await page.waitForSelector('tr[data-email="carol@demo.parley.test"] >> text=Carol Ramos');
  await page.click('.tabs a[href="/admin/teams"]');
  await page.fill('#new-team [name=name]', 'Night shift');
  await page.click('#new-team button[type=submit]');
  await page.waitForSelector('#admin-teams h3 >> text=Night shift');
  await shot(page, '07-admin-teams');
  // A number on the demo trunk, for the designer test.
  await page.click('.tabs a[href="/admin/telephony"]');
  await page.fill('#new-number [name=number]', '+15550142');
  await page.click('#new-number button[type=submit]');
  await page.waitForSelector('tr[data-number="+15550142"]');
  // Edit the trunk (PUT keeps its addresses).
  await page.click('#admin-telephony button.link >> text=Demo trunk (loopback)');
  await page.fill('#new-trunk [name=name]', 'Loopback trunk');
  await page.click('#new-trunk button[type=submit]');
  await page.waitForSelector('#admin-telephony td >> text=Loopback trunk');
  const trunks = await apiAs(ADMIN, 'GET', '/trunks');
  assert(trunks.body[0].inbound_addresses.join() === '127.0.0.1', 'trunk addresses kept');
  // A trunk over TLS with its carrier's CA pinned (issue #13): port 5061 by default.
  await page.fill('#new-trunk [name=name]', 'Secure carrier');
  await page.fill('#new-trunk [name=outbound_target]', 'sip.carrier.example');
  await page.selectOption('#new-trunk [name=transport]', 'tls');
  await page.fill('#new-trunk [name=tls_ca_pem]', '-----BEGIN CERTIFICATE-----\nTUlJQmZha2VjZXJ0\n-----END CERTIFICATE-----');
  await page.click('#new-trunk button[type=submit]');
  await page.waitForSelector('#admin-telephony td >> text=tls (pinned CA)');
  await shot(page, '08-admin-telephony');
  const tls = (await apiAs(ADMIN, 'GET', '/trunks')).body.find((t) => t.name === 'Secure carrier');
  assert(tls && tls.transport === 'tls' && tls.outbound_target === 'sip.carrier.example:5061'
    && tls.tls_ca_pem.includes('BEGIN CERTIFICATE'), 'TLS trunk stored: ' + JSON.stringify(tls));
  // Gone again: the later tests' outbound calls use the loopback trunk.
  await apiAs(ADMIN, 'DELETE', '/trunks/' + tls.id);
  // Business hours: the demo's `main` calendar, opened around the clock.
  await page.click('.tabs a[href="/admin/hours"]');
  await page.click('#admin-hours button.link >> text=main');
  await page.waitForSelector('#calendar-form');
  await page.fill('#calendar-form [name=time_zone]', 'UTC');
  await page.click('#calendar-form button[type=submit]');
  await page.waitForSelector('#admin-hours td >> text=UTC');
  await shot(page, '09-admin-hours');
  assert(page.errors.length === 0, 'no page errors: ' + page.errors.join('; '));
  await page.context().close();
});

test('IVR designer: build, validate (error on a node, fixed), test call, publish, roll back, and a sipp call follows the flow', async () => {
  const page = await newPage();
  page.on('dialog', (d) => d.accept());
  await login(page, ADMIN);
  await page.click('#nav a[href="/designer"]');
  await page.waitForSelector('#new-flow');
  assert((await page.textContent('main table')).includes('demo'), 'the demo flow is listed');
  await shot(page, '10-designer-flows');
  await page.fill('#new-flow [name=id]', 'ui_test');
  await page.fill('#new-flow [name=name]', 'UI test line');
  await page.click('#new-flow button[type=submit]');
  await page.waitForSelector('#canvas .node[data-node=welcome]');
  // welcome -> menu (new node connected from the selected one's exit).
  await page.click('#canvas .node[data-node=welcome]');
  await page.selectOption('#inspector select[data-exit=next]', '');
  await page.fill('#new-node-id', 'menu');
  await page.selectOption('#new-node-type', 'menu');
  await page.click('#add-node');
  await page.waitForSelector('#canvas .node[data-node=menu].selected');
  // The menu's key 3 -> a voicemail node.
  await page.fill('#inspector input[aria-label="Key of choice 1"]', '3');
  await page.press('#inspector input[aria-label="Key of choice 1"]', 'Tab');
  await page.fill('#new-node-id', 'vm');
  await page.selectOption('#new-node-type', 'voicemail');
  await page.click('#add-node');
  // (attached: a straight vertical edge has a zero-width box, which Playwright calls hidden)
  await page.waitForSelector('#canvas .edge[data-from=menu][data-to=vm]', { state: 'attached' });
  assert(await page.$('#canvas .edge[data-from=welcome][data-to=menu]'), 'welcome is connected to menu');
  // A node added by mistake is deleted from the keyboard.
  await page.fill('#new-node-id', 'oops');
  await page.selectOption('#new-node-type', 'hangup');
  await page.click('#add-node');
  await page.waitForSelector('#canvas .node[data-node=oops]');
  await page.focus('#canvas .node[data-node=oops]');
  await page.keyboard.press('Delete');
  await page.waitForSelector('#canvas .node[data-node=oops]', { state: 'detached' });
  // Validate: the menu's on_max_retries goes nowhere, and the goodbye node is unreachable.
  await page.click('#validate');
  await page.waitForSelector('#invalid');
  await page.waitForSelector('#canvas .node[data-node=menu].invalid');
  await shot(page, '11-designer-invalid');
  // Fix: retries exhausted -> goodbye, connected with Shift+click on the target.
  await page.click('#canvas .node[data-node=menu]');
  await page.click('#canvas .node[data-node=goodbye]', { modifiers: ['Shift'] });
  await page.waitForSelector('#canvas .edge[data-from=menu][data-to=goodbye]', { state: 'attached' });
  assert(await page.$eval('#inspector select[data-exit=on_max_retries]', (s) => s.value) === 'goodbye', 'on_max_retries is goodbye');
  // Keyboard: Tab to a node and move it with the arrow keys.
  await page.focus('#canvas .node[data-node=vm]');
  const x0 = await page.$eval('#canvas .node[data-node=vm]', (g) => g.getAttribute('transform'));
  await page.keyboard.press('Shift+ArrowDown');
  const x1 = await page.$eval('#canvas .node[data-node=vm]', (g) => g.getAttribute('transform'));
  assert(x0 !== x1, `the node moved (${x0} -> ${x1})`);
  await page.click('#validate');
  await page.waitForSelector('#valid');
  assert(!(await page.$('#canvas .node.invalid')), 'no node is marked invalid any more');
  // Test call: pressing 3 reaches the voicemail.
  await page.fill('#test-steps', '3');
  await page.click('#test-form button[type=submit]');
  await page.waitForSelector('#test-result pre');
  const visitedText = await page.textContent('#test-result p');
  assert(/menu.*vm/.test(visitedText), 'the test call went menu -> vm: ' + visitedText);
  assert(await page.$('#canvas .node[data-node=vm].walked'), 'the path is drawn on the graph');
  // A recorded prompt: upload and preview.
  await page.setInputFiles('#upload-prompt [name=file]', join(root, 'web/tests/fixtures/prompts/tone.wav'));
  await page.fill('#upload-prompt [name=name]', 'tone');
  await page.click('#upload-prompt button[type=submit]');
  await page.waitForSelector('#prompts td >> text=tone');
  await page.click('#prompts button >> text=Preview');
  await page.waitForSelector('#prompts audio.preview');
  const src = await page.$eval('#prompts audio.preview', (a) => a.src);
  assert(src.startsWith('blob:'), 'preview plays the downloaded file');
  // Publish v1, route the number.
  await page.click('#publish');
  await page.waitForSelector('#versions td >> text=v1');
  await page.fill('#route-form [name=number]', '+15550142');
  await page.click('#route-form button[type=submit]');
  await page.waitForSelector('#routes li >> text=+15550142');
  await shot(page, '12-designer-published');
  // v2 changes the greeting; roll back to v1.
  await page.click('#canvas .node[data-node=welcome]');
  await page.fill('#inspector textarea[aria-label="Prompt 1 text"]', 'Welcome to the new line.');
  await page.press('#inspector textarea[aria-label="Prompt 1 text"]', 'Tab');
  await page.click('#publish');
  await page.waitForSelector('#versions td >> text=v2');
  await page.click('#versions button[data-rollback="1"]');
  await page.waitForSelector('#versions button[data-rollback="2"]');
  const live = await page.textContent('#versions tbody tr:last-child');
  assert(live.includes('v1') && live.includes('live'), 'v1 is live again: ' + live);
  await shot(page, '13-designer-rolled-back');
  assert(page.errors.length === 0, 'no page errors: ' + page.errors.join('; '));

  // The number is on the demo trunk (the admin test adds it through the UI; when run
  // alone, add it here).
  const nums = await apiAs(ADMIN, 'GET', '/numbers');
  if (!nums.body.some((n) => n.number === '+15550142')) {
    const trunks = await apiAs(ADMIN, 'GET', '/trunks');
    await apiAs(ADMIN, 'POST', '/numbers', { number: '+15550142', trunk_id: trunks.body[0].id });
  }
  // A real call: sipp dials +15550142, presses 3 (RFC 4733) and leaves a voicemail.
  const sipp = spawnSync('sipp', [
    '-sf', join(root, 'tests/sipp/uac_ivr_voicemail.xml'),
    '-i', '127.0.0.1', '-bind_local', '-p', String(await freePort()), '-mp', String(mediaPort()),
    '-m', '1', '-s', '15550142', '-timeout', '30s', '-timeout_error', '-nostdin', server.sip,
  ], { cwd: tmpdir(), encoding: 'utf8', timeout: 60000 });
  assert(sipp.status === 0, `sipp call failed (${sipp.status})\n${sipp.stdout}\n${sipp.stderr}`);
  // The call is on the caller's timeline, with the trail through this flow.
  let call = null;
  for (let i = 0; i < 100 && !call; i++) {
    const c = await apiAs(SUPERVISOR, 'GET', '/customers/lookup?kind=phone&value=%2B15550123');
    if (c.status === 200) {
      const tl = await apiAs(SUPERVISOR, 'GET', `/customers/${c.body.id}/timeline`);
      call = tl.body.items.find((x) => x.kind === 'call') || null;
      if (call) call.customer_id = c.body.id;
    }
    if (!call) await new Promise((r) => setTimeout(r, 200));
  }
  assert(call, 'a call interaction on the caller timeline');
  const body = JSON.parse(call.body);
  assert(body.flow === 'ui_test', 'the call ran the designed flow: ' + body.flow);
  const nodes = body.ivr_trail.filter((e) => e.type === 'node').map((e) => e.node);
  assert(['welcome', 'menu', 'vm'].every((n) => nodes.includes(n)), 'trail welcome, menu, vm: ' + nodes);
  await page.context().close();

  // A supervisor sees the flow read-only: validate and test calls, no editing.
  const sup = await newPage();
  await login(sup, SUPERVISOR);
  await sup.goto(server.http + '/designer/ui_test');
  await sup.waitForSelector('#canvas .node[data-node=vm]');
  assert(!(await sup.$('#publish')) && !(await sup.$('#save')) && !(await sup.$('#add-node')), 'no editing for supervisors');
  await sup.context().close();

  // The agent's screen-pop of that caller shows the IVR trail. A case of this caller
  // assigned to the agent lets them play the voicemail (agents hear recordings of
  // their calls and their customers only).
  const users = await apiAs(ADMIN, 'GET', '/users');
  const agentUser = users.body.items ? users.body.items.find((u) => u.email === AGENT) : users.body.find((u) => u.email === AGENT);
  const kase = await apiAs(ADMIN, 'POST', '/cases', { title: 'Call back about the voicemail', customer_id: call.customer_id, assignee_id: agentUser.id });
  assert(kase.status === 201 || kase.status === 200, 'case assigned: ' + kase.status + ' ' + JSON.stringify(kase.body));
  const agent = await newPage();
  await login(agent, AGENT);
  await agent.goto(server.http + '/agent/customers/' + encodeURIComponent(call.customer_id));
  await agent.waitForSelector('#timeline .trail');
  const trail = await agent.textContent('#timeline .trail');
  assert(trail.includes('ui_test') && trail.includes('vm') && trail.includes('3'), 'trail rendered: ' + trail);
  await shot(agent, '14-agent-call-trail');
  // The voicemail plays inline: decrypted by the server, an <audio> with a duration.
  const wav = await playRecording(agent, '#timeline .recording button.play');
  await agent.waitForSelector('#timeline audio.recording-audio');
  await agent.waitForFunction(() => {
    const a = document.querySelector('#timeline audio.recording-audio');
    return a && a.readyState >= 1 && Number.isFinite(a.duration) && a.duration > 0;
  }, null, { timeout: 15000 });
  const duration = await agent.$eval('#timeline audio.recording-audio', (a) => a.duration);
  assert(duration > 0.2, 'the voicemail has a duration: ' + duration);
  await agent.$eval('#timeline audio.recording-audio', (a) => a.pause());
  await shot(agent, '15-agent-voicemail-player');
  // What the player loaded is the decrypted WAV file (not the encrypted bytes at rest).
  assert(wav.status === 200 && wav.type === 'audio/wav' && wav.riff === 'RIFF' && wav.wave === 'WAVE' && wav.size > 1000, 'the player got a WAV file: ' + JSON.stringify(wav));
  assert(agent.errors.length === 0, 'no page errors: ' + agent.errors.join('; '));
  await agent.context().close();
  // The supervisor plays it on the same timeline.
  const sup2 = await newPage();
  await login(sup2, SUPERVISOR);
  await sup2.goto(server.http + '/agent/customers/' + encodeURIComponent(call.customer_id));
  await sup2.waitForSelector('#timeline .trail');
  const wav2 = await playRecording(sup2, '#timeline .recording button.play');
  await sup2.waitForFunction(() => {
    const a = document.querySelector('#timeline audio.recording-audio');
    return a && a.readyState >= 1 && Number.isFinite(a.duration) && a.duration > 0.2;
  }, null, { timeout: 15000 });
  assert(wav2.riff === 'RIFF' && wav2.size === wav.size, 'the supervisor gets the same file: ' + JSON.stringify(wav2));
  await sup2.$eval('#timeline audio.recording-audio', (a) => a.pause());
  await shot(sup2, '15b-supervisor-voicemail-player');
  assert(sup2.errors.length === 0, 'no page errors: ' + sup2.errors.join('; '));
  await sup2.context().close();
});

// ------------------------------------------------------------------------------------
// Live calls: a sipp caller through the demo IVR to agent1's sipp phone, the agent's
// call bar and the supervisor's active-calls panel driving the real call.

/** A sipp process in the background; `.done` resolves to {code, out}. */
async function sippBg(scenario, args, { port, timeoutS = 240 } = {}) {
  const child = spawn('sipp', ['-sf', join(root, 'tests/sipp', scenario),
    '-i', '127.0.0.1', '-bind_local', '-p', String(port || await freePort()), '-mp', String(mediaPort()),
    '-m', '1', '-timeout', `${timeoutS}s`, '-timeout_error', '-nostdin', ...args],
  { cwd: tmpdir(), stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (d) => { out += d; });
  child.stderr.on('data', (d) => { out += d; });
  child.done = new Promise((ok) => child.on('exit', (code) => ok({ code, out })));
  return child;
}

/** A phone: a sipp UAS answering on its own port (-rtp_echo: it sends back what it
 * hears, like a talking person), registered as `ext` with Parley. */
const phonePorts = {};
async function phone(ext, password) {
  // One Contact per extension for the whole run: registering again replaces the
  // binding instead of leaving one to a phone that has gone.
  const port = phonePorts[ext] || (phonePorts[ext] = await freePort());
  const uas = await sippBg('uas_bridge.xml', ['-rtp_echo'], { port });
  const reg = spawnSync('sipp', ['-sf', join(root, 'tests/sipp/register.xml'),
    '-i', '127.0.0.1', '-bind_local', '-p', String(await freePort()), '-mp', String(mediaPort()),
    '-m', '1', '-timeout', '30s', '-timeout_error', '-nostdin',
    '-s', ext, '-au', ext, '-ap', password, '-key', 'contact_port', String(port), server.sip],
  { cwd: tmpdir(), encoding: 'utf8', timeout: 60000 });
  assert(reg.status === 0, `REGISTER ${ext} failed (${reg.status})\n${reg.stdout}\n${reg.stderr}`);
  return uas;
}

async function until(what, f, ms = 60000) {
  const end = Date.now() + ms;
  let last;
  while (Date.now() < end) {
    last = await f();
    if (last) return last;
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error('timed out waiting for ' + what);
}

// International calls are off by default (dial policy): the demo's Maria is in Spain.
async function allowSpain() {
  const dp = await apiAs(ADMIN, 'PUT', '/dial-policy', { allow_prefixes: ['+34'] });
  assert(dp.status === 200, 'dial policy: ' + dp.status + ' ' + JSON.stringify(dp.body));
}

test('click-to-call: the Call button next to a phone number sends POST /calls; a refusal (the dial policy, then no outbound trunk yet) is shown on the customer screen', async () => {
  const page = await newPage();
  await login(page, AGENT);
  const c = await apiAs(AGENT, 'GET', '/customers?q=Maria');
  const phoneId = c.body.items[0].identities.find((i) => i.kind === 'phone');
  assert(phoneId, 'Maria has a phone number');
  await page.goto(server.http + '/agent/customers/' + encodeURIComponent(c.body.items[0].id));
  const btn = `#customer button.call-btn[data-number="${phoneId.value}"]`;
  await page.waitForSelector(btn);
  // The request goes out as POST /calls {number}. Maria's number is Spanish: the dial
  // policy (home country only by default) refuses it, and the screen says why.
  const req = page.waitForRequest((r) => r.url().endsWith('/api/v1/calls') && r.method() === 'POST');
  await page.click(btn);
  const sent = await req;
  assert(JSON.parse(sent.postData()).number === phoneId.value, 'the number is sent: ' + sent.postData());
  await page.waitForSelector('#call-out .error');
  const policyErr = await page.textContent('#call-out .error');
  assert(/dial policy/.test(policyErr) && /international/.test(policyErr), 'the dial policy refusal is explained: ' + policyErr);
  await shot(page, '20-agent-click-to-call-dial-policy');
  // Once the admin allows Spain, the demo trunk (no outbound address) is the refusal.
  await allowSpain();
  await page.click(btn);
  await page.waitForFunction(() => /trunk|registered/.test(document.querySelector('#call-out .error')?.textContent || ''));
  await shot(page, '20-agent-click-to-call-refused');
  await page.context().close();
});

test('live call: the agent holds, mutes, consults and cancels from the call bar, the supervisor listens then barges from the active-calls panel, the agent hangs up', async () => {
  const procs = [];
  try {
    // The demo flow branches on the `main` calendar: open it around the clock.
    const cal = await apiAs(ADMIN, 'PUT', '/ivr/calendars/main', {
      time_zone: 'UTC', holidays: [],
      weekly: [{ days: ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'], open: '00:00', close: '23:59:59.999' }],
    });
    assert(cal.status === 200, 'calendar opened: ' + cal.status);
    // The supervisor's phone is extension 1900 (registered only once the call is
    // bridged, so that the queue never offers the call to it).
    const me = await apiAs(SUPERVISOR, 'GET', '/me');
    const sup = await apiAs(ADMIN, 'PUT', `/users/${me.body.id}/sip`, { extension: '1900', password: 'supervisor-sip-secret' });
    assert(sup.status === 200, 'supervisor extension: ' + sup.status + ' ' + JSON.stringify(sup.body));
    const acct = server.sipAccounts[AGENT];
    assert(acct, "agent1's SIP account in the demo logins");
    procs.push(await phone(acct.extension, acct.password));

    const agent = await newPage();
    await login(agent, AGENT);
    await agent.waitForSelector('#inbox li a');
    assert(await agent.$eval('#callbar', (s) => s.hidden), 'no call bar without a call');
    const supPage = await newPage();
    await login(supPage, SUPERVISOR);
    await supPage.waitForSelector('#live-calls >> text=No call in progress.');

    // The caller dials the demo number and presses 1.
    procs.push(await sippBg('uac_ivr_agent.xml', ['-s', '15550100', server.sip]));
    await agent.waitForSelector('#callbar .callbar[data-state=talking]', { timeout: 90000 });
    const callId = await agent.$eval('#callbar .callbar', (d) => d.dataset.callId);
    assert((await agent.textContent('#callbar')).includes('+15550177'), 'the caller number in the call bar');
    await shot(agent, '15-agent-call-bar');

    // Hold from the keyboard (h), unhold with a click; the API reports each.
    await agent.focus('#callbar [data-action=hold]');
    await agent.keyboard.press('h');
    await agent.waitForSelector('#callbar [data-action=unhold][aria-pressed=true]');
    let call = await apiAs(AGENT, 'GET', `/calls/${callId}`);
    assert(call.body.held === true && call.body.state === 'held', 'held after hold: ' + JSON.stringify(call.body));
    assert(call.body.legs.find((l) => l.role === 'caller').mode === 'hold', 'the caller leg is on hold: ' + JSON.stringify(call.body.legs));
    await shot(agent, '16-agent-call-held');
    await agent.click('#callbar [data-action=unhold]');
    await agent.waitForSelector('#callbar [data-action=hold][aria-pressed=false]');
    call = await apiAs(AGENT, 'GET', `/calls/${callId}`);
    assert(call.body.held === false, 'not held after unhold: ' + JSON.stringify(call.body));
    // Mute toggles too.
    await agent.click('#callbar [data-action=mute]');
    await agent.waitForSelector('#callbar [data-action=unmute]');
    assert((await apiAs(AGENT, 'GET', `/calls/${callId}`)).body.muted === true, 'muted');
    await agent.click('#callbar [data-action=unmute]');
    await agent.waitForSelector('#callbar [data-action=mute]');
    // PCI: pause recording and transcription from the keyboard (p), resume with a click.
    await agent.keyboard.press('p');
    await agent.waitForSelector('#callbar [data-action=resume_recording][aria-pressed=true]');
    assert((await agent.textContent('#callbar')).includes('recording paused'), 'the bar shows the pause');
    assert((await apiAs(AGENT, 'GET', `/calls/${callId}`)).body.recording_paused === true, 'recording paused');
    await agent.click('#callbar [data-action=resume_recording]');
    await agent.waitForSelector('#callbar [data-action=pause_recording][aria-pressed=false]');
    assert((await apiAs(AGENT, 'GET', `/calls/${callId}`)).body.recording_paused === false, 'recording resumed');
    // A consultation without a target is explained on the bar, nothing is sent.
    await agent.click('#callbar [data-action=consult]');
    await agent.waitForSelector('#callbar .callbar-out .error');
    // Warm transfer, cancelled: consult agent2's phone (Enter in the target field),
    // the caller is held meanwhile; Cancel brings the caller back.
    const acct2 = server.sipAccounts[AGENT2];
    procs.push(await phone(acct2.extension, acct2.password));
    await agent.fill('#callbar input[name=target]', acct2.extension);
    await agent.press('#callbar input[name=target]', 'Enter');
    await agent.waitForSelector('#callbar [data-action=complete_transfer]:not([disabled])', { timeout: 60000 });
    call = await apiAs(AGENT, 'GET', `/calls/${callId}`);
    const consult = call.body.legs.find((l) => l.role === 'consult');
    assert(consult && consult.state === 'up' && consult.address === acct2.extension && call.body.state === 'held', 'consulting: ' + JSON.stringify(call.body));
    await shot(agent, '16b-agent-consulting');
    await agent.click('#callbar [data-action=cancel_consult]');
    await agent.waitForSelector('#callbar [data-action=consult]');
    call = await apiAs(AGENT, 'GET', `/calls/${callId}`);
    assert(!call.body.legs.some((l) => l.role === 'consult') && call.body.state === 'talking', 'consultation cancelled: ' + JSON.stringify(call.body));
    // A disposition code is stored with the call.
    await agent.fill('#callbar input[name=code]', 'billing-question');
    await agent.press('#callbar input[name=code]', 'Enter');
    await until('the disposition', async () => (await apiAs(AGENT, 'GET', `/calls/${callId}`)).body.disposition === 'billing-question');

    // The supervisor sees the call, its parties and their modes.
    const row = `#live-calls tr[data-call-id="${callId}"]`;
    await supPage.waitForSelector(row);
    // (the panel polls: wait for a refresh after the consultation was cancelled)
    let text = '';
    await until('the call talking on the supervisor panel', async () => {
      text = await supPage.textContent(row);
      return text.includes('talking') && !text.includes('consult');
    }, 20000).catch(() => {});
    assert(text.includes('+15550177') && text.includes('agent') && text.includes('talking'), 'parties listed: ' + text);
    assert(await supPage.$(`${row} li[data-role=caller][data-mode=full]`), 'the caller leg in full mode');
    // Listen before the supervisor's phone is registered: a clear error.
    await supPage.click(`${row} button[data-action=listen]`);
    await supPage.waitForSelector(`${row} .error`);
    const err = await supPage.textContent(`${row} .error`);
    assert(/registered/.test(err), 'the error says the phone is not registered: ' + err);
    await shot(supPage, '17-supervisor-listen-refused');
    // Register the supervisor's phone, then Listen: it rings, answers, listens.
    procs.push(await phone('1900', 'supervisor-sip-secret'));
    await supPage.click(`${row} button[data-action=listen]`);
    await supPage.waitForSelector(`${row} button[data-action=listen][aria-pressed=true]`, { timeout: 60000 });
    await supPage.waitForSelector(`${row} .my-mode >> text=listening`);
    assert(!(await supPage.$(`${row} .error`)), 'the old error is gone');
    const supLeg = async () => (await apiAs(SUPERVISOR, 'GET', `/calls/${callId}`)).body.legs.find((l) => l.role === 'supervisor' && l.user_id === me.body.id);
    assert((await supLeg()).mode === 'listen', 'the API reports the listen mode');
    await shot(supPage, '18-supervisor-listening');
    // Barge: the same leg switches mode.
    await supPage.click(`${row} button[data-action=barge]`);
    await supPage.waitForSelector(`${row} button[data-action=barge][aria-pressed=true]`);
    await supPage.waitForSelector(`${row} .my-mode >> text=barged in`);
    await supPage.waitForSelector(`${row} li[data-role=supervisor][data-mode=barge]`);
    assert((await supLeg()).mode === 'barge', 'the API reports the barge mode');
    assert(!(await supPage.$eval(`${row} button[data-action=take_over]`, (b) => b.disabled)), 'take over is offered once in the call');
    await shot(supPage, '19-supervisor-barged');
    // The agent's bar shows the supervisor as a party.
    await agent.waitForSelector('#callbar .parties >> text=1900');

    // The agent hangs up: every leg gets a BYE, the bar and the row go away.
    await agent.click('#callbar [data-action=hangup]');
    await agent.waitForSelector('#callbar', { state: 'hidden' });
    await supPage.waitForSelector(row, { state: 'detached' });
    for (const p of procs) {
      const r = await p.done;
      assert(r.code === 0, `a sipp peer failed (${r.code}):\n${r.out.slice(-2000)}`);
    }
    procs.length = 0;
    assert(agent.errors.length === 0, 'no agent page errors: ' + agent.errors.join('; '));
    assert(supPage.errors.length === 0, 'no supervisor page errors: ' + supPage.errors.join('; '));
    await agent.context().close();
    await supPage.context().close();
  } finally {
    for (const p of procs) p.kill('SIGKILL');
  }
});

test('click-to-call through a trunk: the Call button rings the agent phone, dials the customer, the call bar follows, hang up', async () => {
  const procs = [];
  try {
    // The carrier: a sipp UAS behind a trunk's outbound target.
    const carrierPort = await freePort();
    procs.push(await sippBg('uas_bridge.xml', ['-rtp_echo'], { port: carrierPort }));
    await allowSpain();
    const t = await apiAs(ADMIN, 'POST', '/trunks', { name: 'carrier', outbound_target: `127.0.0.1:${carrierPort}`, caller_id: '+15550100' });
    assert(t.status === 201, 'trunk: ' + t.status + ' ' + JSON.stringify(t.body));
    const acct = server.sipAccounts[AGENT2];
    assert(acct, "agent2's SIP account in the demo logins");
    procs.push(await phone(acct.extension, acct.password));
    const page = await newPage();
    await login(page, AGENT2);
    const c = await apiAs(AGENT2, 'GET', '/customers?q=Maria');
    const number = c.body.items[0].identities.find((i) => i.kind === 'phone').value;
    await page.goto(server.http + '/agent/customers/' + encodeURIComponent(c.body.items[0].id));
    await page.click(`#customer button.call-btn[data-number="${number}"]`);
    await page.waitForSelector('#callbar .callbar[data-state=talking]', { timeout: 60000 });
    assert((await page.textContent('#callbar')).includes(number), 'the customer number in the call bar');
    const callId = await page.$eval('#callbar .callbar', (d) => d.dataset.callId);
    const live = await apiAs(AGENT2, 'GET', `/calls/${callId}`);
    assert(live.body.direction === 'outbound' && live.body.customer_number === number, 'an outbound call to the customer: ' + JSON.stringify(live.body));
    await shot(page, '21-agent-click-to-call');
    await page.click('#callbar [data-action=hangup]');
    await page.waitForSelector('#callbar', { state: 'hidden' });
    for (const p of procs) {
      const r = await p.done;
      assert(r.code === 0, `a sipp peer failed (${r.code}):\n${r.out.slice(-2000)}`);
    }
    procs.length = 0;
    assert(page.errors.length === 0, 'no page errors: ' + page.errors.join('; '));
    await page.context().close();
  } finally {
    for (const p of procs) p.kill('SIGKILL');
  }
});

test('ACD: agent presence selector, and the supervisor wallboard shows a new queue and the agent live', async () => {
  const q = await apiAs(ADMIN, 'POST', '/queues', { name: 'Wallboard test queue', sl_threshold_s: 30 });
  assert(q.status === 201, 'queue created: ' + q.status + ' ' + JSON.stringify(q.body));
  const users = await apiAs(ADMIN, 'GET', '/users');
  const agentId = users.body.find((u) => u.email === AGENT).id;
  const sup = await newPage();
  await login(sup, SUPERVISOR);
  const row = `#wallboard [data-source=queues] tr[data-queue-id="${q.body.id}"]`;
  await sup.waitForSelector(row, { timeout: 15000 });
  const cells = await sup.$$eval(row + ' td', (tds) => tds.map((t) => t.textContent.trim()));
  assert(cells[0] === 'Wallboard test queue' && cells[1] === '0', 'queue row: name, nobody waiting: ' + JSON.stringify(cells));
  assert(cells[4] === '—' && cells[5] === '—', 'no service level / abandonment before any call (not invented): ' + JSON.stringify(cells));
  const agent = await newPage();
  await login(agent, AGENT);
  await agent.waitForSelector('#presence select:not([disabled])');
  await agent.selectOption('#presence select', 'away:lunch');
  await agent.waitForSelector('#presence .presence-state[data-state=away]');
  assert((await agent.textContent('#presence')).includes('lunch'), 'the away reason is shown');
  let p = await apiAs(AGENT, 'GET', `/users/${agentId}/presence`);
  assert(p.body.status === 'away' && p.body.reason === 'lunch', 'stored away/lunch: ' + JSON.stringify(p.body));
  await sup.waitForSelector(`#wallboard [data-source=agents] tr[data-user-id="${agentId}"][data-presence=away]`, { timeout: 15000 });
  await agent.selectOption('#presence select', 'available');
  await agent.waitForSelector('#presence .presence-state[data-state=available]');
  p = await apiAs(AGENT, 'GET', `/users/${agentId}/presence`);
  assert(p.body.status === 'available', 'stored available: ' + JSON.stringify(p.body));
  await sup.waitForSelector(`#wallboard [data-source=agents] tr[data-user-id="${agentId}"][data-presence=available]`, { timeout: 15000 });
  const agentName = users.body.find((u) => u.id === agentId).name;
  assert((await sup.textContent(`#wallboard [data-source=agents] tr[data-user-id="${agentId}"]`)).includes(agentName), 'the agent by name');
  await shot(agent, '22-agent-presence');
  await shot(sup, '23-supervisor-wallboard');
  assert(agent.errors.length === 0 && sup.errors.length === 0, 'no page errors: ' + agent.errors.concat(sup.errors).join('; '));
  await apiAs(AGENT, 'PUT', `/users/${agentId}/presence`, { status: 'offline' });
  await apiAs(ADMIN, 'DELETE', `/queues/${q.body.id}`);
  await agent.context().close();
  await sup.context().close();
});

test('admin: speech settings (AI toggle, consent, alert phrases) round-trip', async () => {
  const page = await newPage();
  await login(page, ADMIN);
  await page.goto(server.http + '/admin/speech');
  await page.waitForSelector('#speech-form');
  // The form reads the tenant's setting: the demo transcribes its callers.
  assert(await page.isChecked('#speech-form [name=transcription]'), 'the demo has transcription on');
  await page.uncheck('#speech-form [name=transcription]');
  await page.click('#speech-form button[type=submit]');
  await page.waitForSelector('#speech-form .ok-msg');
  assert((await apiAs(ADMIN, 'GET', '/speech/settings')).body.transcription === false, 'the toggle goes off');
  await page.reload();
  await page.waitForSelector('#speech-form');
  await page.check('#speech-form [name=transcription]');
  await page.uncheck('#speech-form [name=require_consent]');
  await page.fill('#speech-form [name=alert_phrases]', 'Cancel my account\nspeak to a   manager\n');
  await page.click('#speech-form button[type=submit]');
  await page.waitForSelector('#speech-form .ok-msg');
  const s = await apiAs(ADMIN, 'GET', '/speech/settings');
  assert(s.body.transcription === true && s.body.require_consent === false, 'saved toggles: ' + JSON.stringify(s.body));
  assert(JSON.stringify(s.body.alert_phrases) === JSON.stringify(['cancel my account', 'speak to a manager']), 'phrases normalised: ' + JSON.stringify(s.body.alert_phrases));
  await page.reload();
  await page.waitForSelector('#speech-form');
  assert(await page.isChecked('#speech-form [name=transcription]'), 'the toggle reads back on');
  assert((await page.inputValue('#speech-form [name=alert_phrases]')) === 'cancel my account\nspeak to a manager', 'phrases read back');
  await shot(page, '24-admin-speech');
  await page.uncheck('#speech-form [name=transcription]');
  await page.click('#speech-form button[type=submit]');
  await page.waitForSelector('#speech-form .ok-msg');
  assert((await apiAs(ADMIN, 'GET', '/speech/settings')).body.transcription === false, 'the toggle goes back off');
  assert(page.errors.length === 0, 'no page errors: ' + page.errors.join('; '));
  await page.context().close();
});

test('timeline: a call with a transcript shows it (summary, keywords, sentiment trend), collapsed', async () => {
  const c = await apiAs(AGENT, 'GET', '/customers?q=Aiko');
  const id = c.body.items[0].id;
  const body = {
    summary: 'Call through the IVR',
    transcript: 'Caller: I want to cancel my account, this is the third outage\nAgent: I am sorry, I can credit this month\nCaller: Thank you, that helps',
    transcript_summary: 'Caller wants to cancel after outages; agent offers a credit.',
    keywords: ['outage', 'credit', 'cancel my account'],
    sentiment_trend: { overall: -0.12, caller_start: -0.6, caller_end: 0.5, direction: 'improving', points: [[3000, -0.6], [6000, -0.2], [9000, 0.1]] },
    alerts: [{ kind: 'phrase', phrase: 'cancel my account', speaker: 'caller', at_ms: 1200 }],
  };
  const r = await apiAs(AGENT, 'POST', `/customers/${id}/interactions`, { kind: 'call', channel: 'voice', direction: 'inbound', body: JSON.stringify(body) });
  assert(r.status === 201, 'call interaction: ' + r.status + ' ' + JSON.stringify(r.body));
  const page = await newPage();
  await login(page, AGENT);
  await page.goto(server.http + '/agent/customers/' + encodeURIComponent(id));
  const item = `#timeline li.item[data-id="${r.body.id}"]`;
  await page.waitForSelector(item + ' details.transcript');
  assert(!(await page.$eval(item + ' details.transcript', (d) => d.open)), 'collapsed at first');
  assert(!(await page.isVisible(item + ' .segments')), 'lines hidden while collapsed');
  assert((await page.textContent(item + ' details.transcript > summary')).includes('improving'), 'trend direction in the summary line');
  await page.click(item + ' details.transcript > summary');
  await page.waitForSelector(item + ' .segments li.seg.caller');
  const lines = await page.$$eval(item + ' .segments li.seg', (l) => l.map((x) => x.dataset.speaker + ':' + x.querySelector('.text').textContent));
  assert(lines.length === 3 && lines[0] === 'caller:I want to cancel my account, this is the third outage' && lines[1].startsWith('agent:'), 'lines: ' + JSON.stringify(lines));
  assert((await page.textContent(item + ' .transcript-summary')).includes('offers a credit'), 'summary');
  assert((await page.$$(item + ' .keywords .chip')).length === 3, 'keywords');
  assert(await page.$(item + ' svg.sparkline path.trend'), 'sentiment sparkline');
  assert((await page.textContent(item + ' .alerts')).includes('cancel my account'), 'the alert raised during the call');
  await page.$eval(item, (el) => el.scrollIntoView());
  await shot(page, '25-timeline-transcript');
  assert(page.errors.length === 0, 'no page errors: ' + page.errors.join('; '));
  await page.context().close();
});

/** A free loopback UDP port (the kernel's pick for bind(0)): sipp's SIP socket. UDP,
 * not TCP: a port free for TCP may be held by a running sipp's UDP socket. */
function freePort() {
  return new Promise((ok, fail) => {
    const s = createSocket('udp4');
    s.on('error', fail);
    s.bind(0, '127.0.0.1', () => { const p = s.address().port; s.close(() => ok(p)); });
  });
}

/** An even port with three free after it, for sipp's RTP (it binds the next ports too).
 * Linux hands out odd ports for bind(0), so pick at random in a high range instead:
 * the test runs in a namespace of its own, nothing else is listening. */
function mediaPort() {
  return 20000 + 2 * Math.floor(Math.random() * 15000);
}

// ------------------------------------------------------------------------------------
// The first hour (issue 14): the demo's queues in Admin, and the screen pop.

test('admin: queues — the demo has sales and support; create, edit skills, strategy and callback key; the wallboard hint links here', async () => {
  const page = await newPage();
  await login(page, ADMIN);
  await page.goto(server.http + '/admin/queues');
  await page.waitForSelector('#admin-queues tr[data-queue=sales]');
  const sales = await page.textContent('#admin-queues tr[data-queue=sales]');
  assert(sales.includes('sales ≥ 1') && sales.includes('Most skilled') && sales.includes('9'), 'demo sales queue: ' + sales);
  assert(await page.$('#admin-queues tr[data-queue=support]'), 'demo support queue listed');
  // Create one with a skill, then change its strategy and callback key.
  await page.fill('#queue-form [name=name]', 'billing line');
  await page.selectOption('#queue-form [name=strategy]', 'round_robin');
  await page.check('#queue-form input[aria-label="Requires billing"]');
  await page.fill('#queue-form input[aria-label="Minimum billing proficiency"]', '3');
  await page.fill('#queue-form [name=max_wait_s]', '120');
  await page.click('#queue-form button[type=submit]');
  await page.waitForSelector('#admin-queues tr[data-queue="billing line"]');
  let row = await page.textContent('#admin-queues tr[data-queue="billing line"]');
  assert(row.includes('Round robin') && row.includes('billing ≥ 3') && row.includes('120 s'), 'created: ' + row);
  await page.click('#admin-queues tr[data-queue="billing line"] button.link');
  await page.selectOption('#queue-form [name=strategy]', 'most_skilled');
  await page.fill('#queue-form [name=callback_key]', '*');
  await page.click('#queue-form button[type=submit]');
  await page.waitForSelector('#admin-queues tr[data-queue="billing line"] >> text=Most skilled');
  const stored = (await apiAs(ADMIN, 'GET', '/queues')).body.find((q) => q.name === 'billing line');
  assert(stored && stored.strategy === 'most_skilled' && stored.callback_key === '*' && stored.max_wait_s === 120
    && stored.skills.length === 1 && stored.skills[0].min_proficiency === 3, 'saved: ' + JSON.stringify(stored));
  await shot(page, '30-admin-queues');
  // Routing for every kind of work (issue #15): auto-assign, a sticky window, and the
  // channel items overflowing into the queue take.
  await page.click('#admin-queues tr[data-queue="billing line"] button.link');
  await page.check('#queue-form [name=auto_assign]');
  await page.fill('#queue-form [name=sticky_window_s]', '600');
  await page.selectOption('#queue-form [name=channel]', 'async');
  await page.click('#queue-form button[type=submit]');
  await page.waitForSelector('#admin-queues tr[data-queue="billing line"] >> text=assigned automatically, sticky 600 s, takes async');
  const routed = (await apiAs(ADMIN, 'GET', '/queues')).body.find((q) => q.name === 'billing line');
  assert(routed.auto_assign === true && routed.sticky_window_s === 600 && routed.channel === 'async'
    && routed.strategy === 'most_skilled', 'routing settings saved: ' + JSON.stringify(routed));
  // Editing again shows them.
  await page.click('#admin-queues tr[data-queue="billing line"] button.link');
  assert(await page.isChecked('#queue-form [name=auto_assign]'), 'auto-assign shown');
  assert(await page.inputValue('#queue-form [name=sticky_window_s]') === '600', 'sticky window shown');
  assert(await page.inputValue('#queue-form [name=channel]') === 'async', 'channel shown');
  await shot(page, '30b-admin-queue-routing');
  page.on('dialog', (d) => d.accept());
  await page.click('#admin-queues tr[data-queue="billing line"] button.ghost');
  await until('the queue deleted', async () => !(await page.$('#admin-queues tr[data-queue="billing line"]')));
  assert(page.errors.length === 0, 'no page errors: ' + page.errors.join('; '));
  await page.context().close();
  // The supervisor's "no queue" hint points at this page (it exists).
  const sup = await newPage();
  await login(sup, SUPERVISOR);
  await sup.waitForSelector('#wallboard [data-source=queues] tr[data-name=sales]', { timeout: 15000 });
  await sup.context().close();
});

test('admin: users show each extension\'s phone connection details and its registered devices', async () => {
  // The agent's browser registers as a device of extension 1001 once logged in.
  const agent = await newPage();
  await login(agent, AGENT);
  await agent.waitForSelector('#softphone [data-phone-status=ready]', { timeout: 30000 });
  const regs = await apiAs(ADMIN, 'GET', '/sip/registrations');
  const ext = server.sipAccounts[AGENT].extension;
  assert(regs.status === 200 && regs.body.some((r) => r.extension === ext && r.user_agent === 'Parley browser softphone'),
    'the browser is listed: ' + JSON.stringify(regs.body));
  const page = await newPage();
  await login(page, ADMIN);
  await page.goto(server.http + '/admin/users');
  const row = `#admin-users tr[data-email="${AGENT}"]`;
  await page.waitForSelector(row);
  // The browser, and agent1's sipp phone when the live-call tests ran before.
  assert(/[1-9]\d* registered/.test(await page.textContent(row)), 'devices column: ' + await page.textContent(row));
  await page.click(row + ' button.link');
  await page.waitForSelector('#connection');
  const conn = await page.textContent('#connection');
  assert(conn.includes(ext) && conn.includes('127.0.0.1') && conn.includes('5060'), 'connection details: ' + conn);
  assert((await page.textContent('#user-detail')).includes('Parley browser softphone'), 'the device is listed');
  await shot(page, '32-admin-user-devices');
  assert(page.errors.length === 0 && agent.errors.length === 0, 'no page errors: ' + page.errors.concat(agent.errors).join('; '));
  await page.context().close();
  await agent.context().close();
});

test('admin: an agent\'s capacity per channel and blending are set on their user page (issue #15)', async () => {
  const page = await newPage();
  await login(page, ADMIN);
  await page.goto(server.http + '/admin/users');
  const row = `#admin-users tr[data-email="${AGENT2}"]`;
  await page.waitForSelector(row);
  await page.click(row + ' button.link');
  await page.waitForSelector('#user-capacity');
  // The defaults: 1 call, 3 chats, 5 async items, a call blocks other work.
  assert(await page.inputValue('#user-capacity [name=voice]') === '1'
    && await page.inputValue('#user-capacity [name=chat]') === '3'
    && await page.inputValue('#user-capacity [name=async]') === '5'
    && await page.isChecked('#user-capacity [name=call_blocks_other_work]'), 'default capacity shown');
  await page.fill('#user-capacity [name=chat]', '4');
  await page.fill('#user-capacity [name=async]', '8');
  await page.uncheck('#user-capacity [name=call_blocks_other_work]');
  await page.click('#user-capacity button[type=submit]');
  const users = await apiAs(ADMIN, 'GET', '/users');
  const me = users.body.find((u) => u.email === AGENT2);
  await until('the capacity saved', async () => {
    const c = (await apiAs(ADMIN, 'GET', `/users/${me.id}/capacity`)).body;
    return c.voice === 1 && c.chat === 4 && c.async === 8 && c.call_blocks_other_work === false;
  });
  // Over the maximum: the error names the field, nothing changes.
  await page.fill('#user-capacity [name=chat]', '99');
  await page.evaluate(() => document.querySelector('#user-capacity [name=chat]').removeAttribute('max'));
  await page.click('#user-capacity button[type=submit]');
  await page.waitForSelector('#user-capacity >> text=field chat');
  assert((await apiAs(ADMIN, 'GET', `/users/${me.id}/capacity`)).body.chat === 4, 'refused value not stored');
  await shot(page, '33-admin-user-capacity');
  assert(page.errors.length === 0, 'no page errors: ' + page.errors.join('; '));
  await page.context().close();
});

test('screen pop: a demo queue call opens the caller on the agent desktop while it rings', async () => {
  const procs = [];
  try {
    const users = await apiAs(ADMIN, 'GET', '/users');
    const me = users.body.find((u) => u.email === AGENT);
    await apiAs(AGENT, 'PUT', `/users/${me.id}/presence`, { status: 'available' });
    const agent = await newPage();
    await login(agent, AGENT);
    // The browser is agent1's only phone: it rings and nobody answers.
    await agent.waitForSelector('#softphone [data-phone-status=ready]', { timeout: 30000 });
    // A new caller (+15550177 is created by this run's earlier calls, or now) presses 1.
    procs.push(await sippBg('uac_ivr_agent.xml', ['-s', '15550100', server.sip], { timeoutS: 120 }));
    await agent.waitForSelector('#screen-pop', { timeout: 90000 });
    const pop = await agent.textContent('#screen-pop');
    assert(pop.includes('+15550177') && /queue (sales|support)/.test(pop), 'the pop names the caller and queue: ' + pop);
    const name = await agent.textContent('#customer-name');
    const path = new URL(agent.url()).pathname;
    const c = await apiAs(AGENT, 'GET', '/customers/lookup?kind=phone&value=%2B15550177');
    assert(c.status === 200 && path === '/agent/customers/' + c.body.id, `the caller's customer is open (${path}, ${JSON.stringify(c.body)})`);
    assert(name === c.body.name, 'customer name shown: ' + name);
    // Still ringing: the softphone shows the incoming call (the page was not re-rendered).
    assert(/Answer/.test(await agent.textContent('#softphone')), 'the softphone still rings: ' + await agent.textContent('#softphone'));
    await shot(agent, '31-agent-screen-pop');
    assert(agent.errors.length === 0, 'no page errors: ' + agent.errors.join('; '));
    await agent.context().close();
  } finally {
    for (const p of procs) p.kill('SIGKILL');
  }
});

// ------------------------------------------------------------------------------------
// Runner

async function main() {
  if (!existsSync(BIN)) throw new Error(`no parley binary at ${BIN} (cargo build first, or set PARLEY_BIN)`);
  if (!existsSync(CHROMIUM)) throw new Error(`no Chromium at ${CHROMIUM} (scripts/setup.sh --test installs it)`);
  mkdirSync(ARTIFACTS, { recursive: true });
  // Only this runner's files of an earlier run: the other specs (softphone, phone, …)
  // run before it in scripts/test.sh and leave their screenshots in the same folder.
  for (const f of readdirSync(ARTIFACTS)) {
    if (/^(\d|failure-)/.test(f) || f === 'parley.log') rmSync(join(ARTIFACTS, f), { force: true });
  }
  const t0 = Date.now();
  server = await startParley();
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', '--use-fake-device-for-media-stream',
      '--use-fake-ui-for-media-stream', '--allow-loopback-in-peer-connection'],
  });
  let failed = 0;
  let ran = 0;
  try {
    for (const t of tests) {
      if (ONLY && !t.name.includes(ONLY)) continue;
      ran++;
      const s = Date.now();
      try {
        await t.f();
        console.log(`ok   ${t.name} (${((Date.now() - s) / 1000).toFixed(1)} s)`);
      } catch (e) {
        failed++;
        console.log(`FAIL ${t.name}\n     ${String(e.stack || e).split('\n').join('\n     ')}`);
        for (const ctx of browser.contexts()) {
          for (const [i, pg] of ctx.pages().entries()) {
            await pg.screenshot({ path: join(ARTIFACTS, `failure-${tests.indexOf(t)}-${i}.png`), fullPage: true }).catch(() => {});
          }
          await ctx.close();
        }
      }
    }
  } finally {
    await browser.close();
    stopParley(server);
  }
  console.log(`${failed ? 'FAILED' : 'passed'}: ${ran - failed}/${ran} in ${((Date.now() - t0) / 1000).toFixed(1)} s; screenshots in ${ARTIFACTS}`);
  process.exit(failed || !ran ? 1 : 0);
}

main().catch((e) => { console.error(e); stopParley(server); process.exit(1); });
