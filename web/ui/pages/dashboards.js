// Dashboards (issue #22): KPI tiles with compare-to-previous, trend charts (uPlot,
// vendored), the agent table, the arrivals heatmap, drill-down on a chart click, CSV
// export, the report builder (saved reports, shared with the team) and the live
// wallboard pushed over the events WebSocket (`?live=1`). Every number comes from
// /api/v1/analytics (definitions: docs/metrics.md).

import { get, post, del, apiRaw, qs, session, enc } from '../api.js';
import { h, mount, errorBox, toast, table } from '../dom.js';
import uPlot from '../vendor/uplot/uPlot.esm.js';

const DAY = 86_400_000;
const TILES = [
  ['contacts', 'Contacts', 'count'],
  ['service_level', 'Service level', 'pct'],
  ['asa_s', 'ASA', 's'],
  ['aht_s', 'AHT', 's'],
  ['abandonment_rate', 'Abandoned', 'pct'],
  ['frt_avg_s', 'First response', 's'],
  ['resolution_avg_s', 'Resolution (avg)', 's'],
  ['resolution_median_s', 'Resolution (median)', 's'],
  ['fcr', 'FCR', 'pct'],
  ['csat', 'CSAT', 'pct'],
];
const CHARTS = [
  ['contacts', 'Volume', 'count'],
  ['service_level', 'Service level', 'pct'],
  ['aht_s', 'AHT', 's'],
  ['frt_avg_s', 'First response time', 's'],
  ['csat', 'CSAT', 'pct'],
];
const PRESETS = [['today', 'Today', 1], ['7d', 'Last 7 days', 7], ['30d', 'Last 30 days', 30], ['90d', 'Last 90 days', 90]];
const CHANNELS = ['voice', 'web_chat', 'email', 'sms', 'whatsapp', 'messenger', 'instagram', 'telegram', 'x', 'api'];
const STORE_KEY = 'parley.dashboards';

/** The value of metric `id` in a KPI row (null when none). */
export function metric(row, id) {
  const m = row && row.metrics.find((x) => x.id === id);
  return m ? m.value : null;
}

/** A metric as shown: percentages, durations, counts. */
export function show(v, unit) {
  if (v === null || v === undefined) return '—';
  if (unit === 'pct') return `${Math.round(v * 1000) / 10} %`;
  if (unit === 's') return v >= 120 ? `${Math.round(v / 6) / 10} min` : `${Math.round(v * 10) / 10} s`;
  return String(v);
}

/** [from, to) of a preset: whole UTC days ending with today. */
export function period(preset, now = Date.now()) {
  const days = (PRESETS.find((p) => p[0] === preset) || PRESETS[2])[2];
  const to = now - (now % DAY) + DAY;
  return [to - days * DAY, to];
}

const iso = (ms) => new Date(ms).toISOString().replace('.000Z', 'Z');

function stylesheet(href) {
  if (document.querySelector(`link[href="${href}"]`)) return;
  document.head.append(h('link', { rel: 'stylesheet', href }));
}

