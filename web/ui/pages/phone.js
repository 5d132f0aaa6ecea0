// The agent desktop's phone panel: mounts the WebRTC softphone (`../softphone.js`) into
// `<section id="softphone">`. The browser becomes one of the agent's devices: calls to the
// agent ring here and on their SIP phones, first answer wins. The panel shows the
// connection state, an incoming call with Answer / Decline, a dial box (an extension,
// `+number` through the tenant's trunk, or `*43` for the echo test), and the call in
// progress: its live state (dialling, talking, on hold, transferring), Hold, Mute, a
// keypad (RFC 4733 DTMF, relayed to the other party) and Hang up.
//
// With the call bar (callbar.js): every browser call except the echo test is a live
// call of /api/v1/calls, whose id the server gives with the call. Hold and Mute here are
// that call's controls (so the panel and the bar always show the same state); the bar
// (above the desk) has the transfers (blind, consult / complete / cancel) and marks the
// call as "in this browser". The bar polls the calls; the panel asks it to refresh on
// every call event and follows what it fetched.

import { session, post, enc } from '../api.js';
import { h, mount } from '../dom.js';
import { Softphone } from '../softphone.js';

const STATE_LABEL = {
  ringing: 'Ringing', dialing: 'Dialling', talking: 'Talking', held: 'On hold',
  transferring: 'Transferring', ending: 'Ending', ivr: 'Connecting',
};

