// The agent desktop's phone panel: mounts the WebRTC softphone (`../softphone.js`) into
// `<section id="softphone">`. The browser becomes one of the agent's devices: calls to the
// agent ring here and on their SIP phones, first answer wins. The panel shows the
// connection state, an incoming call with Answer / Decline, the call in progress with
// Mute, a keypad (RFC 4733 DTMF) and Hang up, and a dial box (today: `*43`, the echo test).
// Live-call controls (hold, transfers, …) stay in the call bar (callbar.js), which works
// for every device.

import { session } from '../api.js';
import { h, mount } from '../dom.js';
import { Softphone } from '../softphone.js';

export function mountSoftphone(section, { user, onCall }) {
  const phone = new Softphone();
  const state = { status: 'connecting', ext: null, incoming: null, call: null, muted: false, error: null };
  let closed = false;
  let retry = null;
  let delay = 3000;

  function render() {
    const head = h('h2', {}, 'Phone ', h('span', { class: 'badge ' + (state.status === 'ready' ? 'ok' : 'warn'), 'data-phone-status': state.status },
      state.status === 'ready' ? 'ready' + (state.ext ? ' · ' + state.ext : '') : state.status));
    const parts = [head];
    if (state.error) parts.push(h('p', { class: 'error', role: 'alert' }, state.error));
    if (state.incoming && !state.call) {
      parts.push(h('div', { class: 'incoming', role: 'alert' },
        h('p', {}, 'Incoming call from ', h('strong', {}, state.incoming.from || 'unknown')),
        h('button', { class: 'primary', 'data-action': 'answer', onclick: answer }, 'Answer'),
        ' ',
        h('button', { 'data-action': 'decline', onclick: () => { phone.hangup(state.incoming.call_id); state.incoming = null; render(); } }, 'Decline')));
    }
    if (state.call) {
      parts.push(h('div', { class: 'oncall' },
        h('p', {}, state.call.answered ? 'On call' : 'Connecting…', state.call.from ? ' with ' + state.call.from : ''),
        h('button', { 'data-action': 'mute', 'aria-pressed': String(state.muted), onclick: () => { state.muted = !state.muted; phone.mute(state.muted); render(); } }, state.muted ? 'Unmute' : 'Mute'),
        ' ',
        h('button', { class: 'danger', 'data-action': 'hangup', onclick: () => { phone.hangup(state.call.id); state.call = null; render(); } }, 'Hang up'),
        h('div', { class: 'keypad', 'aria-label': 'Keypad' },
          ...'123456789*0#'.split('').map((d) => h('button', { 'data-digit': d, onclick: () => phone.dtmf(d, state.call && state.call.id) }, d)))));
    } else if (state.status === 'ready') {
      const input = h('input', { name: 'dial', placeholder: '*43 (echo test)', 'aria-label': 'Number to dial', value: '*43' });
      parts.push(h('form', { class: 'dial', onsubmit: async (e) => {
        e.preventDefault();
        state.error = null;
        try {
          const id = await phone.dial(input.value.trim());
          state.call = { id, from: input.value.trim(), answered: false };
        } catch (err) {
          state.error = 'Cannot call: ' + err.message;
        }
        render();
      } }, input, ' ', h('button', { type: 'submit' }, 'Call')));
    }
    mount(section, ...parts);
  }

  async function answer() {
    const inc = state.incoming;
    if (!inc) return;
    state.incoming = null;
    state.call = { id: inc.call_id, from: inc.from, answered: false };
    render();
    try {
      await phone.answer(inc.call_id);
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
  phone.addEventListener('answered', (e) => { if (state.call && state.call.id === e.detail.call_id) { state.call.answered = true; render(); } });
  phone.addEventListener('hungup', (e) => {
    if (state.call && state.call.id === e.detail.call_id) state.call = null;
    if (state.incoming && state.incoming.call_id === e.detail.call_id) state.incoming = null;
    state.muted = false;
    render();
  });
  phone.addEventListener('error', (e) => { state.error = e.detail && e.detail.message; render(); });
  phone.addEventListener('closed', () => {
    state.call = null; state.incoming = null;
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

  return () => { closed = true; clearTimeout(retry); phone.close(); section.replaceChildren(); };
}
