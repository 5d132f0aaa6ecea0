// The WebRTC softphone in real Chromium against the real `parley` binary, on loopback,
// inside a network namespace of its own (see tests/browser/softphone.sh):
//
//   (a) the demo agent's browser dials *43 (echo test): ICE/DTLS-SRTP to Parley, the
//       browser's fake microphone comes back through the media engine (Opus decoded and
//       re-encoded), the browser's inbound-rtp shows packets and audio energy, and an
//       RFC 4733 digit sent with insertDTMF is reported back by the server;
//   (b) (when sipp is available) a sipp caller dials the demo number 15550100, presses 1,
//       the browser rings, answers, and audio flows both ways (the browser's inbound
//       energy; sipp's RTP from the browser's microphone, counted by sipp);
//   (c) (when coturn's `turnserver` is installed) TURN: a local coturn on loopback with
//       a shared secret (`use-auth-secret`), a second server configured with it
//       (PARLEY_WEBRTC_ICE_URLS, PARLEY_WEBRTC_TURN_SECRET), which hands the browser its
//       ICE servers with a per-session, time-limited credential (the TURN REST API
//       scheme) with `ready`; coturn accepts it, and the browser, restricted to
//       iceTransportPolicy 'relay', reaches Parley through a TURN relay and the echo
//       test's audio still flows.
//
// Environment: PARLEY_BIN (default $CARGO_TARGET_DIR/debug/parley, else target/debug),
// CHROMIUM (default /usr/bin/chromium), ARTIFACTS (default tests/browser/artifacts).

import { spawn } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { ARTIFACTS, CHROMIUM, assert, here, sleep, startParley as startHarness } from './harness.mjs';

const AGENT = 'agent1@demo.parley.test';


function startParley(extraEnv = {}) {
  return startHarness('softphone', { PARLEY_RTP_PORTS: '30000-30999', ...extraEnv });
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

// ------------------------------------------------------------------------------------
// (b) sipp caller -> demo number -> 1 -> the browser agent answers

// G.711 µ-law, as the caller's RTP peer speaks it.
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

/** The caller's RTP peer: learns Parley's RTP address from the first packet (symmetric
 * RTP), sends a 440 Hz tone, presses digits (RFC 4733, PT 101), measures what arrives. */
function rtpPeer() {
  const sock = createSocket('udp4');
  const peer = { sock, remote: null, packets: 0, energyPackets: 0, seq: 1, ts: 0, ssrc: 0x1234abcd, phase: 0, timer: null };
  sock.on('message', (msg, rinfo) => {
    if (msg.length < 12 || (msg[0] >> 6) !== 2) return;
    if (!peer.remote) peer.remote = { address: rinfo.address, port: rinfo.port };
    if ((msg[1] & 0x7f) !== 0) return;
    peer.packets++;
    let sum = 0;
    for (let i = 12; i < msg.length; i++) { const v = ulawDecode(msg[i]); sum += v * v; }
    if (Math.sqrt(sum / Math.max(1, msg.length - 12)) > 200) peer.energyPackets++;
  });
  const header = (pt, marker) => {
    const h = Buffer.alloc(12);
    h[0] = 0x80; h[1] = (marker ? 0x80 : 0) | pt;
    h.writeUInt16BE(peer.seq++ & 0xffff, 2); h.writeUInt32BE(peer.ts >>> 0, 4); h.writeUInt32BE(peer.ssrc, 8);
    return h;
  };
  peer.start = () => {
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
      const p = Buffer.from([ev, (end ? 0x80 : 0) | 10, dur >> 8, dur & 0xff]);
      const h = header(101, k === 0);
      h.writeUInt32BE(ts >>> 0, 4);
      sock.send(Buffer.concat([h, p]), peer.remote.port, peer.remote.address);
      await sleep(20);
    }
  };
  peer.close = () => { clearInterval(peer.timer); sock.close(); };
  return new Promise((ok) => sock.bind(0, '127.0.0.1', () => { peer.port = sock.address().port; ok(peer); }));
}

