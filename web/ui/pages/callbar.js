// The agent's call bar: the live call(s) the agent is on (GET /calls, which for an
// agent lists only their own calls) with the controls of docs/calls.md — hold, mute,
// pause/resume recording and transcription while the caller reads a card number (PCI),
// blind transfer, warm transfer (consult, then complete or cancel), add a party, hang
// up, disposition code. Calls are not published on the events WebSocket, so the bar
// polls the in-memory call registry every POLL_MS (and right after every action).
//
// Keyboard (when not typing in a field): h hold/unhold, m mute/unmute, p pause/resume
// recording, t the transfer
// target, d the disposition code. Every control is a real button, reachable with Tab.
//
// `mountCallBar(section, { user, onCall })` returns `{ stop, refresh, calls, subscribe,
// setBrowserCalls }`; `onCall(call)` is called once per new call so the desktop can open
// the caller's screen. The phone panel (phone.js) subscribes to every fetch of the calls
// and names the calls it carries (`setBrowserCalls`), which the bar marks "in this
// browser".

import { get, post, enc } from '../api.js';
import { h, mount, errorBox, badge, toast } from '../dom.js';

export const POLL_MS = 2000;

/** `mm:ss` (or `h:mm:ss`) from seconds. */
export function clock(s) {
  s = Math.max(0, Math.floor(s || 0));
  const hh = Math.floor(s / 3600);
  const mm = Math.floor((s % 3600) / 60);
  const ss = String(s % 60).padStart(2, '0');
  return hh ? `${hh}:${String(mm).padStart(2, '0')}:${ss}` : `${mm}:${ss}`;
}

/** A transfer / consult / conference target from what was typed: `+…` or 7+ digits is a
 * number dialled through the trunk, anything shorter an extension. */
export function target(text) {
  const t = text.trim();
  if (!t) return null;
  const digits = t.replace(/[\s().-]/g, '');
  if (digits.startsWith('+') || digits.length >= 7) return { number: digits };
  return { extension: digits };
}

const STATE_LABEL = {
  ivr: 'in the IVR', ringing: 'ringing', dialing: 'dialling the customer', talking: 'talking',
  held: 'on hold', transferring: 'transferring', ending: 'ending',
};

// Calls already announced to `onCall`, across re-renders of the desktop (opening another
// customer's screen during a call must not pop the caller's screen again).
const seen = new Set();

