// Work offered to me in the inbox (issues 15 and 17): a chat, email or message the
// router offers rings here with Accept and Decline. Accepting assigns the conversation
// to me and opens it; declining sends it back to the queue for the next agent (the
// router records who declined); an offer nobody answers times out on the server and
// moves on (`work_item.revoked`), and leaves this box. Calls ring the softphone, not
// here.
//
// `mountOffers({ onAccepted })` returns `{ el, handle(event), reload(), dispose() }`:
// the page puts `el` where it wants it and passes every event to `handle`.

import { get, post, qs, enc } from '../api.js';
import { h, mount, toast, errorBox } from '../dom.js';

const KIND = { chat: 'Chat', email: 'Email', message: 'Message', task: 'Task' };
const GONE = new Set(['work_item.assigned', 'work_item.revoked', 'work_item.expired', 'work_item.completed']);

export function mountOffers({ me, onAccepted }) {
  const offers = new Map(); // id -> { item, since }
  const box = h('ul', { class: 'offers list' });
  const out = h('div');
  const el = h('section', { id: 'offers', class: 'card offers-card', role: 'region', 'aria-label': 'Offered to you', 'aria-live': 'assertive', hidden: true },
    h('h2', {}, 'Offered to you'), box, out);

  function draw() {
    el.hidden = offers.size === 0;
    const now = Date.now();
    mount(box, [...offers.values()].map(({ item, since }) => {
      const secs = Math.max(0, Math.round((now - since) / 1000));
      const accept = h('button', { type: 'button', class: 'primary small', dataset: { action: 'accept' } }, 'Accept');
      const decline = h('button', { type: 'button', class: 'small', dataset: { action: 'decline' } }, 'Decline');
      accept.addEventListener('click', () => act(item, 'accept', accept));
      decline.addEventListener('click', () => act(item, 'decline', decline));
      return h('li', { class: 'offer', dataset: { id: item.id, kind: item.kind } },
        h('strong', {}, `${KIND[item.kind] || item.kind} offered`), ' ',
        h('span', { class: 'offer-title' }, item.title || ''), ' ',
        h('span', { class: 'muted small' }, `ringing ${secs} s`), ' ',
        accept, decline);
    }));
  }

  async function act(item, action, btn) {
    btn.disabled = true;
    try {
      await post('/work-items/' + enc(item.id) + '/' + action, {});
      offers.delete(item.id);
      toast(action === 'accept' ? 'Accepted' : 'Declined: offered to someone else');
      draw();
      if (action === 'accept' && onAccepted) onAccepted(item);
    } catch (e) {
      // Timed out and moved on meanwhile (409): it is no longer mine.
      offers.delete(item.id);
      draw();
      mount(out, errorBox(e));
      setTimeout(() => mount(out), 4000);
    }
  }

  async function reload() {
    try {
      const items = await get('/work-items' + qs({ mine: 1, state: 'offered' }));
      offers.clear();
      for (const item of items) if (item.agent_id === me.id && item.kind !== 'call') offers.set(item.id, { item, since: Date.now() });
      draw();
    } catch { /* the list still works without offers */ }
  }

  function handle(ev) {
    const d = ev.data || {};
    if (ev.type === 'work_item.offered' && d.agent_id === me.id) {
      if (!offers.has(d.id)) offers.set(d.id, { item: d, since: Date.now() });
      draw();
    } else if (GONE.has(ev.type) && offers.delete(d.id)) {
      draw();
    }
  }

  const tick = setInterval(() => { if (offers.size) draw(); }, 1000);
  return { el, handle, reload, dispose: () => clearInterval(tick) };
}