async function ivrCallTest(server, browser) {
  // The demo flow only queues calls during business hours: open all week.
  const admin = await login(server, 'admin@demo.parley.test');
  const cal = await fetch(server.http + '/api/v1/ivr/calendars/main', {
    method: 'PUT', headers: { authorization: 'Bearer ' + admin, 'content-type': 'application/json' },
    body: JSON.stringify({ time_zone: 'UTC', weekly: [{ days: ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'], open: '00:00', close: '23:59:59.999' }], holidays: [] }),
  });
  assert(cal.ok, `open the calendar: ${cal.status}`);

  const context = await browser.newContext();
  const page = await context.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  await page.goto(server.http + '/softphone-test.html');
  await page.waitForFunction(() => !!window.phone);
  const token = await login(server, AGENT);
  const ready = await page.evaluate((t) => window.phone.connect(t), token);
  assert(ready.extension, 'the demo agent has an extension: ' + JSON.stringify(ready));
  await page.evaluate(() => {
    window.seen = [];
    for (const t of ['incoming', 'answered', 'hungup', 'error']) {
      window.phone.addEventListener(t, (e) => window.seen.push(e.detail));
    }
  });

  const rtp = await rtpPeer();
  const sipPort = 45000 + Math.floor(Math.random() * 5000);
  const sipp = spawn('sipp', ['-sf', join(here, 'sipp_ivr_caller.xml'), '-s', '15550100',
    '-key', 'rtpport', String(rtp.port), '-m', '1', '-d', '25000', '-i', '127.0.0.1', '-p', String(sipPort),
    '-nostdin', server.sip], { stdio: ['ignore', 'pipe', 'pipe'] });
  let sippOut = '';
  sipp.stdout.on('data', (d) => { sippOut += d; });
  sipp.stderr.on('data', (d) => { sippOut += d; });
  const sippDone = new Promise((ok) => sipp.on('exit', (code) => ok(code)));
  try {
    // The IVR answers and greets us (symmetric RTP tells us where to send).
    const until = Date.now() + 20000;
    while ((!rtp.remote || rtp.packets < 25) && Date.now() < until) await sleep(50);
    assert(rtp.remote, 'the IVR sent RTP to the caller');
    rtp.start();
    await rtp.digit('1');
    // The browser rings; answer it.
    const incoming = await page.waitForFunction(() => window.seen.find((e) => e.type === 'incoming'), null, { timeout: 20000 });
    const call = await incoming.jsonValue();
    console.log('   incoming', JSON.stringify(call));
    await page.evaluate((id) => window.phone.answer(id), call.call_id);
    await page.waitForFunction(() => window.seen.some((e) => e.type === 'answered'), null, { timeout: 20000 });
    const before = rtp.energyPackets;
    const s = await statsUntil(page, call.call_id, (s) => s.inbound?.packetsReceived > 100 && s.inbound?.totalAudioEnergy > 0 && s.outbound?.packetsSent > 100);
    console.log('   browser stats', JSON.stringify(s));
    assert(s?.inbound?.packetsReceived > 100, 'browser received the caller\'s audio');
    assert(s.inbound.totalAudioEnergy > 0, 'caller audio has energy in the browser');
    // The browser's fake microphone (beeps) reaches the caller's RTP peer, transcoded to PCMU.
    const until2 = Date.now() + 15000;
    while (rtp.energyPackets - before < 25 && Date.now() < until2) await sleep(100);
    console.log(`   caller RTP peer: ${rtp.packets} packets, ${rtp.energyPackets - before} with energy since the answer`);
    assert(rtp.energyPackets - before >= 25, 'the caller heard the browser');
    await page.screenshot({ path: join(ARTIFACTS, 'softphone-ivr-call.png'), fullPage: true });
    await page.evaluate((id) => window.phone.hangup(id), call.call_id);
    const code = await sippDone;
    assert(code === 0, `sipp caller exit ${code}:\n${sippOut}`);
    assert(errors.length === 0, 'page errors: ' + errors.join('; '));
  } finally {
    if (sipp.exitCode === null) sipp.kill('SIGTERM');
    rtp.close();
    await context.close();
  }
}

function freePort() {
  return new Promise((ok, fail) => {
    const s = createSocket('udp4');
    s.on('error', fail);
    s.bind(0, '127.0.0.1', () => { const p = s.address().port; s.close(() => ok(p)); });
  });
}

const TURNSERVER = '/usr/bin/turnserver';

async function turnRelayTest(_server, browser) {
  if (!existsSync(TURNSERVER)) {
    if (process.env.CI === 'true') throw new Error('coturn (turnserver) is not installed: scripts/setup.sh --test installs it');
    console.log('   SKIPPED: no coturn (apt-get install coturn)');
    return;
  }
  // coturn on loopback: credentials derived from a shared secret (TURN REST API),
  // relays on loopback, loopback peers allowed
  // (Parley's ICE candidates are 127.0.0.1 here).
  const port = await freePort();
  const relayMin = 40000 + 2 * Math.floor(Math.random() * 5000);
  const turnLog = [];
  const turn = spawn(TURNSERVER, ['-n', '--listening-ip=127.0.0.1', '--relay-ip=127.0.0.1', `--listening-port=${port}`,
    `--min-port=${relayMin}`, `--max-port=${relayMin + 200}`, '--use-auth-secret', '--static-auth-secret=turn-secret',
    '--realm=parley.test', '--no-tls', '--no-dtls', '--no-cli', '--allow-loopback-peers', '--log-file=stdout',
    '--simple-log', '--verbose'], { stdio: ['ignore', 'pipe', 'pipe'] });
  turn.stdout.on('data', (d) => turnLog.push(d.toString()));
  turn.stderr.on('data', (d) => turnLog.push(d.toString()));
  let server;
  const context = await browser.newContext();
  try {
    const until = Date.now() + 10000;
    while (!turnLog.join('').includes('Total General servers') && Date.now() < until) await sleep(100);
    const url = `turn:127.0.0.1:${port}?transport=udp`;
    server = await startParley({
      PARLEY_WEBRTC_ICE_URLS: url, PARLEY_WEBRTC_TURN_SECRET: 'turn-secret',
    });
    const page = await context.newPage();
    const errors = [];
    page.on('pageerror', (e) => errors.push(String(e)));
    await page.goto(server.http + '/softphone-test.html');
    await page.waitForFunction(() => !!window.phone);
    const token = await login(server, AGENT);
    // A softphone that may only use relay candidates, with the server's ICE servers.
    const ready = await page.evaluate(async (t) => {
      const { Softphone } = await import('/softphone.js');
      window.relayPhone = new Softphone({ iceTransportPolicy: 'relay' });
      window.phone.close();
      window.phone = window.relayPhone;
      return window.phone.connect(t);
    }, token);
    const ice = ready.ice_servers || [];
    // `<expiry>:<user id>` and base64(HMAC-SHA1(secret, user name)): never the secret.
    const [expiry, who] = (ice[0]?.username || '').split(':');
    assert(ice.length === 1 && ice[0].urls[0] === url && Number(expiry) > Date.now() / 1000 && who
      && /^[A-Za-z0-9+/]{27}=$/.test(ice[0].credential || '') && !JSON.stringify(ready).includes('turn-secret'),
      'the server hands its ICE servers with a per-session credential: ' + JSON.stringify(ice));
    const callId = await page.evaluate(() => window.phone.dial('*43'));
    // (the selected pair can lag the media in getStats: wait for both)
    const s = await statsUntil(page, callId, (s) => s.inbound?.packetsReceived > 100 && s.inbound?.totalAudioEnergy > 0 && s.pair, 30000);
    console.log('   relay stats', JSON.stringify(s));
    assert(s?.pair?.localType === 'relay', 'the browser talks through a TURN relay: ' + JSON.stringify(s?.pair));
    const relayPort = Number(s.pair.local.split(':')[1]);
    assert(relayPort >= relayMin && relayPort <= relayMin + 200, `the relay address is one of coturn's (${relayMin}-${relayMin + 200}): ${s.pair.local}`);
    assert(s.inbound.packetsReceived > 100 && s.inbound.totalAudioEnergy > 0, 'echoed audio through the relay');
    assert(/ALLOCATE processed, success/.test(turnLog.join('')), 'coturn allocated a relay');
    await page.screenshot({ path: join(ARTIFACTS, 'softphone-turn-relay.png'), fullPage: true });
    await page.evaluate((id) => window.phone.hangup(id), callId);
    assert(errors.length === 0, 'page errors: ' + errors.join('; '));
  } finally {
    await context.close();
    if (server) {
      server.child.kill('SIGTERM');
      writeFileSync(join(ARTIFACTS, 'softphone-turn-parley.log'), server.log.join(''));
      rmSync(server.dir, { recursive: true, force: true });
    }
    turn.kill('SIGTERM');
    writeFileSync(join(ARTIFACTS, 'softphone-turnserver.log'), turnLog.join(''));
  }
}

const tests = [
  ['echo test (*43): media both ways and RFC 4733 DTMF', echoTest],
  ['sipp caller -> demo number -> 1 -> browser agent answers; audio both ways', ivrCallTest],
  ['TURN: the server hands its ICE servers; relay-only browser, echo through coturn', turnRelayTest],
];

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
