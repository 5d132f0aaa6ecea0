// The softphone seam. The agent desktop has a `<section id="softphone">`; this module
// mounts whatever softphone is available into it. The WebRTC softphone (branch `webrtc`)
// replaces `mountSoftphone` with the real one (its own module, imported here), keeping
// this signature: `mountSoftphone(section, { user, onCall })` where `onCall(info)` is
// called with `{ customer_id?, caller?, call_id? }` when a call arrives so the desktop
// can pop the customer's screen. It returns a function that unmounts it.

import { get, enc } from './api.js';
import { h, mount } from './dom.js';

export function mountSoftphone(section, { user }) {
  const ext = h('span', {}, '…');
  mount(section,
    h('h2', {}, 'Phone'),
    h('p', { class: 'muted' }, 'The browser softphone is not part of this build yet. Calls ring your SIP phone: extension ', ext, '.'));
  get('/users/' + enc(user.id) + '/sip')
    .then((s) => { ext.textContent = s.extension || 'none (ask an admin)'; })
    .catch(() => { ext.textContent = 'unknown'; });
  return () => section.replaceChildren();
}
