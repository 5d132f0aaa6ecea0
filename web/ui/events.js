// The live events connection: one WebSocket to /api/v1/events per page load, shared by
// every page. Reconnects with backoff; tells the shell its state so it can show a
// clear error when the connection is down. Pages subscribe with `onEvent(f)` and
// unsubscribe with the function it returns.

import { session } from './api.js';

const listeners = new Set();
const stateListeners = new Set();
let ws = null;
let state = 'idle'; // idle | connecting | open | down
let retry = 0;
let timer = null;
let stopped = true;

function setState(s, detail) {
  state = s;
  for (const f of stateListeners) f(s, detail);
}

export function connectionState() { return state; }

export function onState(f) {
  stateListeners.add(f);
  f(state);
  return () => stateListeners.delete(f);
}

export function onEvent(f) {
  listeners.add(f);
  return () => listeners.delete(f);
}

export function start() {
  stopped = false;
  if (ws) return;
  open();
}

export function stop() {
  stopped = true;
  clearTimeout(timer);
  if (ws) { ws.onclose = null; ws.close(); ws = null; }
  setState('idle');
}

function open() {
  if (!session.token) return;
  const proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
  setState('connecting');
  const sock = new WebSocket(`${proto}//${location.host}/api/v1/events?access_token=${encodeURIComponent(session.token)}`);
  ws = sock;
  sock.onopen = () => {
    retry = 0;
    setState('open');
    // A reconnect may have missed events: tell pages to reload what they show.
    for (const f of listeners) f({ type: 'connected' });
  };
  sock.onmessage = (m) => {
    let ev;
    try { ev = JSON.parse(m.data); } catch { return; }
    for (const f of listeners) {
      try { f(ev); } catch (e) { console.error('event handler', e); }
    }
  };
  sock.onclose = (c) => {
    ws = null;
    if (stopped) return;
    if (c.code === 4001) { setState('down', 'session expired'); return; }
    retry = Math.min(retry + 1, 6);
    const wait = Math.min(30000, 500 * 2 ** retry);
    setState('down', `reconnecting in ${Math.round(wait / 1000)} s`);
    timer = setTimeout(open, wait);
  };
}

/** Reconnect now (the "retry" button of the connection banner). */
export function retryNow() {
  clearTimeout(timer);
  retry = 0;
  if (!ws) open();
}
