// The dashboards page (issue #22) in real Chromium against the real `parley` binary
// with 14 days of demo history (PARLEY_DEMO_HISTORY_DAYS):
//   - the KPI tiles show the numbers the API gives for the same period and filters
//     (read from the rendered page, compared with GET /analytics/kpis), with
//     compare-to-previous; a channel filter changes them the same way;
//   - the trend charts are drawn by the vendored uPlot (canvas), the agent table and
//     the arrivals heatmap are filled; a click on the volume chart opens the drill-down
//     list of that day's calls and conversations;
//   - CSV export downloads the report; a saved, shared report is listed and runs;
//   - the live wallboard arrives over the events WebSocket (no polling request).
// Screenshots: artifacts/dashboards.png, dashboards-drill.png.
//
// Environment: PARLEY_BIN, CHROMIUM, ARTIFACTS as for run.mjs. Run inside a loopback-only
// network namespace like the other browser tests (scripts/test.sh):
//   unshare -rn sh -c 'ip link set lo up; node tests/browser/dashboards.spec.mjs'

import { mkdirSync, readFileSync } from 'node:fs';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { ARTIFACTS, CHROMIUM, assert, startParley } from './harness.mjs';

const SUPERVISOR = 'supervisor@demo.parley.test';
const DAY = 86_400_000;

let server;

async function api(email, path) {
  const login = await fetch(server.http + '/api/v1/auth/login', {
    method: 'POST', headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ tenant: 'demo', email, password: server.passwords[email] }),
  });
  assert(login.ok, `login ${email}: ${login.status}`);
  const { token } = await login.json();
  const res = await fetch(server.http + '/api/v1' + path, { headers: { authorization: 'Bearer ' + token } });
  const text = await res.text();
  assert(res.ok, `GET ${path}: ${res.status} ${text}`);
  return JSON.parse(text);
}

const iso = (ms) => new Date(ms).toISOString().replace('.000Z', 'Z');
const metric = (row, id) => (row.metrics.find((m) => m.id === id) || {}).value;

/** The tiles as the page shows them: metric id -> data-value (the number behind the text). */
async function tiles(page) {
  return page.$$eval('#kpi-tiles .kpi-tile', (l) => Object.fromEntries(l.map((t) => [t.dataset.metric, t.querySelector('.kpi-value').dataset.value])));
}

function sameAsApi(shown, total, what) {
  for (const [id, v] of Object.entries(shown)) {
    const want = metric(total, id);
    const got = v === '' ? null : Number(v);
    assert(got === (want === undefined ? null : want), `${what}: tile ${id} shows ${got}, the API says ${want}`);
  }
}

