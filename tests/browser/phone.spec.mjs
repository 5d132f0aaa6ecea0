// The agent desktop's phone panel (web/ui/pages/phone.js) with the call bar, in real
// Chromium against the real `parley` binary, on loopback, in a network namespace of its
// own (scripts/test.sh). One story, step by step:
//
//   1. agent1 logs in and goes available; the panel registers the browser as a device;
//   2. a sipp caller dials the demo number and presses 1; the panel rings and the agent
//      clicks Answer; audio flows both ways (the browser's inbound-rtp energy; the
//      caller's RTP peer hears the browser's fake microphone);
//   3. the agent presses a key on the panel's keypad: the caller gets RFC 4733;
//   4. Hold from the panel: the caller's RTP peer hears the music on hold (523 Hz);
//      the call bar shows the same state; Unhold from the call bar;
//   5. from the call bar, a consultation with agent2's extension (a sipp UAS: the caller
//      hears hold music meanwhile, the panel shows the call held), cancelled; then a
//      blind transfer there: the panel's call ends, the live call's agent is agent2;
//   6. the agent dials +4930123456 in the panel's dial box: the call goes through the
//      tenant's trunk with its caller ID to a sipp carrier, audio both ways, the panel
//      and the call bar show "talking"; the agent hangs up; the call is on the
//      customer's timeline as an outbound call.
// Screenshots of each step go to ARTIFACTS (default tests/browser/artifacts).
//
// Environment: PARLEY_BIN (default $CARGO_TARGET_DIR/debug/parley, else target/debug),
// CHROMIUM (default /usr/bin/chromium), ARTIFACTS.

import { spawn, spawnSync } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { ARTIFACTS, CHROMIUM, assert, here, root, sleep, startParley as startHarness } from './harness.mjs';

const ADMIN = 'admin@demo.parley.test';
const SUPERVISOR = 'supervisor@demo.parley.test';
const AGENT = 'agent1@demo.parley.test';
const AGENT2 = 'agent2@demo.parley.test';
const CUSTOMER = '+4930123456';


function startParley() {
  return startHarness('phone', {});
}

async function until(what, f, ms = 30000) {
  const end = Date.now() + ms;
  let last;
  while (Date.now() < end) {
    last = await f();
    if (last) return last;
    await sleep(200);
  }
  throw new Error('timed out waiting for ' + what);
}

let server;

async function api(email, method, path, body) {
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
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : null };
}

function freePort() {
  return new Promise((ok, fail) => {
    const s = createSocket('udp4');
    s.on('error', fail);
    s.bind(0, '127.0.0.1', () => { const p = s.address().port; s.close(() => ok(p)); });
  });
}
const mediaPort = () => 20000 + 2 * Math.floor(Math.random() * 4000);

