// The live transcript panel in real Chromium against the real `parley` binary with the
// real speech model: a sipp caller dials the demo number and its RTP carries espeak-ng
// speech (made here with espeak-ng + sox, streamed by sipp's rtp_stream as G.711 µ-law);
// the supervisor page, logged in through the UI, shows the call's transcript segments as
// they arrive (speaker, words) and the alert on a watched phrase. Screenshot:
// artifacts/transcript-live.png.
//
// Environment: PARLEY_BIN (default $CARGO_TARGET_DIR/debug/parley, else target/debug),
// PARLEY_SPEECH_MODEL (default ../shared/models/ggml-tiny.en.bin; missing: a loud skip,
// a failure under CI=true), CHROMIUM (default /usr/bin/chromium), ARTIFACTS (default
// tests/browser/artifacts). Run inside a loopback-only network namespace like the other
// browser tests (scripts/test.sh).

import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { tmpdir } from 'node:os';
import { join, dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const here = dirname(fileURLToPath(import.meta.url));
const root = resolve(here, '../..');
const BIN = process.env.PARLEY_BIN || join(process.env.CARGO_TARGET_DIR || join(root, 'target'), 'debug/parley');
const MODEL = process.env.PARLEY_SPEECH_MODEL || resolve(root, '../shared/models/ggml-tiny.en.bin');
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const ARTIFACTS = resolve(process.env.ARTIFACTS || join(here, 'artifacts'));
const ADMIN = 'admin@demo.parley.test';
const SUPERVISOR = 'supervisor@demo.parley.test';

function assert(cond, msg) { if (!cond) throw new Error('assertion failed: ' + msg); }
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function startParley() {
  const dir = mkdtempSync(join(tmpdir(), 'parley-transcript-'));
  const env = { ...process.env };
  delete env.DATABASE_URL;
  const child = spawn(BIN, ['serve'], {
    cwd: dir,
    env: {
      ...env,
      PARLEY_DATA_DIR: join(dir, 'data'),
      PARLEY_HTTP_ADDR: '127.0.0.1:0',
      PARLEY_SIP_ADDR: '127.0.0.1:0',
      PARLEY_SPEECH_MODEL: MODEL,
      PARLEY_SPEECH_WORKERS: '1',
      RUST_LOG: process.env.RUST_LOG || 'warn,parley=info',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const log = [];
  child.stderr.on('data', (d) => log.push(d.toString()));
  const p = { child, dir, log, passwords: {}, sip: null, http: null };
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

async function api(server, email, method, path, body) {
  const login = await fetch(server.http + '/api/v1/auth/login', {
    method: 'POST', headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ tenant: 'demo', email, password: server.passwords[email] }),
  });
  assert(login.ok, `login ${email}: ${login.status}`);
  const { token } = await login.json();
  const res = await fetch(server.http + '/api/v1' + path, {
    method, headers: { authorization: 'Bearer ' + token, 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  assert(res.ok, `${method} ${path}: ${res.status}`);
  return res.status === 204 ? null : res.json();
}

/** `text` spoken by espeak-ng as raw 8 kHz µ-law in `file`. */
function speak(text, file) {
  const wav = file + '.wav';
  const e = spawnSync('espeak-ng', ['-v', 'en-us', '-s', '150', '-w', wav, text]);
  assert(e.status === 0, 'espeak-ng: ' + e.stderr);
  // A second of silence first (the IVR greeting starts), and two after each sentence.
  const s = spawnSync('sox', [wav, '-r', '8000', '-c', '1', '-e', 'u-law', '-t', 'ul', file, 'pad', '1', '2']);
  assert(s.status === 0, 'sox: ' + s.stderr);
}

async function liveTranscript(server, browser) {
  await api(server, ADMIN, 'PUT', '/speech/settings',
    { transcription: true, require_consent: false, alert_phrases: ['speak to a manager'] });
  const context = await browser.newContext({ viewport: { width: 1440, height: 900 } });
  const page = await context.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  page.setDefaultTimeout(30000);
  await page.goto(server.http + '/');
  await page.waitForSelector('#login-form');
  await page.fill('[name=email]', SUPERVISOR);
  await page.fill('[name=password]', server.passwords[SUPERVISOR]);
  await page.click('#login-form button[type=submit]');
  await page.waitForSelector('#conn.open');
  assert(new URL(page.url()).pathname === '/supervisor', 'supervisor home, got ' + page.url());
  assert(await page.isHidden('#sup-transcript'), 'the panel stays hidden until a segment arrives');

  const dir = mkdtempSync(join(tmpdir(), 'parley-transcript-caller-'));
  const a = join(dir, 'a.ul');
  const b = join(dir, 'b.ul');
  speak('My internet connection is not working.', a);
  speak('I need to speak to a manager.', b);
  const cat = spawnSync('sh', ['-c', `cat '${a}' '${b}' > '${join(dir, 'caller.ul')}'`]);
  assert(cat.status === 0, 'caller audio');
  const sipPort = 45000 + Math.floor(Math.random() * 5000);
  const mediaPort = 20000 + 4 * Math.floor(Math.random() * 2500);
  const sipp = spawn('sipp', ['-sf', join(here, 'sipp_transcript_caller.xml'), '-s', '15550100',
    '-m', '1', '-d', '60000', '-i', '127.0.0.1', '-p', String(sipPort), '-mp', String(mediaPort),
    '-timeout', '120s', '-timeout_error', '-nostdin', server.sip],
  { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
  let sippOut = '';
  sipp.stdout.on('data', (d) => { sippOut += d; });
  sipp.stderr.on('data', (d) => { sippOut += d; });
  const sippDone = new Promise((ok) => sipp.on('exit', (code) => ok(code)));
  try {
    // The caller's words appear in the panel as the call goes on (whisper on a loaded
    // machine: bounded generously).
    const seg = '#sup-transcript .call-transcript li.seg.caller .text';
    await page.waitForFunction((sel) => [...document.querySelectorAll(sel)]
      .some((e) => /internet/i.test(e.textContent)), seg, { timeout: 60000 });
    await page.waitForFunction((sel) => [...document.querySelectorAll(sel)]
      .some((e) => /manager/i.test(e.textContent)), seg, { timeout: 60000 });
    await page.waitForSelector('#sup-transcript .alerts li[role=alert]');
    const alert = await page.textContent('#sup-transcript .alerts li[role=alert]');
    assert(alert.includes('speak to a manager'), 'the alert names the phrase: ' + alert);
    const who = await page.$$eval('#sup-transcript li.seg', (l) => l.map((e) => e.dataset.speaker));
    assert(who.length >= 2 && who.every((s) => s === 'caller'), 'only the caller spoke: ' + who);
    const live = await api(server, SUPERVISOR, 'GET', '/calls');
    assert(live.length === 1, 'the call is still live while its transcript shows: ' + JSON.stringify(live));
    // The segments name the live call: the panel shows it by the caller's number.
    const id = await page.getAttribute('#sup-transcript .call-transcript', 'data-call-id');
    assert(id === live[0].id, `the panel's call ${id} is the live call ${live[0].id}`);
    const meta = await page.textContent('#sup-transcript .call-transcript .meta');
    assert(meta.includes('+15550188'), 'the call is named by its caller: ' + meta);
    await page.screenshot({ path: join(ARTIFACTS, 'transcript-live.png'), fullPage: true });
    const code = await sippDone;
    assert(code === 0, `sipp caller exit ${code}:\n${sippOut}`);
    assert(errors.length === 0, 'page errors: ' + errors.join('; '));
  } finally {
    if (sipp.exitCode === null) sipp.kill('SIGTERM');
    rmSync(dir, { recursive: true, force: true });
    await context.close();
  }
}

async function main() {
  if (!existsSync(MODEL)) {
    const msg = `NO SPEECH MODEL at ${MODEL} (set PARLEY_SPEECH_MODEL): the live transcript browser test cannot run`;
    if (process.env.CI === 'true') { console.error(msg); process.exit(1); }
    console.log(`\n!!! ${msg}; SKIPPED !!!\n`);
    return;
  }
  mkdirSync(ARTIFACTS, { recursive: true });
  let server;
  let browser;
  let failed = false;
  try {
    server = await startParley();
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
        '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    });
    try {
      await liveTranscript(server, browser);
      console.log('ok   supervisor page: live transcript of a sipp caller speaking espeak-ng sentences');
    } catch (e) {
      failed = true;
      console.log(`FAIL live transcript\n     ${e.stack || e}`);
    }
  } finally {
    await browser?.close();
    if (server) {
      server.child.kill('SIGTERM');
      await sleep(300);
      writeFileSync(join(ARTIFACTS, 'transcript-parley.log'), server.log.join(''));
      rmSync(server.dir, { recursive: true, force: true });
    }
  }
  if (failed) { console.log(`live transcript browser test failed; log in ${ARTIFACTS}`); process.exit(1); }
  console.log('live transcript browser test passed');
}

main().catch((e) => { console.error(e); process.exit(1); });
