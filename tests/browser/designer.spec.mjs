// The IVR designer's graph in real Chromium against the real `parley` binary (on
// loopback, in a network namespace of its own: scripts/test.sh), asserted from the
// page's geometry (getBoundingClientRect of the SVG's nodes and labels):
//
//   1. the demo flow (seeded without positions) opens laid out and fitted: every node,
//      edge and label inside the canvas, no two labels overlapping, no label on a node,
//      no two nodes overlapping, the text not shrunk below half;
//   2. a node moved with the keyboard grows the view (still all inside), its position
//      is saved with the draft and kept when the flow is opened again; "Fit to view"
//      and "Auto-layout" bring everything back into a clean, fitted layout;
//   3. a flow with loops back to its menu: the loops are drawn as back edges (dashed,
//      class `back`), with the same geometry checks.
// Screenshots (whole page and the canvas alone) go to ARTIFACTS (designer-*.png: named
// without the leading number that run.mjs clears before its own run).
// Regression (issue 14, item 9): the graph started half off-canvas and edge labels
// overlapped.
//
// Environment: PARLEY_BIN (default $CARGO_TARGET_DIR/debug/parley, else target/debug),
// CHROMIUM (default /usr/bin/chromium), ARTIFACTS.

import { mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { ARTIFACTS, CHROMIUM, assert, startParley } from './harness.mjs';

const ADMIN = 'admin@demo.parley.test';

let server;
let browser;

async function api(method, path, body) {
  const login = await fetch(server.http + '/api/v1/auth/login', {
    method: 'POST', headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ tenant: 'demo', email: ADMIN, password: server.passwords[ADMIN] }),
  });
  assert(login.ok, `login: ${login.status}`);
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
  // A CSP violation ("Refused to …") is a console error too.
  page.on('console', (m) => { if (m.type() === 'error' && !m.text().startsWith('Failed to load resource')) page.errors.push(m.text()); });
  page.on('dialog', (d) => d.accept());
  page.setDefaultTimeout(30000);
  return page;
}

async function login(page) {
  await page.goto(server.http + '/');
  await page.waitForSelector('#login-form');
  await page.fill('[name=email]', ADMIN);
  await page.fill('[name=password]', server.passwords[ADMIN]);
  await page.click('#login-form button[type=submit]');
  await page.waitForSelector('#topbar:not([hidden])');
}

async function openFlow(page, id) {
  await page.goto(server.http + '/designer/' + encodeURIComponent(id));
  await page.waitForSelector('#canvas .node');
  // The fit runs after the first drawing: wait for the view to be set.
  await page.waitForFunction(() => document.querySelector('#canvas')?.getAttribute('viewBox'));
}

/** What the canvas shows, in page pixels. */
function geometry(page) {
  return page.evaluate(() => {
    const r = (el) => { const b = el.getBoundingClientRect(); return { x: b.x, y: b.y, w: b.width, h: b.height }; };
    const svg = document.querySelector('#canvas');
    return {
      canvas: r(document.querySelector('.canvas-wrap')),
      scale: Number(svg.dataset.scale),
      nodes: [...svg.querySelectorAll('.node')].map((g) => ({ id: g.dataset.node, ...r(g.querySelector('rect')), transform: g.getAttribute('transform') })),
      labels: [...svg.querySelectorAll('.edge-tag')].map((g) => ({ text: g.textContent, from: g.dataset.from, to: g.dataset.to, ...r(g.querySelector('text')), bg: r(g.querySelector('rect')) })),
      edges: [...svg.querySelectorAll('.edge')].map((g) => ({ from: g.dataset.from, to: g.dataset.to, cls: g.getAttribute('class'), ...r(g.querySelector('path')) })),
    };
  });
}

const overlap = (a, b) => a.x < b.x + b.w && b.x < a.x + a.w && a.y < b.y + b.h && b.y < a.y + a.h;
const inside = (a, c) => a.x >= c.x - 0.5 && a.y >= c.y - 0.5 && a.x + a.w <= c.x + c.w + 0.5 && a.y + a.h <= c.y + c.h + 0.5;

