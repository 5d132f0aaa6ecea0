// The bare softphone test page's script (an ES module: the page's CSP allows no inline
// scripts). Driven by tests/browser/softphone.spec.mjs.
import { Softphone } from '/softphone.js';
const log = (t) => { const li = document.createElement('li'); li.textContent = t; document.getElementById('log').append(li); };
const phone = new Softphone();
for (const t of ['ready', 'incoming', 'dialing', 'ringing', 'answered', 'hungup', 'dtmf', 'error', 'closed']) {
  phone.addEventListener(t, (e) => { log(`${t} ${JSON.stringify(e.detail)}`); document.getElementById('status').value = t; });
}
window.phone = phone; // driven by tests/browser/softphone.spec.mjs