export function mountSoftphone(section, { user, onCall, bar = null }) {
  const phone = new Softphone();
  const state = { status: 'connecting', ext: null, incoming: null, call: null, muted: false, error: null, live: null, busy: false, dial: '' };
  let closed = false;
  let retry = null;
  let delay = 3000;
  const unsubscribe = bar ? bar.subscribe(onCalls) : () => {};

  // The call bar fetched the agent's calls: follow ours.
  function onCalls(calls) {
    const id = state.call && (state.call.live || phone.liveCallId(state.call.id));
    if (state.call && id) state.call.live = id;
    const live = id ? calls.find((c) => c.id === id) || null : null;
    const before = JSON.stringify(state.live);
    state.live = live;
    if (JSON.stringify(live) !== before) render();
  }

  function linkBar() {
    if (!bar) return;
    const id = state.call && (state.call.live || phone.liveCallId(state.call.id));
    bar.setBrowserCalls(id ? [id] : []);
    bar.refresh();
  }

  // A control of the live call (POST /calls/{id}/actions), as the call bar sends it.
  async function control(action) {
    const id = state.live && state.live.id;
    if (!id || state.busy) return;
    state.busy = true;
    state.error = null;
    try {
      await post('/calls/' + enc(id) + '/actions', { action });
    } catch (e) {
      state.error = e.message;
    } finally {
      state.busy = false;
    }
    if (bar) await bar.refresh();
    render();
  }

  function callView() {
    const c = state.call;
    const live = state.live;
    const up = live && ['talking', 'held', 'transferring'].includes(live.state);
    const label = live ? (STATE_LABEL[live.state] || live.state) : (c.answered ? 'On call' : 'Connecting…');
    const held = !!(live && live.held);
    const muted = live ? !!live.muted : state.muted;
    const mute = () => {
      if (live) { control(muted ? 'unmute' : 'mute'); return; }
      // The echo test has no live call: the microphone itself.
      state.muted = !state.muted; phone.mute(state.muted); render();
    };
    return h('div', { class: 'oncall', dataset: { callState: live ? live.state : (c.answered ? 'connected' : 'connecting') } },
      h('p', { class: 'call-status', 'aria-live': 'polite' }, h('strong', {}, label), c.from ? ' · ' + c.from : '',
        muted ? [' ', h('span', { class: 'badge late' }, 'muted')] : null),
      live ? h('button', { type: 'button', 'data-action': held ? 'unhold' : 'hold', 'aria-pressed': String(held), disabled: !up || state.busy || null, onclick: () => control(held ? 'unhold' : 'hold') }, held ? 'Unhold' : 'Hold') : null,
      ' ',
      h('button', { type: 'button', 'data-action': muted ? 'unmute' : 'mute', 'aria-pressed': String(muted), disabled: (live && !up) || state.busy || null, onclick: mute }, muted ? 'Unmute' : 'Mute'),
      ' ',
      h('button', { type: 'button', class: 'danger', 'data-action': 'hangup', onclick: () => { phone.hangup(c.id); state.call = null; state.live = null; linkBar(); render(); } }, 'Hang up'),
      h('div', { class: 'keypad', 'aria-label': 'Keypad' },
        ...'123456789*0#'.split('').map((d) => h('button', { type: 'button', 'data-digit': d, onclick: () => phone.dtmf(d, c.id) }, d))),
      live ? h('p', { class: 'small muted' }, 'Transfers: in the call bar above.') : null);
  }

  function render() {
    const head = h('h2', {}, 'Phone ', h('span', { class: 'badge ' + (state.status === 'ready' ? 'ok' : 'warn'), 'data-phone-status': state.status },
      state.status === 'ready' ? 'ready' + (state.ext ? ' · ' + state.ext : '') : state.status));
    const parts = [head];
    if (state.error) parts.push(h('p', { class: 'error', role: 'alert' }, state.error));
    if (state.incoming && !state.call) {
      parts.push(h('div', { class: 'incoming', role: 'alert' },
        h('p', {}, 'Incoming call from ', h('strong', {}, state.incoming.from || 'unknown')),
        h('button', { type: 'button', class: 'primary', 'data-action': 'answer', onclick: answer }, 'Answer'),
        ' ',
        h('button', { type: 'button', 'data-action': 'decline', onclick: () => { phone.hangup(state.incoming.call_id); state.incoming = null; render(); } }, 'Decline')));
    }
    if (state.call) {
      parts.push(callView());
    } else if (state.status === 'ready') {
      const input = h('input', { name: 'dial', value: state.dial, placeholder: 'Extension, +number or *43', 'aria-label': 'Number to dial', autocomplete: 'off', oninput: () => { state.dial = input.value; } });
      parts.push(h('form', { class: 'dial', onsubmit: async (e) => {
        e.preventDefault();
        const number = input.value.trim();
        if (!number) { input.focus(); return; }
        state.error = null;
        try {
          const id = await phone.dial(number);
          state.call = { id, from: number, answered: false, live: phone.liveCallId(id) };
          state.dial = '';
          linkBar();
        } catch (err) {
          state.error = 'Cannot call: ' + err.message;
        }
        render();
      } }, input, ' ', h('button', { type: 'submit', 'data-action': 'dial' }, 'Call')));
    }
    mount(section, ...parts);
  }

  async function answer() {
    const inc = state.incoming;
    if (!inc) return;
    state.incoming = null;
    state.call = { id: inc.call_id, from: inc.from, answered: false, live: inc.live_call_id || null };
    render();
    try {
      await phone.answer(inc.call_id);
      linkBar();
    } catch (err) {
      state.call = null;
      state.error = 'Cannot answer: ' + err.message + ' (is a microphone allowed?)';
      render();
    }
  }

  phone.addEventListener('ready', (e) => { delay = 3000; state.status = 'ready'; state.ext = e.detail.extension; state.error = null; render(); });
  phone.addEventListener('incoming', (e) => {
    state.incoming = e.detail;
    render();
    if (onCall) onCall({ call_id: e.detail.call_id, caller: e.detail.from });
  });
  phone.addEventListener('answered', (e) => { if (state.call && state.call.id === e.detail.call_id) { state.call.answered = true; render(); linkBar(); } });
  // Why a call ended when the far end refused it (the server's RFC 3326 Reason).
  const ENDED = { busy: 'the line is busy', no_answer: 'no answer', declined: 'the call was declined', rejected: 'the call could not be connected' };
  phone.addEventListener('hungup', (e) => {
    if (state.call && state.call.id === e.detail.call_id) {
      if (ENDED[e.detail.cause]) state.error = 'Call ended: ' + ENDED[e.detail.cause];
      state.call = null; state.live = null; linkBar();
    }
    if (state.incoming && state.incoming.call_id === e.detail.call_id) state.incoming = null;
    state.muted = false;
    render();
  });
  phone.addEventListener('error', (e) => { state.error = e.detail && e.detail.message; render(); });
  phone.addEventListener('closed', () => {
    state.call = null; state.incoming = null; state.live = null;
    if (closed) return;
    state.status = 'disconnected';
    render();
    retry = setTimeout(connect, delay);
    delay = Math.min(delay * 2, 30000);
  });

  function connect() {
    if (closed) return;
    state.status = 'connecting';
    render();
    phone.connect(session.token).catch((err) => {
      state.status = 'disconnected';
      state.error = user && !user.extension ? null : err.message;
      render();
    });
  }
  connect();

  return () => { closed = true; unsubscribe(); clearTimeout(retry); phone.close(); section.replaceChildren(); };
}
