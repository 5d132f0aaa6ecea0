// The live transcript panels in real Chromium against the real `parley` binary with the
// real speech model, on speech made here with espeak-ng + sox (G.711 µ-law):
//   (a) a sipp caller dials the demo number and streams a sentence (sipp's rtp_stream);
//       the supervisor page, logged in through the UI, shows the call's segments as they
//       arrive (speaker, words), names the call by its caller, and shows the alert on a
//       watched phrase (artifacts/transcript-live.png);
//   (b) a caller (sipp signalling, RTP from this test) presses 1 in the demo menu, the
//       agent's sipp phone answers and speaks its own sentence; the agent's desktop shows
//       both speakers' words under its call bar (artifacts/transcript-agent.png).
//
// Environment: PARLEY_BIN (default $CARGO_TARGET_DIR/debug/parley, else target/debug),
// PARLEY_SPEECH_MODEL (default ../shared/models/ggml-tiny.en.bin; missing: a loud skip,
// a failure under CI=true), CHROMIUM (default /usr/bin/chromium), ARTIFACTS (default
// tests/browser/artifacts). Run inside a loopback-only network namespace like the other
// browser tests (scripts/test.sh).

import { spawn, spawnSync } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { chromium } from 'playwright-core';
import { ARTIFACTS, CHROMIUM, assert, here, root, sleep, startParley as startHarness } from './harness.mjs';

const MODEL = process.env.PARLEY_SPEECH_MODEL || resolve(root, '../shared/models/ggml-tiny.en.bin');
const ADMIN = 'admin@demo.parley.test';
const SUPERVISOR = 'supervisor@demo.parley.test';
const AGENT = 'agent1@demo.parley.test';