export function mountCallBar(section, { user, onCall }) {
  section.hidden = true;
  let calls = [];
  let fetchedAt = Date.now();
  let stopped = false;
  let busy = false;
  // Values typed in the bar survive the re-renders of each poll.
  const typed = { target: '', code: '' };
  const listeners = new Set();
  let browserCalls = new Set();
  const out = h('div', { class: 'callbar-out', 'aria-live': 'assertive' });

  async function refresh() {
    try {
      const all = await get('/calls');
      calls = all.filter((c) => c.state !== 'ending');
      fetchedAt = Date.now();
      for (const fn of listeners) fn(calls);
      for (const c of calls) {
        if (!seen.has(c.id)) { seen.add(c.id); if (onCall) onCall(c); }
      }
      render();
    } catch (e) {
      if (!stopped) { mount(out, errorBox(e)); section.hidden = false; }
    }
  }

  async function action(call, body, btn, done) {
    if (busy) return;
    busy = true;
    if (btn) btn.disabled = true;
    out.replaceChildren();
    try {
      await post('/calls/' + enc(call.id) + '/actions', body);
      if (done) done();
    } catch (e) {
      out.append(errorBox(e));
    } finally {
      busy = false;
      if (btn) btn.disabled = false;
    }
    await refresh();
  }

  function leg(c, role) { return c.legs.find((l) => l.role === role); }

  function render() {
    if (stopped) return;
    const focused = document.activeElement && section.contains(document.activeElement) ? document.activeElement.dataset.focus : null;
    if (!calls.length) {
      section.hidden = !out.childNodes.length;
      mount(section, out);
      return;
    }
    section.hidden = false;
    mount(section, calls.map(bar), out);
    if (focused) {
      const again = section.querySelector(`[data-focus="${focused}"]`);
      if (again) again.focus();
    }
  }

  function bar(c) {
    const consult = leg(c, 'consult');
    const transferring = leg(c, 'transfer');
    const up = c.state === 'talking' || c.state === 'held' || c.state === 'transferring';
    const btn = (label, key, body, opts = {}) => {
      const b = h('button', {
        type: 'button', class: opts.cls || null, 'data-action': key, 'data-focus': opts.focus || key,
        'aria-keyshortcuts': opts.kbd || null, title: opts.kbd ? `${label} (${opts.kbd})` : label,
        'aria-pressed': opts.pressed === undefined ? null : String(opts.pressed),
        disabled: opts.disabled || null,
      }, label);
      b.addEventListener('click', () => action(c, body(), b, opts.done));
      return b;
    };
    const tgt = h('input', {
      type: 'text', name: 'target', value: typed.target, 'data-focus': 'target', autocomplete: 'off',
      placeholder: 'Extension or +number  ( t )', 'aria-label': 'Transfer or conference target', 'aria-keyshortcuts': 't',
    });
    tgt.addEventListener('input', () => { typed.target = tgt.value; });
    const withTarget = (act, label, key, cls) => {
      const b = h('button', { type: 'button', 'data-action': key, 'data-focus': key, class: cls || null, disabled: !up || null }, label);
      b.addEventListener('click', () => {
        const t = target(tgt.value);
        if (!t) { out.replaceChildren(errorBox(new Error('Type an extension (e.g. 1002) or a number (+4930…) first.'))); tgt.focus(); return; }
        action(c, { action: act, target: t }, b, () => { typed.target = ''; toast(`${label}: ${tgt.value.trim()}`); });
      });
      return b;
    };
    const code = h('input', {
      type: 'text', name: 'code', value: typed.code, maxlength: 64, 'data-focus': 'code', autocomplete: 'off',
      placeholder: c.disposition ? `Disposition: ${c.disposition}` : 'Disposition code  ( d )', 'aria-label': 'Disposition code', 'aria-keyshortcuts': 'd',
    });
    code.addEventListener('input', () => { typed.code = code.value; });
    const codeBtn = h('button', { type: 'submit', 'data-action': 'disposition', 'data-focus': 'disposition' }, 'Set');
    const codeForm = h('form', { class: 'inline' }, code, codeBtn);
    codeForm.addEventListener('submit', (e) => {
      e.preventDefault();
      if (!code.value.trim()) { code.focus(); return; }
      action(c, { action: 'disposition', code: code.value.trim() }, codeBtn, () => { typed.code = ''; toast('Disposition saved'); });
    });
    tgt.addEventListener('keydown', (e) => {
      if (e.key === 'Enter') { e.preventDefault(); section.querySelector(`[data-action=${consult ? 'add_party' : 'consult'}]`)?.click(); }
    });

    const since = Math.round((Date.now() - fetchedAt) / 1000);
    const talk = c.talk_s === null || c.talk_s === undefined ? null : c.talk_s + since;
    const others = c.legs.filter((l) => !['caller', 'customer'].includes(l.role) && l.user_id !== user.id);
    return h('div', { class: 'callbar state-' + c.state, dataset: { callId: c.id, state: c.state }, role: 'region', 'aria-label': 'Current call' },
      h('div', { class: 'callbar-head' },
        h('span', { class: 'dot', 'aria-hidden': 'true' }),
        h('strong', { class: 'who' }, c.customer_number || 'unknown caller'),
        ' ', badge(STATE_LABEL[c.state] || c.state, 'call-state'),
        c.held ? badge('held', 'late') : null,
        c.muted ? badge('muted', 'late') : null,
        c.recording_paused ? badge('recording paused', 'late') : null,
        browserCalls.has(c.id) ? badge('in this browser', 'browser') : null,
        h('span', { class: 'timer', title: 'Talk time', dataset: { base: String(talk === null ? c.duration_s + since : talk), at: String(Date.now()) } }, clock(talk === null ? c.duration_s + since : talk)),
        c.disposition ? h('span', { class: 'muted small disposition' }, ' · ', c.disposition) : null),
      others.length ? h('div', { class: 'meta parties' }, others.map((l) => h('span', { class: 'chip' }, h('small', {}, l.role), ' ', l.address, l.state === 'ringing' ? ' (ringing)' : ''))) : null,
      h('div', { class: 'row controls' },
        c.held ? btn('Unhold', 'unhold', () => ({ action: 'unhold' }), { focus: 'hold', kbd: 'h', pressed: true, disabled: !up })
          : btn('Hold', 'hold', () => ({ action: 'hold' }), { kbd: 'h', pressed: false, disabled: !up }),
        c.muted ? btn('Unmute', 'unmute', () => ({ action: 'unmute' }), { focus: 'mute', kbd: 'm', pressed: true, disabled: !up })
          : btn('Mute', 'mute', () => ({ action: 'mute' }), { kbd: 'm', pressed: false, disabled: !up }),
        c.recording_paused
          ? btn('Resume recording', 'resume_recording', () => ({ action: 'resume_recording' }), { focus: 'pause_recording', kbd: 'p', pressed: true })
          : btn('Pause recording', 'pause_recording', () => ({ action: 'pause_recording' }), { kbd: 'p', pressed: false }),
        btn('Hang up', 'hangup', () => ({ action: 'hangup' }), { cls: 'danger' })),
      h('div', { class: 'row controls' }, consult ? null : tgt,
        consult
          ? [btn('Complete transfer', 'complete_transfer', () => ({ action: 'complete_transfer' }), { cls: 'primary', disabled: consult.state !== 'up' }),
            btn('Cancel', 'cancel_consult', () => ({ action: 'cancel_consult' }))]
          : [withTarget('transfer', 'Transfer', 'transfer'), withTarget('consult', 'Consult', 'consult'), withTarget('add_party', 'Add party', 'add_party')]),
      consult ? h('p', { class: 'small muted' }, `Consulting ${consult.address}${consult.state === 'ringing' ? ' (ringing…)' : ''}: the caller is on hold. Complete to hand over, or cancel.`) : null,
      transferring ? h('p', { class: 'small muted' }, `Transferring to ${transferring.address}…`) : null,
      codeForm);
  }

  // The talk timer ticks between polls.
  const tick = setInterval(() => {
    for (const t of section.querySelectorAll('.timer')) {
      t.textContent = clock(Number(t.dataset.base) + (Date.now() - Number(t.dataset.at)) / 1000);
    }
  }, 1000);
  const poll = setInterval(refresh, POLL_MS);

  const onKey = (e) => {
    const typing = /^(INPUT|TEXTAREA|SELECT)$/.test(document.activeElement && document.activeElement.tagName);
    if (typing || e.ctrlKey || e.metaKey || e.altKey || section.hidden) return;
    const click = (sel) => { const b = section.querySelector(sel); if (b && !b.disabled) { e.preventDefault(); b.click(); } };
    if (e.key === 'h') click('[data-action=hold], [data-action=unhold]');
    if (e.key === 'm') click('[data-action=mute], [data-action=unmute]');
    if (e.key === 'p') click('[data-action=pause_recording], [data-action=resume_recording]');
    if (e.key === 't') { const i = section.querySelector('input[name=target]'); if (i) { e.preventDefault(); i.focus(); } }
    if (e.key === 'd') { const i = section.querySelector('input[name=code]'); if (i) { e.preventDefault(); i.focus(); } }
  };
  document.addEventListener('keydown', onKey);

  refresh();
  return {
    refresh,
    /** The calls the bar shows now (the agent's own). */
    calls: () => calls,
    /** `fn(calls)` after every fetch; returns the way to unsubscribe. */
    subscribe(fn) { listeners.add(fn); return () => listeners.delete(fn); },
    /** The live calls the browser softphone carries (marked in the bar). */
    setBrowserCalls(ids) { browserCalls = new Set(ids); render(); },
    stop() {
      stopped = true;
      clearInterval(tick);
      clearInterval(poll);
      document.removeEventListener('keydown', onKey);
      section.replaceChildren();
    },
  };
}

/** Click-to-call: rings the agent's own phone, then dials `number` (docs/calls.md). */
export async function clickToCall(number) {
  return post('/calls', { number });
}
