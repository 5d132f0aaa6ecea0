// Email conversations in the inbox (issue #18): the Cc/Bcc fields of the reply box and
// the mail thread panel (every mail with its headers; the timeline shows the folded
// text, "Show original" unfolds the full text with its quoted history, and the raw
// .eml is the message's `original.eml` attachment). Kept out of inbox.js, which only
// mounts these.

import { get, enc } from '../api.js';
import { h, mount, fmtTime } from '../dom.js';

/** Addresses typed into a field: split on commas, semicolons and spaces. */
export function addresses(s) {
  return s.split(/[\s,;]+/).map((a) => a.trim()).filter(Boolean);
}

/** The Cc/Bcc row of the reply box; `show(bool)` for email conversations only. */
export function copyFields() {
  const cc = h('input', { id: 'reply-cc', type: 'text', placeholder: 'Cc', 'aria-label': 'Cc', autocomplete: 'off' });
  const bcc = h('input', { id: 'reply-bcc', type: 'text', placeholder: 'Bcc', 'aria-label': 'Bcc', autocomplete: 'off' });
  const row = h('div', { class: 'row email-copies', hidden: true }, cc, bcc);
  return {
    row,
    show(on) { row.hidden = !on; },
    /** The copies to send with a reply (empty when hidden). */
    values() {
      if (row.hidden) return {};
      const out = {};
      const c = addresses(cc.value);
      const b = addresses(bcc.value);
      if (c.length) out.cc = c;
      if (b.length) out.bcc = b;
      return out;
    },
    clear() { cc.value = ''; bcc.value = ''; },
  };
}

function list(json) {
  try { return JSON.parse(json || '[]').join(', '); } catch { return ''; }
}

function mailItem(m) {
  const head = h('dl', { class: 'mail-head small' },
    h('dt', {}, 'From'), h('dd', {}, m.from_addr || ''),
    h('dt', {}, 'To'), h('dd', {}, list(m.to_addrs)),
    list(m.cc_addrs) ? [h('dt', {}, 'Cc'), h('dd', {}, list(m.cc_addrs))] : null,
    list(m.bcc_addrs) ? [h('dt', {}, 'Bcc'), h('dd', {}, list(m.bcc_addrs))] : null,
    h('dt', {}, 'Subject'), h('dd', {}, m.subject || ''),
    h('dt', {}, 'Message-ID'), h('dd', {}, m.header_message_id));
  return h('li', { class: 'mail ' + m.direction, dataset: { id: m.message_id } },
    h('div', { class: 'row' },
      h('strong', {}, m.direction === 'inbound' ? 'Received' : 'Sent'),
      h('time', { class: 'muted small' }, fmtTime(new Date(m.created_at).toISOString())),
      m.auto_kind ? h('span', { class: 'badge' }, m.auto_kind.replace('_', ' ')) : null,
      m.malformed ? h('span', { class: 'badge late' }, 'malformed (stored raw)') : null),
    head,
    h('details', { class: 'mail-original' },
      h('summary', {}, 'Show original'),
      h('pre', { class: 'mail-text' }, m.full_text || '')));
}

/** A button that shows the mail thread of conversation `id` in `panel`. */
export function mailThreadButton(id, panel) {
  const btn = h('button', { type: 'button', id: 'mail-thread', 'aria-expanded': String(!panel.hidden) }, 'Mail thread');
  btn.addEventListener('click', async () => {
    const open = btn.getAttribute('aria-expanded') === 'true';
    btn.setAttribute('aria-expanded', String(!open));
    if (open) { mount(panel); panel.hidden = true; return; }
    panel.hidden = false;
    mount(panel, h('p', { class: 'muted' }, 'Loading…'));
    try {
      const mails = await get('/conversations/' + enc(id) + '/email');
      mount(panel, mails.length ? h('ol', { class: 'mail-thread' }, mails.map(mailItem)) : h('p', { class: 'muted' }, 'No mail yet.'));
    } catch (e) {
      mount(panel, h('p', { class: 'late' }, String(e.message || e)));
    }
  });
  return btn;
}
