// The softphone seam. The agent desktop has a `<section id="softphone">`; this module
// mounts whatever softphone is available into it. The WebRTC softphone (branch `webrtc`)
// replaces `mountSoftphone` with the real one (its own module, imported here), keeping
// this signature: `mountSoftphone(section, { user, onCall })` where `onCall(info)` is
// called with `{ customer_id?, caller?, call_id? }` when a call arrives so the desktop
// can pop the customer's screen. It returns a function that unmounts it.

import { h, mount } from './dom.js';

export function mountSoftphone(section, _ctx) {
  mount(section,
    h('h2', {}, 'Phone'),
    h('p', { class: 'muted' }, 'The browser softphone is not part of this build yet. Calls ring your SIP phone (your extension is on your profile).'));
  return () => section.replaceChildren();
}