export async function render(main) {
  stylesheet('/assets/vendor/uplot/uPlot.min.css');
  stylesheet('/assets/pages/dashboards.css');
  const saved = JSON.parse(localStorage.getItem(STORE_KEY) || '{}');
  const f = { preset: saved.preset || '30d', compare: !!saved.compare, channel: saved.channel || '', queue: saved.queue || '', agent: saved.agent || '' };
  const [queues, people] = await Promise.all([get('/queues').catch(() => []), get('/colleagues').catch(() => [])]);
  const names = Object.fromEntries([...queues.map((q) => [q.id, q.name]), ...people.map((p) => [p.id, p.name])]);

  const sel = (name, options, value) => h('select', { name, 'aria-label': name, onchange: (e) => { f[name] = e.target.value; refresh(); } },
    options.map(([v, label]) => h('option', { value: v, selected: v === value ? true : null }, label)));
  const filters = h('form', { class: 'filters', onsubmit: (e) => e.preventDefault() },
    sel('preset', PRESETS.map(([v, l]) => [v, l]), f.preset),
    h('label', {}, h('input', { type: 'checkbox', name: 'compare', checked: f.compare, onchange: (e) => { f.compare = e.target.checked; refresh(); } }), ' Compare to previous'),
    sel('channel', [['', 'All channels'], ...CHANNELS.map((c) => [c, c])], f.channel),
    sel('queue', [['', 'All queues'], ...queues.map((q) => [q.id, q.name])], f.queue),
    sel('agent', [['', 'All agents'], ...people.map((p) => [p.id, p.name])], f.agent),
    h('button', { type: 'button', id: 'csv', onclick: () => exportCsv() }, 'Export CSV'));
  const tiles = h('div', { class: 'kpi-tiles', id: 'kpi-tiles' });
  const charts = h('div', { class: 'kpi-charts' });
  const drill = h('section', { class: 'card', id: 'drilldown', hidden: true });
  const agents = h('section', { class: 'card' }, h('h2', {}, 'Agents'), h('div', { id: 'agent-table' }));
  const heat = h('section', { class: 'card' }, h('h2', {}, 'Arrivals by weekday and hour (UTC)'), h('div', { id: 'heatmap' }));
  const live = h('section', { class: 'card', id: 'live' }, h('h2', {}, 'Live'), h('p', { class: 'muted' }, 'Connecting…'));
  const reports = h('section', { class: 'card', id: 'reports' });
  const err = h('div');
  mount(main, h('h1', {}, 'Dashboards'), filters, err, live, tiles, charts, drill, agents, heat, reports);

  let plots = [];
  const base = () => ({ channel: f.channel, queue: f.queue, agent: f.agent });

  async function refresh() {
    localStorage.setItem(STORE_KEY, JSON.stringify(f));
    const [from, to] = period(f.preset);
    const span = to - from;
    try {
      const [total, byDay, byAgent, byHour, prev] = await Promise.all([
        get('/analytics/kpis' + qs({ ...base(), from: iso(from), to: iso(to), group_by: 'channel' })),
        get('/analytics/kpis' + qs({ ...base(), from: iso(from), to: iso(to), group_by: 'day' })),
        get('/analytics/kpis' + qs({ ...base(), from: iso(from), to: iso(to), group_by: 'agent' })),
        get('/analytics/kpis' + qs({ ...base(), from: iso(from), to: iso(to), group_by: 'hour' })),
        f.compare ? get('/analytics/kpis' + qs({ ...base(), from: iso(from - span), to: iso(from), group_by: 'channel' })) : null,
      ]);
      mount(err);
      drawTiles(total.total, prev && prev.total);
      drawCharts(byDay, from, to);
      drawAgents(byAgent);
      drawHeat(byHour);
    } catch (e) {
      mount(err, errorBox(e));
    }
  }

  function drawTiles(row, prev) {
    mount(tiles, TILES.map(([id, label, unit]) => {
      const v = metric(row, id);
      const p = prev ? metric(prev, id) : null;
      return h('div', { class: 'kpi-tile', dataset: { metric: id } },
        h('div', { class: 'kpi-label' }, label),
        h('div', { class: 'kpi-value', dataset: { value: v === null ? '' : String(v) } }, show(v, unit)),
        prev ? h('div', { class: 'kpi-prev muted' }, 'previous: ', show(p, unit)) : null);
    }));
  }

  function drawCharts(byDay, from, to) {
    for (const p of plots) p.destroy();
    plots = [];
    const days = [];
    for (let t = from; t < to; t += DAY) days.push(t);
    const rows = Object.fromEntries(byDay.rows.map((r) => [Date.parse(r.key), r]));
    mount(charts);
    for (const [id, label, unit] of CHARTS) {
      const box = h('div', { class: 'card kpi-chart', dataset: { chart: id } }, h('h2', {}, label));
      charts.append(box);
      const xs = days.map((d) => d / 1000);
      const ys = days.map((d) => { const v = metric(rows[d], id); return v === null ? (unit === 'count' ? 0 : null) : (unit === 'pct' ? v * 100 : v); });
      const width = Math.max(280, Math.min(560, box.clientWidth - 24 || 420));
      const opts = {
        width, height: 180,
        cursor: { drag: { x: false, y: false } },
        legend: { show: false },
        scales: { x: { time: true } },
        axes: [{}, { values: (u, vals) => vals.map((v) => unit === 'pct' ? v + '%' : unit === 's' ? v + 's' : v) }],
        series: [{}, {
          label, stroke: '#1f5eff', width: 2, fill: 'rgba(31,94,255,0.12)',
          paths: id === 'contacts' ? uPlot.paths.bars({ size: [0.7, 40] }) : undefined,
          points: { show: true, size: 5 },
        }],
      };
      const plot = new uPlot(opts, [xs, ys], box);
      plot.over.addEventListener('click', () => {
        const i = plot.cursor.idx;
        if (i === null || i === undefined) return;
        openDrill(days[i], days[i] + DAY);
      });
      plots.push(plot);
    }
  }

  async function openDrill(from, to) {
    drill.hidden = false;
    mount(drill, h('h2', {}, `Drill-down: ${new Date(from).toISOString().slice(0, 10)}`), h('p', { class: 'muted' }, 'Loading…'));
    try {
      const facts = await get('/analytics/drilldown' + qs({ ...base(), from: iso(from), to: iso(to), limit: 500 }));
      mount(drill, h('h2', {}, `Drill-down: ${new Date(from).toISOString().slice(0, 10)} (${facts.length})`),
        h('button', { type: 'button', class: 'ghost', onclick: () => { drill.hidden = true; } }, 'Close'),
        table(facts, [
          { label: 'When', get: (x) => new Date(x.at).toISOString().slice(11, 16) },
          { label: 'What', get: (x) => x.kind.replace('_', ' ') },
          { label: 'Channel', get: (x) => x.channel },
          { label: 'Queue', get: (x) => names[x.queue_id] || x.queue_id || '—' },
          { label: 'Agent', get: (x) => names[x.agent_id] || x.agent_id || '—' },
          { label: 'Detail', get: (x) => x.detail || (x.value !== null ? String(x.value) : '') },
          { label: 'Open', get: (x) => x.ref_kind === 'conversation' ? h('a', { href: `/inbox/${enc(x.ref_id)}`, 'data-link': '' }, 'conversation') : x.ref_kind.replace('_', ' ') },
        ], { empty: 'Nothing counted in this period.', rowData: (x) => ({ kind: x.kind }) }));
      drill.scrollIntoView({ block: 'nearest' });
    } catch (e) {
      mount(drill, errorBox(e));
    }
  }

  function drawAgents(byAgent) {
    const rows = byAgent.rows.filter((r) => r.key);
    mount(agents.querySelector('#agent-table'), table(rows, [
      { label: 'Agent', get: (r) => r.label },
      { label: 'Contacts', get: (r) => show(metric(r, 'contacts'), 'count') },
      { label: 'Answered', get: (r) => show(metric(r, 'answered'), 'count') },
      { label: 'AHT', get: (r) => show(metric(r, 'aht_s'), 's') },
      { label: 'First responses', get: (r) => show(metric(r, 'first_responses'), 'count') },
      { label: 'FRT', get: (r) => show(metric(r, 'frt_avg_s'), 's') },
      { label: 'Resolved', get: (r) => show(metric(r, 'resolved'), 'count') },
      { label: 'CSAT', get: (r) => show(metric(r, 'csat'), 'pct') },
    ], { empty: 'No agent handled anything in this period.' }));
  }

  function drawHeat(byHour) {
    const grid = Array.from({ length: 7 }, () => new Array(24).fill(0));
    let max = 0;
    for (const r of byHour.rows) {
      const d = new Date(r.key);
      const v = metric(r, 'contacts') || 0;
      const w = (d.getUTCDay() + 6) % 7;
      grid[w][d.getUTCHours()] += v;
      max = Math.max(max, grid[w][d.getUTCHours()]);
    }
    const wd = ['Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat', 'Sun'];
    const cell = (v) => {
      const td = h('td', { class: 'heat', title: `${v} contacts` }, v ? String(v) : '');
      td.style.backgroundColor = `rgba(31, 94, 255, ${max ? (0.08 + 0.8 * v / max).toFixed(2) : 0})`;
      if (max && v / max > 0.55) td.style.color = '#fff';
      return td;
    };
    mount(heat.querySelector('#heatmap'), h('table', { class: 'heatmap' },
      h('thead', {}, h('tr', {}, h('th', {}, ''), Array.from({ length: 24 }, (_, i) => h('th', { scope: 'col' }, String(i))))),
      h('tbody', {}, grid.map((row, i) => h('tr', {}, h('th', { scope: 'row' }, wd[i]), row.map(cell))))));
  }

  async function exportCsv() {
    const [from, to] = period(f.preset);
    try {
      const res = await apiRaw('GET', '/analytics/kpis' + qs({ ...base(), from: iso(from), to: iso(to), group_by: 'queue', format: 'csv' }));
      const blob = await res.blob();
      const a = h('a', { href: URL.createObjectURL(blob), download: `parley-kpis-${f.preset}.csv` });
      document.body.append(a);
      a.click();
      a.remove();
    } catch (e) {
      mount(err, errorBox(e));
    }
  }

  async function drawReports() {
    let list = [];
    try { list = await get('/analytics/reports'); } catch (e) { mount(reports, errorBox(e)); return; }
    const name = h('input', { name: 'name', placeholder: 'Report name', required: true, maxlength: 120 });
    const shared = h('input', { type: 'checkbox', name: 'shared' });
    const dim = h('select', { name: 'group_by', 'aria-label': 'dimension' }, ['queue', 'agent', 'team', 'channel', 'priority', 'day', 'hour'].map((d) => h('option', { value: d }, d)));
    const picks = h('div', { class: 'metric-picks' }, TILES.map(([id, label]) => h('label', {}, h('input', { type: 'checkbox', value: id, checked: true }), ' ', label)));
    const out = h('div');
    const form = h('form', {
      onsubmit: async (e) => {
        e.preventDefault();
        const metrics = [...picks.querySelectorAll('input:checked')].map((i) => i.value);
        const filters = Object.fromEntries(Object.entries(base()).filter(([, v]) => v));
        try {
          await post('/analytics/reports', { name: name.value, shared: shared.checked, metrics, group_by: dim.value, period: f.preset, filters });
          toast('Report saved');
          drawReports();
        } catch (x) { mount(out, errorBox(x)); }
      },
    }, h('div', { class: 'row' }, name, dim, h('label', {}, shared, ' Share with the team'), h('button', { class: 'primary' }, 'Save report')), picks, out);
    mount(reports, h('h2', {}, 'Reports'), form, table(list, [
      { label: 'Name', get: (r) => h('button', { type: 'button', class: 'link', onclick: () => runReport(r) }, r.name) },
      { label: 'By', get: (r) => r.group_by },
      { label: 'Period', get: (r) => r.period },
      { label: 'Shared', get: (r) => (r.shared ? 'yes' : 'no') },
      { label: '', get: (r) => (r.owner_id === (session.user && session.user.id) ? h('button', { type: 'button', class: 'ghost', onclick: async () => { await del(`/analytics/reports/${enc(r.id)}`); drawReports(); } }, 'Delete') : '') },
    ], { empty: 'No saved report yet.' }), h('div', { id: 'report-result' }));
  }

  async function runReport(r) {
    const [from, to] = period(r.period || '30d');
    const box = reports.querySelector('#report-result');
    try {
      const rep = await get('/analytics/kpis' + qs({ ...r.filters, from: iso(from), to: iso(to), group_by: r.group_by }));
      const ids = r.metrics.length ? r.metrics : rep.definitions.map((d) => d.id);
      const unit = (id) => (rep.definitions.find((d) => d.id === id) || {}).unit;
      const u = (id) => (unit(id) === 'ratio' ? 'pct' : unit(id));
      mount(box, h('h3', {}, r.name), table([...rep.rows, rep.total], [
        { label: r.group_by, get: (row) => row.label },
        ...ids.map((id) => ({ label: id, get: (row) => show(metric(row, id), u(id)) })),
      ]));
    } catch (e) { mount(box, errorBox(e)); }
  }

  // The live wallboard, pushed by the server every 2 s.
  let sock = null;
  let closed = false;
  function connectLive() {
    if (closed || !session.token) return;
    const proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
    sock = new WebSocket(`${proto}//${location.host}/api/v1/events?live=1&access_token=${enc(session.token)}`);
    sock.onmessage = (m) => {
      let ev;
      try { ev = JSON.parse(m.data); } catch { return; }
      if (ev.type === 'analytics.live') drawLive(ev.data);
    };
    sock.onclose = () => { if (!closed) setTimeout(connectLive, 3000); };
  }
  function drawLive(d) {
    const a = d.agents;
    const c = d.conversations;
    const tile = (label, v, cls) => h('div', { class: 'kpi-tile ' + (cls || '') }, h('div', { class: 'kpi-label' }, label), h('div', { class: 'kpi-value' }, String(v)));
    mount(live, h('h2', {}, 'Live'),
      h('div', { class: 'kpi-tiles' },
        tile('Waiting (all channels)', d.waiting),
        tile('Longest wait', show(d.longest_wait_s, 's')),
        tile('Agents available', a.available),
        tile('On a call / busy', a.on_call + a.ringing),
        tile('Wrap-up', a.wrap_up),
        tile('Away', a.away),
        tile('Chats open', c.open),
        tile('Unassigned', c.unassigned),
        tile('SLA at risk', c.sla_at_risk, c.sla_at_risk ? 'late' : ''),
        tile('Capacity (calls / chats / async)', `${d.capacity.voice} / ${d.capacity.chat} / ${d.capacity.async}`)),
      h('p', { class: 'muted' }, `Today so far: ${show(metric(d.today, 'contacts'), 'count')} contacts, service level ${show(metric(d.today, 'service_level'), 'pct')}. Updated ${new Date(d.at).toLocaleTimeString()}.`));
  }

  connectLive();
  await refresh();
  drawReports();
  return () => { closed = true; if (sock) sock.close(); for (const p of plots) p.destroy(); };
}