/** The checks of every drawing: returns the geometry. */
async function checkDrawing(page, tag) {
  const g = await geometry(page);
  assert(g.nodes.length > 0 && g.edges.length > 0, `${tag}: something is drawn`);
  for (const n of g.nodes) assert(inside(n, g.canvas), `${tag}: node ${n.id} inside the canvas: ${JSON.stringify(n)} in ${JSON.stringify(g.canvas)}`);
  for (const e of g.edges) assert(inside(e, g.canvas), `${tag}: edge ${e.from}→${e.to} inside the canvas`);
  for (const l of g.labels) {
    assert(inside(l.bg, g.canvas), `${tag}: label ${l.text} inside the canvas`);
    // The text fits its background box (the layout's width estimate is generous enough).
    assert(inside(l, l.bg), `${tag}: label "${l.text}" fits its box: ${JSON.stringify(l)}`);
  }
  for (let i = 0; i < g.nodes.length; i++) {
    for (let j = i + 1; j < g.nodes.length; j++) assert(!overlap(g.nodes[i], g.nodes[j]), `${tag}: nodes ${g.nodes[i].id} and ${g.nodes[j].id} overlap`);
  }
  for (let i = 0; i < g.labels.length; i++) {
    for (let j = i + 1; j < g.labels.length; j++) {
      assert(!overlap(g.labels[i].bg, g.labels[j].bg), `${tag}: labels "${g.labels[i].text}" and "${g.labels[j].text}" overlap`);
    }
    for (const n of g.nodes) assert(!overlap(g.labels[i].bg, n), `${tag}: label "${g.labels[i].text}" (${g.labels[i].from}→${g.labels[i].to}) lies on node ${n.id}`);
  }
  return g;
}

async function shots(page, name) {
  await page.screenshot({ path: join(ARTIFACTS, name + '.png'), fullPage: true });
  await (await page.$('.canvas-wrap')).screenshot({ path: join(ARTIFACTS, name + '-canvas.png') });
}

const tests = [];
const test = (name, f) => tests.push({ name, f });

test('the demo flow opens laid out and fitted: everything on the canvas, no label on a node or another label', async () => {
  const page = await newPage();
  await login(page);
  await openFlow(page, 'demo');
  const g = await checkDrawing(page, 'demo');
  const draft = (await api('GET', '/ivr/flows/demo')).body.draft;
  assert(g.nodes.length === Object.keys(draft.nodes).length, `every node is drawn (${g.nodes.length})`);
  // Labelled exits of the menu and the branch are there; a lone `next` goes unlabelled.
  const texts = g.labels.map((l) => l.text);
  for (const t of ['rule 1', 'rule 2', 'default', '1', '2', 'on_answered', 'on_timeout']) assert(texts.includes(t), `label ${t}: ${texts}`);
  assert(!g.labels.some((l) => l.from === 'greeting'), 'the greeting\'s only exit (next) has no label');
  // The start is at the top, the end at the bottom.
  const y = (id) => g.nodes.find((n) => n.id === id).y;
  assert(g.nodes.every((n) => n.id === draft.start || y(n.id) > y(draft.start)), 'the start is the top node');
  assert(g.scale >= 0.5, 'the text is legible (scale ≥ 0.5): ' + g.scale);
  assert(!g.edges.some((e) => /\bback\b/.test(e.cls)), 'the demo has no loop');
  await shots(page, 'designer-demo');
  assert(page.errors.length === 0, 'no page errors: ' + page.errors.join('; '));
  await page.context().close();
});

test('a moved node grows the view, is saved and kept on reopening; fit and auto-layout tidy up', async () => {
  // A copy of the demo (the demo itself stays untouched for the other tests).
  const demo = (await api('GET', '/ivr/flows/demo')).body.draft;
  const copy = { ...demo, id: 'demo_copy', name: 'Demo copy' };
  const created = await api('POST', '/ivr/flows', copy);
  assert(created.status === 201, 'copy created: ' + created.status + ' ' + JSON.stringify(created.body));
  const page = await newPage();
  await login(page);
  await openFlow(page, 'demo_copy');
  const before = await checkDrawing(page, 'copy');
  assert(/Unsaved/.test(await page.textContent('#flow-status')) === false, 'nothing to save on opening');
  // Move "closed" far to the right and down with the keyboard (Shift+arrow: 50 px).
  await page.focus('#canvas .node[data-node=closed]');
  for (let i = 0; i < 28; i++) await page.keyboard.press('Shift+ArrowRight');
  for (let i = 0; i < 4; i++) await page.keyboard.press('Shift+ArrowDown');
  const moved = await checkDrawing(page, 'moved');
  const t = moved.nodes.find((n) => n.id === 'closed').transform;
  assert(t !== before.nodes.find((n) => n.id === 'closed').transform, 'the node moved: ' + t);
  assert(moved.scale < before.scale, `the view grew to show it (scale ${before.scale} -> ${moved.scale})`);
  await shots(page, 'designer-moved');
  // Saved with the draft, kept when the flow is opened again.
  await page.click('#save');
  await page.waitForFunction(() => /^Draft saved/.test(document.querySelector('#flow-status').textContent));
  const saved = (await api('GET', '/ivr/flows/demo_copy')).body.draft.nodes.closed.ui;
  assert(`translate(${saved.x},${saved.y})` === t, `the position is in the draft: ${JSON.stringify(saved)} vs ${t}`);
  await openFlow(page, 'demo_copy');
  const reopened = await checkDrawing(page, 'reopened');
  assert(reopened.nodes.find((n) => n.id === 'closed').transform === t, 'the moved node is where the user put it');
  const others = (g) => JSON.stringify(g.nodes.filter((n) => n.id !== 'closed').map((n) => n.transform));
  assert(others(reopened) === others(before), 'the other nodes kept the layout\'s places');
  // Auto-layout: the moved node goes back into the layout, everything fitted again.
  await page.click('#auto-layout');
  const relaid = await checkDrawing(page, 'auto-layout');
  assert(JSON.stringify(relaid.nodes.map((n) => n.transform)) === JSON.stringify(before.nodes.map((n) => n.transform)), 'auto-layout restores the layout');
  assert(relaid.scale === before.scale, `fitted like at first (${relaid.scale} vs ${before.scale})`);
  assert(/Unsaved/.test(await page.textContent('#flow-status')), 'the new layout is a change to save');
  // Fit to view after moving the start node up and left past the origin's corner.
  await page.focus('#canvas .node[data-node=greeting]');
  for (let i = 0; i < 10; i++) await page.keyboard.press('Shift+ArrowLeft');
  await page.click('#fit-view');
  await checkDrawing(page, 'fit');
  assert(page.errors.length === 0, 'no page errors: ' + page.errors.join('; '));
  await page.context().close();
});

