// The agent's presence selector (agent desktop): available / away with a reason /
// offline, set with PUT /users/{me}/presence. Shows the current state as the server
// reports it (GET): the stored choice and, when the router knows the agent, what they
// are doing now (ringing, on a call, wrap-up). Reloads on `agent.presence_changed`
// and polls (ringing / on call / wrap-up come from the router, not from events).

import { get, put, enc } from '../api.js';
import { h, mount, errorBox, badge } from '../dom.js';
import { onEvent } from '../events.js';

export const PRESENCE_POLL_MS = 3000;

/** The choices: value of the <select> -> PUT body. */
export const CHOICES = [
  ['available', 'Available', { status: 'available', reason: null }],
  ['away:break', 'Away — break', { status: 'away', reason: 'break' }],
  ['away:lunch', 'Away — lunch', { status: 'away', reason: 'lunch' }],
  ['away:training', 'Away — training', { status: 'away', reason: 'training' }],
  ['away:meeting', 'Away — meeting', { status: 'away', reason: 'meeting' }],
  ['away:admin', 'Away — after-call admin', { status: 'away', reason: 'admin' }],
  ['offline', 'Offline', { status: 'offline', reason: null }],
];

const ACTIVITY = { ringing: 'ringing', on_call: 'on a call', wrap_up: 'wrap-up', available: 'available', away: 'away', offline: 'offline' };

/** The <select> value of a stored presence (an unknown away reason keeps its own option). */
function choiceOf(p) {
  if (p.status === 'away') return 'away:' + (p.reason || '');
  return p.status;
}

export function mountPresence(section, { user }) {
  let current = null;
  let error = null;
  let busy = false;
  let stopped = false;
  const path = '/users/' + enc(user.id) + '/presence';

  async function load() {
    try {
      current = await get(path);
      error = null;
    } catch (e) {
      error = e;
    }
    render();
  }

  async function set(value) {
    const choice = CHOICES.find(([v]) => v === value);
    const body = choice ? choice[2] : { status: 'away', reason: value.slice(5) || null };
    busy = true;
    render();
    try {
      current = await put(path, body);
      error = null;
    } catch (e) {
      error = e;
    } finally {
      busy = false;
    }
    render();
  }

  function render() {
    if (stopped) return;
    const value = current ? choiceOf(current) : '';
    const options = CHOICES.map(([v, l]) => h('option', { value: v }, l));
    if (value && !CHOICES.some(([v]) => v === value)) options.splice(options.length - 1, 0, h('option', { value }, 'Away — ' + value.slice(5)));
    const sel = h('select', { name: 'presence', 'aria-label': 'My presence', disabled: busy || !current || null, onchange: (e) => set(e.target.value) }, options);
    sel.value = value;
    // What the router says the agent is doing overrides the stored choice on screen.
    const live = current && current.activity && current.activity !== current.status ? current.activity : null;
    const state = current ? (live || current.status) : null;
    const kind = state === 'available' ? 'ok' : state === 'offline' ? '' : state === 'away' ? 'pending_customer' : 'late';
    mount(section,
      h('div', { class: 'presence-row' },
        h('span', { class: 'presence-dot ' + (state || 'unknown'), 'aria-hidden': 'true' }),
        sel,
        h('span', { class: 'presence-state', dataset: { state: state || '' }, 'aria-live': 'polite' },
          state ? badge(ACTIVITY[state] || state.replace(/_/g, ' '), kind) : h('span', { class: 'muted' }, 'loading…'),
          current && current.status === 'away' && current.reason ? h('span', { class: 'muted small' }, ' (' + current.reason + ')') : null)),
      error ? errorBox(error) : null);
  }

  const off = onEvent((ev) => {
    if (ev.type === 'connected' || (ev.type === 'agent.presence_changed' && ev.data && ev.data.user_id === user.id)) load();
  });
  const poll = setInterval(() => { if (!busy) load(); }, PRESENCE_POLL_MS);
  render();
  load();
  return () => { stopped = true; off(); clearInterval(poll); };
}
