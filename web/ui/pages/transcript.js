// Transcripts in the UI.
// - `mountLiveTranscript`: `transcript.segment` events (speaker, text, sentiment colour)
//   as they arrive, grouped by call, and (for supervisors) `transcript.alert`s shown
//   prominently. Used under the agent's call bar (their own calls only) and on the
//   supervisor page (every call).
// - `callTranscript`: a call interaction's stored transcript on the timeline (the body
//   written when the call ends: `transcript`, `transcript_summary`, `keywords`,
//   `sentiment_trend`, `alerts`), collapsible.

import { h, mount } from '../dom.js';
import { onEvent } from '../events.js';

/** Sentiment -1…+1 -> a CSS class (colour) and a word. */
export function sentimentClass(s) {
  const v = Number(s);
  if (!Number.isFinite(v)) return 'neu';
  return v <= -0.25 ? 'neg' : v >= 0.25 ? 'pos' : 'neu';
}
const WORD = { neg: 'negative', pos: 'positive', neu: 'neutral' };

function mmss(ms) {
  const s = Math.max(0, Math.floor(Number(ms) / 1000));
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, '0')}`;
}

function line(speaker, text, sentiment, atMs) {
  const c = sentimentClass(sentiment);
  const who = speaker === 'agent' ? 'Agent' : speaker === 'caller' ? 'Caller' : speaker;
  return h('li', { class: 'seg ' + c + ' ' + speaker, dataset: { speaker, sentiment: c } },
    atMs !== undefined && atMs !== null ? h('span', { class: 'at' }, mmss(atMs)) : null,
    h('strong', { class: 'who' }, who), ' ',
    h('span', { class: 'text' }, text),
    sentiment !== undefined && sentiment !== null
      ? h('span', { class: 'senti ' + c, title: `sentiment ${Number(sentiment).toFixed(2)}` }, WORD[c]) : null);
}

/** An alert object from the server (`{kind: phrase|sustained_negative, …}`) in words. */
export function alertText(a) {
  if (!a) return 'Alert';
  if (a.kind === 'phrase') return `“${a.phrase}” said by the ${a.speaker || 'caller'}` + (a.at_ms !== undefined ? ` at ${mmss(a.at_ms)}` : '');
  if (a.kind === 'sustained_negative') return `Caller negative for ${a.utterances} utterances (mean ${Number(a.mean).toFixed(2)})` + (a.at_ms !== undefined ? ` at ${mmss(a.at_ms)}` : '');
  return a.kind ? a.kind.replace(/_/g, ' ') : JSON.stringify(a);
}

/**
 * Live transcript panel in `section`. `accept(callId)` says which calls to show (default
 * all); `alerts` shows `transcript.alert`s; `describe(callId)` names a call (e.g. the
 * caller's number). The section stays hidden until something arrives. Returns `stop`.
 */
export function mountLiveTranscript(section, { accept = () => true, alerts = false, describe = () => null, title = 'Live transcript' } = {}) {
  const calls = new Map(); // call id -> <ol>
  const alertList = h('ul', { class: 'alerts', 'aria-live': 'assertive' });
  const body = h('div', { class: 'live-calls' });
  section.hidden = true;
  mount(section, h('h2', {}, title), alertList, body);

  function callList(callId) {
    let ol = calls.get(callId);
    if (!ol) {
      ol = h('ol', { class: 'segments' });
      const name = describe(callId);
      body.prepend(h('div', { class: 'call-transcript', dataset: { callId } },
        h('div', { class: 'meta' }, 'Call ', name ? h('strong', {}, name) : h('code', {}, callId.slice(-8))), ol));
      calls.set(callId, ol);
      while (calls.size > 6) {
        const [oldest] = calls.keys();
        const el = body.querySelector(`[data-call-id="${CSS.escape(oldest)}"]`);
        if (el) el.remove();
        calls.delete(oldest);
      }
    }
    return ol;
  }

  const off = onEvent((ev) => {
    const d = ev.data || {};
    if (ev.type === 'transcript.segment' && d.call_id && d.segment && accept(d.call_id)) {
      const s = d.segment;
      const ol = callList(d.call_id);
      ol.append(line(s.speaker, s.text, s.sentiment, s.start_ms));
      while (ol.children.length > 200) ol.firstChild.remove();
      ol.lastChild.scrollIntoView({ block: 'nearest' });
      section.hidden = false;
    } else if (alerts && ev.type === 'transcript.alert' && d.call_id && accept(d.call_id)) {
      const name = describe(d.call_id);
      alertList.prepend(h('li', { class: 'alert-item', role: 'alert', dataset: { callId: d.call_id } },
        h('strong', {}, '⚠ ', alertText(d.alert)), ' ',
        h('span', { class: 'meta' }, 'call ', name || d.call_id.slice(-8), ' · ', new Date().toLocaleTimeString())));
      while (alertList.children.length > 20) alertList.lastChild.remove();
      section.hidden = false;
    }
  });
  return off;
}

/** A small SVG line of the rolling sentiment (`points`: [[end ms, -1…+1]]). */
function sparkline(points) {
  if (!Array.isArray(points) || points.length < 2) return null;
  const W = 240; const H = 40;
  const maxT = Math.max(...points.map((p) => Number(p[0]))) || 1;
  const xy = points.map(([t, v]) => `${((Number(t) / maxT) * W).toFixed(1)},${((1 - (Number(v) + 1) / 2) * H).toFixed(1)}`);
  return h('svg', { class: 'sparkline', viewBox: `0 0 ${W} ${H}`, width: W, height: H, role: 'img', 'aria-label': 'Sentiment over the call' },
    h('line', { x1: 0, y1: H / 2, x2: W, y2: H / 2, class: 'zero' }),
    h('path', { d: 'M' + xy.join(' L'), class: 'trend' }));
}

/** The stored transcript of a call interaction (`b`: its parsed body), or null. */
export function callTranscript(b) {
  if (!b || typeof b.transcript !== 'string' || !b.transcript.trim()) return null;
  const t = b.sentiment_trend || null;
  const lines = b.transcript.split('\n').filter((l) => l.trim()).map((l) => {
    const m = /^(Caller|Agent):\s*(.*)$/.exec(l);
    return m ? line(m[1].toLowerCase(), m[2]) : h('li', { class: 'seg' }, l);
  });
  const keywords = Array.isArray(b.keywords) ? b.keywords : [];
  const alerts = Array.isArray(b.alerts) ? b.alerts : [];
  return h('details', { class: 'transcript' },
    h('summary', {}, 'Transcript', t && Number.isFinite(Number(t.overall))
      ? [' · sentiment ', h('span', { class: 'senti ' + sentimentClass(t.overall) }, `${WORD[sentimentClass(t.overall)]} (${Number(t.overall).toFixed(2)})`)] : null,
    t && t.direction ? [' · ', t.direction] : null),
    b.transcript_summary ? h('p', { class: 'transcript-summary' }, h('strong', {}, 'Summary: '), b.transcript_summary) : null,
    keywords.length ? h('div', { class: 'keywords' }, h('span', { class: 'muted small' }, 'Keywords: '), keywords.map((k) => h('span', { class: 'chip' }, k))) : null,
    t ? h('div', { class: 'trend meta' },
      `Caller ${Number(t.caller_start).toFixed(2)} → ${Number(t.caller_end).toFixed(2)} (${t.direction || 'steady'})`, ' ',
      sparkline(t.points)) : null,
    alerts.length ? h('ul', { class: 'alerts' }, alerts.map((a) => h('li', { class: 'alert-item' }, '⚠ ', alertText(a)))) : null,
    h('ol', { class: 'segments' }, lines));
}