function startParley() {
  return startHarness('transcript', { PARLEY_SPEECH_MODEL: MODEL, PARLEY_SPEECH_WORKERS: '1' });
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

/** A caller's RTP peer: learns Parley's RTP address from its first packet (symmetric
 * RTP), presses digits (RFC 4733, PT 101), then plays µ-law audio in 20 ms packets. */
function rtpPeer() {
  const sock = createSocket('udp4');
  const peer = { sock, remote: null, packets: 0, seq: 1, ts: 0, ssrc: 0x7a1c0001, timer: null };
  sock.on('message', (msg, rinfo) => {
    if (msg.length < 12 || (msg[0] >> 6) !== 2) return;
    if (!peer.remote) peer.remote = { address: rinfo.address, port: rinfo.port };
    peer.packets++;
  });
  const header = (pt, marker) => {
    const h = Buffer.alloc(12);
    h[0] = 0x80; h[1] = (marker ? 0x80 : 0) | pt;
    h.writeUInt16BE(peer.seq++ & 0xffff, 2); h.writeUInt32BE(peer.ts >>> 0, 4); h.writeUInt32BE(peer.ssrc, 8);
    return h;
  };
  peer.digit = async (d) => {
    const ev = '0123456789*#'.indexOf(d);
    const ts = peer.ts;
    for (let k = 0; k < 6; k++) {
      const end = k >= 3;
      const dur = Math.min(k + 1, 4) * 160;
      const h = header(101, k === 0);
      h.writeUInt32BE(ts >>> 0, 4);
      sock.send(Buffer.concat([h, Buffer.from([ev, (end ? 0x80 : 0) | 10, dur >> 8, dur & 0xff])]), peer.remote.port, peer.remote.address);
      await sleep(20);
    }
    peer.ts += 960;
  };
  // Plays `audio` (µ-law) over and over, paced by the clock (not by the timer's ticks).
  peer.play = (audio) => {
    const t0 = Date.now();
    let sent = 0;
    peer.timer = setInterval(() => {
      while (peer.remote && sent < Math.floor((Date.now() - t0) / 20)) {
        const off = (sent * 160) % (audio.length - audio.length % 160);
        sock.send(Buffer.concat([header(0, false), audio.subarray(off, off + 160)]), peer.remote.port, peer.remote.address);
        peer.ts += 160;
        sent++;
      }
    }, 10);
  };
  peer.close = () => { clearInterval(peer.timer); sock.close(); };
  return new Promise((ok) => sock.bind(0, '127.0.0.1', () => { peer.port = sock.address().port; ok(peer); }));
}

async function agentDesktop(server, browser) {
  // The demo flow's menu (business hours: open all week); its option 1 rings the agents
  // (no `sales` queue here), whose sipp phone answers and speaks.
  await api(server, ADMIN, 'PUT', '/ivr/calendars/main', { time_zone: 'UTC',
    weekly: [{ days: ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'], open: '00:00', close: '23:59:59.999' }], holidays: [] });
  await api(server, ADMIN, 'PUT', '/speech/settings',
    { transcription: true, require_consent: false, alert_phrases: [] });
  const dir = mkdtempSync(join(tmpdir(), 'parley-transcript-agent-'));
  speak('I can reset your router for you right now.', join(dir, 'agent.ul'));
  speak('My internet connection is not working.', join(dir, 'caller.ul'));
  const procs = [];
  const sippRun = (args) => {
    const c = spawn('sipp', [...args, '-i', '127.0.0.1', '-timeout', '120s', '-timeout_error', '-nostdin'],
      { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
    c.out = '';
    c.stdout.on('data', (d) => { c.out += d; });
    c.stderr.on('data', (d) => { c.out += d; });
    c.done = new Promise((ok) => c.on('exit', (code) => ok(code)));
    procs.push(c);
    return c;
  };
  const context = await browser.newContext({ viewport: { width: 1440, height: 900 } });
  const page = await context.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  page.setDefaultTimeout(30000);
  const rtp = await rtpPeer();
  try {
    const phonePort = 42000 + Math.floor(Math.random() * 3000);
    const sipps = join(root, 'tests/sipp');
    sippRun(['-sf', join(sipps, 'uas_agent_speech.xml'), '-p', String(phonePort), '-m', '1',
      '-mp', String(20000 + 4 * Math.floor(Math.random() * 2500))]);
    const reg = sippRun(['-sf', join(sipps, 'register.xml'), '-s', '1001', '-au', '1001', '-ap', server.sipPasswords['1001'],
      '-key', 'contact_port', String(phonePort), '-m', '1', '-p', String(phonePort + 1), server.sip]);
    assert((await reg.done) === 0, 'REGISTER 1001:\n' + reg.out);
    await page.goto(server.http + '/');
    await page.waitForSelector('#login-form');
    await page.fill('[name=email]', AGENT);
    await page.fill('[name=password]', server.passwords[AGENT]);
    await page.click('#login-form button[type=submit]');
    await page.waitForSelector('#conn.open');
    assert(new URL(page.url()).pathname.startsWith('/agent'), 'agent desktop, got ' + page.url());
    const caller = sippRun(['-sf', join(here, 'sipp_ivr_caller.xml'), '-s', '15550100', '-key', 'rtpport', String(rtp.port),
      '-m', '1', '-d', '60000', '-p', String(phonePort + 2), server.sip]);
    // The IVR answers and greets (symmetric RTP tells us where to send); press 1.
    const until = Date.now() + 20000;
    while (!rtp.remote && Date.now() < until) await sleep(50);
    assert(rtp.remote, 'the IVR sent RTP to the caller');
    await sleep(1500);
    await rtp.digit('1');
    rtp.play(readFileSync(join(dir, 'caller.ul')));
    // The agent's own call: both speakers' words under the call bar.
    const seg = (who) => `#live-transcript .call-transcript li.seg.${who} .text`;
    const has = (sel, re) => page.waitForFunction(([sel, re]) => [...document.querySelectorAll(sel)]
      .some((e) => new RegExp(re, 'i').test(e.textContent)), [sel, re], { timeout: 60000 });
    await has(seg('agent'), 'router');
    await has(seg('caller'), 'connection');
    const meta = await page.textContent('#live-transcript .call-transcript .meta');
    assert(meta.includes('+15550177'), 'the call is named by its caller: ' + meta);
    await page.screenshot({ path: join(ARTIFACTS, 'transcript-agent.png'), fullPage: true });
    caller.kill('SIGTERM');
    assert(errors.length === 0, 'page errors: ' + errors.join('; '));
  } finally {
    for (const c of procs) if (c.exitCode === null) c.kill('SIGTERM');
    rtp.close();
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
    for (const [name, fn] of [
      ['supervisor page: live transcript of a sipp caller speaking espeak-ng sentences', liveTranscript],
      ['agent desktop: its own call\'s caller and agent (a sipp phone) transcribed live', agentDesktop],
    ]) {
      try {
        await fn(server, browser);
        console.log(`ok   ${name}`);
      } catch (e) {
        failed = true;
        console.log(`FAIL ${name}\n     ${e.stack || e}`);
      }
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