async function main() {
  mkdirSync(ARTIFACTS, { recursive: true });
  server = await startParley('dashboards', { PARLEY_DEMO_HISTORY_DAYS: '14' });
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
  const context = await browser.newContext({ viewport: { width: 1440, height: 900 }, acceptDownloads: true });
  const page = await context.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  page.on('console', (m) => { if (m.type() === 'error' && !m.text().startsWith('Failed to load resource')) errors.push(m.text()); });
  const polled = [];
  page.on('request', (r) => { if (r.url().includes('/analytics/live')) polled.push(r.url()); });
  page.setDefaultTimeout(30000);
  try {
    await page.goto(server.http + '/');
    await page.waitForSelector('#login-form');
    await page.fill('[name=email]', SUPERVISOR);
    await page.fill('[name=password]', server.passwords[SUPERVISOR]);
    await page.click('#login-form button[type=submit]');
    await page.waitForSelector('#topbar:not([hidden])');
    await page.click('#nav a[href="/dashboards"]');
    await page.waitForSelector('#kpi-tiles .kpi-tile');

    // The page's default period: the last 30 UTC days, today included.
    const now = Date.now();
    const to = now - (now % DAY) + DAY;
    const from = to - 30 * DAY;
    const total = (await api(SUPERVISOR, `/analytics/kpis?from=${iso(from)}&to=${iso(to)}&group_by=channel`)).total;
    assert(metric(total, 'contacts') > 50, 'the demo history is there: ' + metric(total, 'contacts'));
    sameAsApi(await tiles(page), total, 'all channels');

    // Charts drawn by uPlot, agent table, heatmap, the live wallboard over the socket.
    await page.waitForSelector('[data-chart=contacts] canvas');
    assert((await page.$$('.kpi-chart canvas')).length === 5, 'five trend charts');
    await page.waitForSelector('#agent-table tbody tr');
    assert((await page.$$eval('#heatmap td.heat', (l) => l.filter((td) => td.textContent !== '').length)) > 10, 'the heatmap has arrivals');
    await page.waitForFunction(() => /Waiting/.test(document.querySelector('#live').textContent));
    assert(polled.length === 0, 'the live wallboard is pushed, not polled: ' + polled.join(', '));
    await page.screenshot({ path: join(ARTIFACTS, 'dashboards.png'), fullPage: true });

    // A filter: voice only, with compare-to-previous.
    await page.selectOption('select[name=channel]', 'voice');
    await page.check('input[name=compare]');
    await page.waitForSelector('.kpi-prev');
    const voice = (await api(SUPERVISOR, `/analytics/kpis?from=${iso(from)}&to=${iso(to)}&group_by=channel&channel=voice`)).total;
    await page.waitForFunction((c) => document.querySelector('[data-metric=contacts] .kpi-value').dataset.value === String(c), metric(voice, 'contacts'));
    sameAsApi(await tiles(page), voice, 'voice');

    // Drill-down: a click on yesterday's volume bar lists that day's calls.
    const box = await page.$('[data-chart=contacts] .u-over');
    const bb = await box.boundingBox();
    await page.mouse.move(bb.x + bb.width * (28.5 / 30), bb.y + bb.height / 2);
    await page.mouse.click(bb.x + bb.width * (28.5 / 30), bb.y + bb.height / 2);
    await page.waitForSelector('#drilldown:not([hidden]) tbody tr');
    const kinds = await page.$$eval('#drilldown tbody tr', (l) => l.map((tr) => tr.dataset.kind));
    assert(kinds.length > 0 && kinds.every((k) => k === 'call' || k === 'callback_kept'), 'voice facts only: ' + kinds.join(','));
    await page.screenshot({ path: join(ARTIFACTS, 'dashboards-drill.png'), fullPage: true });

    // CSV export.
    const [download] = await Promise.all([page.waitForEvent('download'), page.click('#csv')]);
    const csv = readFileSync(await download.path(), 'utf8');
    assert(csv.startsWith('key,label,contacts,'), 'CSV header: ' + csv.slice(0, 60));
    assert(/\ntotal,Total,/.test(csv), 'CSV total line');

    // The report builder: save a shared report, run it.
    await page.fill('#reports input[name=name]', 'Voice by agent');
    await page.selectOption('#reports select[name=group_by]', 'agent');
    await page.check('#reports input[name=shared]');
    await page.click('#reports button.primary');
    await page.waitForSelector('#reports tbody button.link');
    await page.click('#reports tbody button.link');
    await page.waitForSelector('#report-result table');
    const listed = await api(SUPERVISOR, '/analytics/reports');
    assert(listed.length === 1 && listed[0].shared && listed[0].filters.channel === 'voice', 'saved: ' + JSON.stringify(listed));

    assert(errors.length === 0, 'no page errors: ' + errors.join('; '));
    console.log('ok   dashboards: tiles equal the API, charts, agent table, heatmap, drill-down, CSV, saved report, live push');
  } catch (e) {
    await page.screenshot({ path: join(ARTIFACTS, 'dashboards-failure.png'), fullPage: true }).catch(() => {});
    console.log('FAIL dashboards\n     ' + String(e.stack || e).split('\n').join('\n     '));
    console.log(server.log.slice(-40).join(''));
    process.exitCode = 1;
  } finally {
    await browser.close();
    server.child.kill('SIGTERM');
    rmSync(server.dir, { recursive: true, force: true });
  }
}

main().catch((e) => { console.error(e); process.exit(1); });