test('loops back to a menu are drawn as back edges, the layout still clean', async () => {
  const flow = {
    version: 1, id: 'loops', name: 'Loops', start: 'welcome',
    nodes: {
      welcome: { type: 'play', prompts: [{ tts: 'Welcome.' }], next: 'menu' },
      menu: {
        type: 'menu', prompts: [{ tts: 'Press 1 for billing, 2 for our hours, 9 to hear this again.' }],
        choices: [{ digit: '1', next: 'billing' }, { digit: '2', next: 'hours' }, { digit: '9', next: 'menu' }],
        timeout_ms: 5000, max_retries: 2, on_max_retries: 'bye',
      },
      billing: { type: 'gather', prompts: [{ tts: 'Your account number, then hash.' }], variable: 'account', min_len: 1, max_len: 12, terminator: '#', next: 'thanks', on_invalid: 'menu' },
      hours: { type: 'play', prompts: [{ tts: 'We are open around the clock.' }], next: 'menu' },
      thanks: { type: 'play', prompts: [{ tts: 'Thank you.' }], next: 'bye' },
      bye: { type: 'hangup' },
    },
  };
  const created = await api('POST', '/ivr/flows', flow);
  assert(created.status === 201, 'flow created: ' + created.status + ' ' + JSON.stringify(created.body));
  const page = await newPage();
  await login(page);
  await openFlow(page, 'loops');
  const g = await checkDrawing(page, 'loops');
  const back = g.edges.filter((e) => /\bback\b/.test(e.cls)).map((e) => `${e.from}→${e.to}`).sort();
  assert(JSON.stringify(back) === JSON.stringify(['billing→menu', 'hours→menu', 'menu→menu']), 'the loops are back edges: ' + back);
  const dash = await page.$eval('#canvas .edge.back path', (p) => getComputedStyle(p).strokeDasharray);
  assert(dash && dash !== 'none', 'back edges are dashed: ' + dash);
  await shots(page, 'designer-loops');
  assert(page.errors.length === 0, 'no page errors: ' + page.errors.join('; '));
  await page.context().close();
});

async function main() {
  mkdirSync(ARTIFACTS, { recursive: true });
  for (const f of readdirSync(ARTIFACTS)) if (/^designer-/.test(f) || f === 'designer.log') rmSync(join(ARTIFACTS, f), { force: true });
  const t0 = Date.now();
  server = await startParley('designer', { RUST_LOG: process.env.RUST_LOG || 'warn' });
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync'],
  });
  let failed = 0;
  try {
    for (const t of tests) {
      const s = Date.now();
      try {
        await t.f();
        console.log(`ok   ${t.name} (${((Date.now() - s) / 1000).toFixed(1)} s)`);
      } catch (e) {
        failed++;
        console.log(`FAIL ${t.name}\n     ${String(e.stack || e).split('\n').join('\n     ')}`);
        for (const ctx of browser.contexts()) {
          for (const [i, pg] of ctx.pages().entries()) {
            await pg.screenshot({ path: join(ARTIFACTS, `designer-failure-${tests.indexOf(t)}-${i}.png`), fullPage: true }).catch(() => {});
          }
          await ctx.close();
        }
      }
    }
  } finally {
    await browser.close();
    server.child.kill('SIGTERM');
    writeFileSync(join(ARTIFACTS, 'designer.log'), server.log.join(''));
    rmSync(server.dir, { recursive: true, force: true });
  }
  console.log(`${failed ? 'FAILED' : 'passed'}: ${tests.length - failed}/${tests.length} in ${((Date.now() - t0) / 1000).toFixed(1)} s; screenshots in ${ARTIFACTS}`);
  process.exit(failed ? 1 : 0);
}

main().catch((e) => { console.error(e); if (server) server.child.kill('SIGTERM'); process.exit(1); });