/** sipp in the background; `.done` resolves to {code, out}. */
function sipp(scenario, args) {
  const child = spawn('sipp', ['-sf', scenario, '-i', '127.0.0.1', '-m', '1', '-nostdin', ...args],
    { cwd: tmpdir(), stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (d) => { out += d; });
  child.stderr.on('data', (d) => { out += d; });
  child.done = new Promise((ok) => child.on('exit', (code) => ok({ code, out })));
  return child;
}

// G.711 µ-law.
function ulawDecode(u) {
  u = ~u & 0xff;
  const sign = u & 0x80, exp = (u >> 4) & 7, man = u & 0x0f;
  let x = ((man << 3) + 0x84) << exp;
  x -= 0x84;
  return sign ? -x : x;
}
function ulawEncode(x) {
  const sign = x < 0 ? 0x80 : 0;
  if (x < 0) x = -x;
  x = Math.min(x, 32635) + 0x84;
  let exp = 7;
  for (let m = 0x4000; (x & m) === 0 && exp > 0; m >>= 1) exp--;
  const man = (x >> (exp + 3)) & 0x0f;
  return ~(sign | (exp << 4) | man) & 0xff;
}

/** Share of a 20 ms frame's power at `hz` (Goertzel). */
function share(samples, hz) {
  const k = 2 * Math.cos(2 * Math.PI * hz / 8000);
  let s1 = 0, s2 = 0, total = 0;
  for (const x of samples) { const s0 = x + k * s1 - s2; s2 = s1; s1 = s0; total += x * x; }
  const p = s1 * s1 + s2 * s2 - k * s1 * s2;
  return total > 0 ? (2 * p / samples.length) / total : 0;
}

/** An RTP peer for a sipp UA's media (PCMU + RFC 4733 on 101): it learns Parley's
 * address from the first packet (symmetric RTP), sends a 440 Hz tone once started, and
 * counts what arrives: loud packets, packets of the hold music's 523 Hz, RFC 4733. */
function rtpPeer() {
  const sock = createSocket('udp4');
  const peer = { sock, remote: null, packets: 0, loud: 0, music: 0, dtmf: 0, seq: 1, ts: 0, ssrc: (Math.random() * 2 ** 32) >>> 0, phase: 0, timer: null };
  sock.on('message', (msg, rinfo) => {
    if (msg.length < 12 || (msg[0] >> 6) !== 2) return;
    if (!peer.remote) peer.remote = { address: rinfo.address, port: rinfo.port };
    const pt = msg[1] & 0x7f;
    if (pt === 101) { peer.dtmf++; return; }
    if (pt !== 0) return;
    peer.packets++;
    const pcm = [];
    let sum = 0;
    for (let i = 12; i < msg.length; i++) { const v = ulawDecode(msg[i]); pcm.push(v); sum += v * v; }
    if (Math.sqrt(sum / Math.max(1, pcm.length)) > 200) {
      peer.loud++;
      if (share(pcm, 523.25) > 0.25) peer.music++;
    }
  });
  const header = (pt, marker) => {
    const h = Buffer.alloc(12);
    h[0] = 0x80; h[1] = (marker ? 0x80 : 0) | pt;
    h.writeUInt16BE(peer.seq++ & 0xffff, 2); h.writeUInt32BE(peer.ts >>> 0, 4); h.writeUInt32BE(peer.ssrc, 8);
    return h;
  };
  peer.start = () => {
    if (peer.timer) return;
    peer.timer = setInterval(() => {
      if (!peer.remote) return;
      const pcm = Buffer.alloc(160);
      for (let i = 0; i < 160; i++) { pcm[i] = ulawEncode(Math.round(6000 * Math.sin(peer.phase))); peer.phase += 2 * Math.PI * 440 / 8000; }
      sock.send(Buffer.concat([header(0, false), pcm]), peer.remote.port, peer.remote.address);
      peer.ts += 160;
    }, 20);
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
  };
  peer.close = () => { clearInterval(peer.timer); sock.close(); };
  return new Promise((ok) => sock.bind(0, '127.0.0.1', () => { peer.port = sock.address().port; ok(peer); }));
}

/** The page's newest RTCPeerConnection's audio stats (the peer connections are
 * recorded by an init script: the app's softphone keeps its own private). */
async function stats(page) {
  return page.evaluate(async () => {
    const pc = window.__pcs[window.__pcs.length - 1];
    if (!pc) return null;
    const out = { inbound: null, outbound: null, pair: null };
    const report = await pc.getStats();
    const byId = new Map();
    report.forEach((s) => byId.set(s.id, s));
    report.forEach((s) => {
      if (s.type === 'inbound-rtp' && s.kind === 'audio') out.inbound = { packetsReceived: s.packetsReceived, totalAudioEnergy: s.totalAudioEnergy };
      else if (s.type === 'outbound-rtp' && s.kind === 'audio') out.outbound = { packetsSent: s.packetsSent };
      else if (s.type === 'candidate-pair' && s.nominated && s.state === 'succeeded') {
        const l = byId.get(s.localCandidateId), r = byId.get(s.remoteCandidateId);
        out.pair = { local: l && l.address, remote: r && r.address };
      }
    });
    return out;
  });
}

async function shot(page, name) {
  await page.screenshot({ path: join(ARTIFACTS, name + '.png'), fullPage: true });
}

async function phoneStory(browser) {
  const procs = [];
  const peers = [];
  const context = await browser.newContext({ viewport: { width: 1440, height: 900 } });
  await context.addInitScript(() => {
    window.__pcs = [];
    const Orig = window.RTCPeerConnection;
    window.RTCPeerConnection = function (...args) { const pc = new Orig(...args); window.__pcs.push(pc); return pc; };
    window.RTCPeerConnection.prototype = Orig.prototype;
  });
  const page = await context.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  page.setDefaultTimeout(30000);
  try {
    // The demo flow queues calls during business hours: open all week.
    const cal = await api(ADMIN, 'PUT', '/ivr/calendars/main', {
      time_zone: 'UTC', holidays: [],
      weekly: [{ days: ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'], open: '00:00', close: '23:59:59.999' }],
    });
    assert(cal.status === 200, 'calendar opened: ' + cal.status);

    // 1. Log in, go available, the panel is ready.
    await page.goto(server.http + '/');
    await page.waitForSelector('#login-form');
    await page.fill('[name=email]', AGENT);
    await page.fill('[name=password]', server.passwords[AGENT]);
    await page.click('#login-form button[type=submit]');
    await page.waitForSelector('#topbar:not([hidden])');
    await page.waitForSelector('#presence select:not([disabled])');
    await page.selectOption('#presence select', 'available');
    await page.waitForSelector('#presence .presence-state[data-state=available]');
    await page.waitForSelector('#softphone [data-phone-status=ready]');
    await shot(page, 'phone-01-ready');

    // 2. A sipp caller: demo number, then 1. The panel rings; Answer.
    const caller = await rtpPeer();
    peers.push(caller);
    const uac = sipp(join(here, 'sipp_ivr_caller.xml'), ['-s', '15550100', '-key', 'rtpport', String(caller.port),
      '-d', '120000', '-p', String(await freePort()), '-timeout', '240s', '-timeout_error', server.sip]);
    procs.push(uac);
    await until('the IVR greeting', () => caller.remote && caller.packets > 25);
    caller.start();
    await caller.digit('1');
    await page.waitForSelector('#softphone [data-action=answer]', { timeout: 30000 });
    assert((await page.textContent('#softphone .incoming')).includes('15550177'), 'the caller in the panel');
    await shot(page, 'phone-02-incoming');
    await page.click('#softphone [data-action=answer]');
    await page.waitForSelector('#softphone .oncall[data-call-state=talking]');
    await page.waitForSelector('#callbar .callbar[data-state=talking] .badge.browser');
    const callId = await page.$eval('#callbar .callbar', (d) => d.dataset.callId);
    const heardBefore = caller.loud;
    const s = await until('audio both ways', async () => {
      const st = await stats(page);
      return st && st.inbound && st.inbound.packetsReceived > 100 && st.inbound.totalAudioEnergy > 0 && caller.loud - heardBefore > 25 ? st : null;
    });
    console.log('   browser stats', JSON.stringify(s), `caller heard ${caller.loud - heardBefore} loud packets`);
    assert(s.pair && s.pair.local === '127.0.0.1' && s.pair.remote === '127.0.0.1', 'loopback candidate pair');
    await shot(page, 'phone-03-talking');

    // 3. The keypad: RFC 4733 reaches the caller.
    const dtmfBefore = caller.dtmf;
    await page.click('#softphone .keypad [data-digit="5"]');
    await until('the digit at the caller', () => caller.dtmf > dtmfBefore);

    // 4. Hold from the panel: music on hold at the caller; the bar agrees; Unhold there.
    await page.click('#softphone [data-action=hold]');
    await page.waitForSelector('#softphone .oncall[data-call-state=held] [data-action=unhold][aria-pressed=true]');
    await page.waitForSelector('#callbar [data-action=unhold][aria-pressed=true]');
    const musicBefore = caller.music;
    await until('music on hold at the caller', () => caller.music - musicBefore > 20);
    console.log(`   caller heard ${caller.music - musicBefore} packets of hold music`);
    await shot(page, 'phone-04-held');
    await page.click('#callbar [data-action=unhold]');
    await page.waitForSelector('#softphone .oncall[data-call-state=talking] [data-action=hold]');
    // Mute from the panel is the call's mute: the bar shows it too.
    await page.click('#softphone [data-action=mute]');
    await page.waitForSelector('#callbar [data-action=unmute]');
    await page.click('#softphone [data-action=unmute]');
    await page.waitForSelector('#callbar [data-action=mute]');

    // 5. Warm transfer started and cancelled, then a blind transfer, from the call bar to
    //    agent2's phone (a sipp UAS answering one call at a time on one port).
    const acct2 = server.sipAccounts[AGENT2];
    assert(acct2, "agent2's SIP account in the demo logins");
    const phonePort = await freePort();
    const agent2Phone = () => sipp(join(root, 'tests/sipp/uas_bridge.xml'), ['-rtp_echo', '-p', String(phonePort), '-mp', String(mediaPort()), '-timeout', '240s', '-timeout_error']);
    const consulted = agent2Phone();
    procs.push(consulted);
    const reg = spawnSync('sipp', ['-sf', join(root, 'tests/sipp/register.xml'), '-i', '127.0.0.1', '-p', String(await freePort()),
      '-m', '1', '-timeout', '30s', '-timeout_error', '-nostdin', '-s', acct2.extension, '-au', acct2.extension, '-ap', acct2.password,
      '-key', 'contact_port', String(phonePort), server.sip], { cwd: tmpdir(), encoding: 'utf8', timeout: 60000 });
    assert(reg.status === 0, `REGISTER ${acct2.extension} failed\n${reg.stdout}\n${reg.stderr}`);
    await page.fill('#callbar input[name=target]', acct2.extension);
    await page.click('#callbar [data-action=consult]');
    await page.waitForSelector('#callbar [data-action=complete_transfer]:not([disabled])');
    // Consulting: the caller is on hold (the panel says so too) and hears the music.
    await page.waitForSelector('#softphone .oncall[data-call-state=held]');
    const music1 = caller.music;
    await until('music on hold during the consultation', () => caller.music - music1 > 20);
    await shot(page, 'phone-05-consulting');
    await page.click('#callbar [data-action=cancel_consult]');
    await page.waitForSelector('#callbar [data-action=consult]');
    await page.waitForSelector('#softphone .oncall[data-call-state=talking]');
    const c1 = await consulted.done;
    assert(c1.code === 0, `the consulted phone (${c1.code}):\n${c1.out.slice(-2000)}`);
    const uas = agent2Phone();
    procs.push(uas);
    await sleep(300); // sipp listening
    await page.fill('#callbar input[name=target]', acct2.extension);
    await page.click('#callbar [data-action=transfer]');
    await page.waitForSelector('#softphone form.dial', { timeout: 30000 });
    const users = await api(ADMIN, 'GET', '/users');
    const agent2Id = users.body.find((u) => u.email === AGENT2).id;
    await until('agent2 on the call', async () => {
      const c = await api(SUPERVISOR, 'GET', '/calls/' + callId);
      return c.status === 200 && c.body.state === 'talking' && c.body.agent_user_id === agent2Id;
    });
    await page.waitForSelector('#callbar', { state: 'hidden' });
    await shot(page, 'phone-06-transferred');
    uac.kill('SIGTERM'); // the caller and agent2 talk on; this story goes on without them
    uas.kill('SIGTERM');

    // 6. An outbound call from the dial box through the trunk to a sipp carrier.
    const carrier = await rtpPeer();
    peers.push(carrier);
    const carrierPort = await freePort();
    const trunkUas = sipp(join(here, 'sipp_trunk_uas.xml'), ['-key', 'rtpport', String(carrier.port), '-p', String(carrierPort), '-timeout', '120s', '-timeout_error']);
    procs.push(trunkUas);
    const t = await api(ADMIN, 'POST', '/trunks', { name: 'carrier', outbound_target: `127.0.0.1:${carrierPort}`, caller_id: '+15550100' });
    assert(t.status === 201, 'trunk: ' + t.status + ' ' + JSON.stringify(t.body));
    // International is off by the default dial policy: Germany is allowed here.
    const dp = await api(ADMIN, 'PUT', '/dial-policy', { allow_prefixes: ['+49'] });
    assert(dp.status === 200, 'dial policy: ' + dp.status + ' ' + JSON.stringify(dp.body));
    await page.fill('#softphone input[name=dial]', CUSTOMER);
    await page.click('#softphone [data-action=dial]');
    await page.waitForSelector('#softphone .oncall[data-call-state=talking]', { timeout: 30000 });
    await page.waitForSelector('#callbar .callbar[data-state=talking] .badge.browser');
    assert((await page.textContent('#callbar')).includes(CUSTOMER), 'the customer in the call bar');
    const outId = await page.$eval('#callbar .callbar', (d) => d.dataset.callId);
    const live = await api(AGENT, 'GET', '/calls/' + outId);
    assert(live.body.direction === 'outbound' && live.body.customer_number === CUSTOMER, 'outbound live call: ' + JSON.stringify(live.body));
    await until('the carrier RTP', () => carrier.remote);
    // Before the carrier talks the browser hears (next to) nothing: the ringback it heard
    // while the carrier rang has stopped.
    await sleep(1000);
    const quiet0 = (await stats(page)).inbound?.totalAudioEnergy || 0;
    await sleep(1000);
    const energy0 = (await stats(page)).inbound?.totalAudioEnergy || 0;
    assert(energy0 - quiet0 < 0.005, `silence before the carrier talks (energy +${energy0 - quiet0})`);
    carrier.start();
    const loud0 = carrier.loud;
    const s2 = await until('audio both ways with the carrier', async () => {
      const st = await stats(page);
      return st && st.inbound && st.inbound.totalAudioEnergy - energy0 > 0.02 && carrier.loud - loud0 > 25 ? st : null;
    });
    console.log('   outbound stats', JSON.stringify(s2), `carrier heard ${carrier.loud - loud0} loud packets`);
    await shot(page, 'phone-07-outbound');
    await page.click('#softphone [data-action=hangup]');
    await page.waitForSelector('#softphone form.dial');
    const done = await trunkUas.done;
    assert(done.code === 0, `the carrier's sipp failed (${done.code}):\n${done.out.slice(-3000)}`);
    // On the customer's timeline, as click-to-call puts it.
    const found = await until('the call on the timeline', async () => {
      const c = await api(AGENT, 'GET', '/customers/lookup?kind=phone&value=' + encodeURIComponent(CUSTOMER));
      if (c.status !== 200) return null;
      const tl = await api(AGENT, 'GET', `/customers/${c.body.id}/timeline?limit=10`);
      return (tl.body.items || []).find((i) => i.kind === 'call' && i.direction === 'outbound');
    });
    assert(found, 'an outbound call on the timeline');
    await shot(page, 'phone-08-after');
    assert(errors.length === 0, 'page errors: ' + errors.join('; '));
  } catch (e) {
    await shot(page, 'phone-failure').catch(() => {});
    throw e;
  } finally {
    for (const p of procs) if (p.exitCode === null) p.kill('SIGKILL');
    for (const p of peers) p.close();
    await context.close();
  }
}

async function main() {
  mkdirSync(ARTIFACTS, { recursive: true });
  for (const f of readdirSync(ARTIFACTS)) if (f.startsWith('phone-')) rmSync(join(ARTIFACTS, f), { force: true });
  let browser;
  let failed = false;
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
    try {
      await phoneStory(browser);
      console.log('ok   phone panel: answer, keypad, hold, mute, consult and cancel, blind transfer, outbound call through the trunk');
    } catch (e) {
      failed = true;
      console.log(`FAIL phone panel\n     ${e.stack || e}`);
    }
  } finally {
    await browser?.close();
    if (server) {
      server.child.kill('SIGTERM');
      await sleep(300);
      writeFileSync(join(ARTIFACTS, 'phone-parley.log'), server.log.join(''));
      rmSync(server.dir, { recursive: true, force: true });
    }
  }
  if (failed) { console.log(`phone panel test failed; log and screenshots in ${ARTIFACTS}`); process.exit(1); }
  console.log('phone panel browser test passed');
}

main().catch((e) => { console.error(e); process.exit(1); });
