// Admin: users (role, active, extension, SIP password, skills, password reset), teams,
// skills, capacity per channel, queues (strategy, required skills, timers, callback key, overflow,
// auto-assign, sticky window, overflow channel), trunks and numbers, business hours, speech settings (the AI toggle, consent,
// alert phrases), canned responses (the inbox's reply templates), the knowledge base
// (articles with versions, draft/published, and the web-chat bot's switch), automation
// rules (pages/rules.js). One tab per area at /admin/<tab>.

import { get, post, put, patch, del, enc, session } from '../api.js';
import { h, mount, act, field, values, table, badge, toast, fmtTime } from '../dom.js';
import { rules } from './rules.js';

const TABS = [
  ['users', 'Users'],
  ['teams', 'Teams'],
  ['skills', 'Skills'],
  ['queues', 'Queues'],
  ['telephony', 'Trunks & numbers'],
  ['hours', 'Business hours'],
  ['speech', 'Speech & AI'],
  ['canned', 'Canned responses'],
  ['kb', 'Knowledge base'],
  ['rules', 'Automation'],
];

export async function render(main, params, { navigate }) {
  const tab = params.tab || 'users';
  if (!TABS.some(([t]) => t === tab)) { navigate('/admin/users', { replace: true }); return; }
  const body = h('div', { id: 'admin-' + tab });
  mount(main,
    h('h1', {}, 'Admin'),
    h('nav', { class: 'tabs', 'aria-label': 'Admin sections' }, TABS.map(([t, l]) =>
      h('a', { href: '/admin/' + t, 'data-link': '', 'aria-current': t === tab ? 'page' : null }, l))),
    body);
  await ({ users, teams, skills, queues, telephony, hours, speech, canned, kb, rules })[tab](body);
}

const opt = (v) => (v === '' ? null : v);

// --- users
async function users(el) {
  const [list, skillList, regs] = await Promise.all([get('/users'), get('/skills'), get('/sip/registrations').catch(() => [])]);
  const sip = await Promise.all(list.map((u) => get('/users/' + enc(u.id) + '/sip').catch(() => null)));
  const devicesOf = (s) => (s && s.extension ? regs.filter((r) => r.extension === s.extension) : []);
  const out = h('div');
  const btn = h('button', { type: 'submit', class: 'primary' }, 'Create user');
  const form = h('form', { id: 'new-user', class: 'inline-form' },
    field('Name', h('input', { name: 'name', required: true })),
    field('Email', h('input', { name: 'email', type: 'email', required: true })),
    field('Role', h('select', { name: 'role' }, ['agent', 'supervisor', 'admin'].map((r) => h('option', { value: r }, r)))),
    field('Password', h('input', { name: 'password', type: 'password', required: true, minlength: 8, autocomplete: 'new-password' })),
    field('Extension', h('input', { name: 'extension', inputmode: 'numeric', placeholder: 'e.g. 1003' })),
    field('SIP password', h('input', { name: 'sip_password', type: 'password', autocomplete: 'new-password' })),
    btn, out);
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    act(btn, out, async () => {
      const v = values(form);
      const u = await post('/users', { name: v.name, email: v.email, role: v.role, password: v.password });
      if (v.extension || v.sip_password) {
        await put('/users/' + enc(u.id) + '/sip', { extension: opt(v.extension), password: opt(v.sip_password) });
      }
      toast(`User ${u.email} created`);
      await users(el);
    });
  });
  const detail = h('div', { id: 'user-detail' });
  mount(el,
    h('section', { class: 'card' }, h('h2', {}, 'Users'),
      table(list.map((u, i) => ({ u, s: sip[i] })), [
        { label: 'Name', get: (r) => h('button', { type: 'button', class: 'link', onclick: () => editUser(detail, r.u, r.s, skillList, () => users(el), devicesOf(r.s)) }, r.u.name) },
        { label: 'Email', get: (r) => r.u.email },
        { label: 'Role', get: (r) => badge(r.u.role) },
        { label: 'Extension', get: (r) => (r.s && r.s.extension) || '—' },
        { label: 'SIP password', get: (r) => (r.s && r.s.has_password ? 'set' : '—') },
        { label: 'Devices', get: (r) => { const d = devicesOf(r.s); return d.length ? badge(`${d.length} registered`, 'ok') : (r.s && r.s.extension ? 'none' : '—'); } },
        { label: 'Active', get: (r) => (r.u.active ? 'yes' : badge('inactive', 'late')) },
      ], { rowData: (r) => ({ email: r.u.email }) })),
    detail,
    h('section', { class: 'card' }, h('h2', {}, 'New user'), form));
}

// How to set up a phone for this extension (docs/phones.md) and what is registered now.
function connection(s, devices) {
  if (!s || !s.extension) return h('p', { class: 'muted' }, 'No extension: give one (and a SIP password) to connect a phone.');
  return [
    h('dl', { class: 'call-facts', id: 'connection' },
      [['User / auth ID', s.extension], ['Domain / server', location.hostname], ['Password', s.has_password ? 'the SIP password' : 'not set'],
        ['Transport', 'UDP or TCP 5060, TLS 5061'], ['DTMF', 'RFC 2833']].map(([k, v]) => h('div', {}, h('dt', {}, k), h('dd', {}, v)))),
    devices.length ? table(devices, [
      { label: 'Device', get: (d) => d.user_agent || '(no user agent)' },
      { label: 'Address', get: (d) => `${d.source} (${d.transport})` },
      // A browser stays registered while its page is connected (no SIP expiry).
      { label: 'Expires in', get: (d) => (d.expires_in_s > 365 * 86400 ? 'while connected' : `${d.expires_in_s} s`) },
    ], { rowData: (d) => ({ contact: d.contact }) }) : h('p', { class: 'muted', id: 'no-devices' }, 'No phone registered now.'),
  ];
}

async function editUser(el, u, s, skillList, reload, devices = []) {
  const [mine, cap] = await Promise.all([get('/users/' + enc(u.id) + '/skills'), get('/users/' + enc(u.id) + '/capacity')]);
  const self = session.user && session.user.id === u.id;
  const out = h('div');
  const btn = h('button', { type: 'submit', class: 'primary' }, 'Save');
  const form = h('form', { class: 'inline-form', id: 'edit-user' },
    field('Name', h('input', { name: 'name', value: u.name })),
    field('Role', h('select', { name: 'role' }, ['agent', 'supervisor', 'admin'].map((r) => h('option', { value: r, selected: r === u.role }, r)))),
    field('Active', h('input', { name: 'active', type: 'checkbox', checked: u.active })),
    field('New password', h('input', { name: 'password', type: 'password', autocomplete: 'new-password', placeholder: 'unchanged' })),
    field('Extension', h('input', { name: 'extension', value: (s && s.extension) || '' })),
    field('New SIP password', h('input', { name: 'sip_password', type: 'password', autocomplete: 'new-password', placeholder: s && s.has_password ? 'unchanged' : 'not set' })),
    // SDES-SRTP for this user's phones (SECURITY.md, "Media encryption").
    field('SRTP', h('select', { name: 'srtp' }, ['optional', 'required', 'off'].map((m) => h('option', { value: m, selected: m === ((s && s.srtp) || 'optional') }, m)))),
    // Changing one's own SIP password needs one's web password again (SECURITY.md).
    self ? field('Your current password (for a new SIP password)', h('input', { name: 'current_password', type: 'password', autocomplete: 'current-password' })) : null,
    btn, out);
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    act(btn, out, async () => {
      const v = values(form);
      await patch('/users/' + enc(u.id), { name: v.name, role: v.role, active: v.active, password: opt(v.password) });
      const ext = v.extension.trim();
      const srtpChanged = s && v.srtp && v.srtp !== s.srtp;
      if ((ext && ext !== ((s && s.extension) || '')) || v.sip_password || srtpChanged) {
        await put('/users/' + enc(u.id) + '/sip', { extension: ext && ext !== ((s && s.extension) || '') ? ext : null, password: opt(v.sip_password), current_password: self ? opt(v.current_password) : null, srtp: srtpChanged ? v.srtp : null });
      }
      toast('Saved');
      await reload();
    });
  });
  const skOut = h('div');
  const skSel = h('select', { 'aria-label': 'Skill' }, skillList.map((k) => h('option', { value: k.id }, k.name)));
  const prof = h('input', { type: 'number', min: 1, max: 5, value: 3, 'aria-label': 'Proficiency 1 to 5' });
  const skBtn = h('button', { type: 'button' }, 'Set skill');
  skBtn.addEventListener('click', () => act(skBtn, skOut, async () => {
    await put(`/users/${enc(u.id)}/skills/${enc(skSel.value)}`, { proficiency: Number(prof.value) });
    await editUser(el, u, s, skillList, reload, devices);
  }));
  // Items at once per channel, and blending (a call need not block chats and email).
  const capOut = h('div');
  const capBtn = h('button', { type: 'submit' }, 'Save capacity');
  const capForm = h('form', { class: 'inline-form', id: 'user-capacity' },
    field('Calls', h('input', { name: 'voice', type: 'number', min: 0, max: 1, value: cap.voice, class: 'narrow' })),
    field('Chats', h('input', { name: 'chat', type: 'number', min: 0, max: 20, value: cap.chat, class: 'narrow' })),
    field('Async items', h('input', { name: 'async', type: 'number', min: 0, max: 50, value: cap.async, class: 'narrow' }), 'emails, messages, tasks'),
    field('A call blocks other work', h('input', { name: 'call_blocks_other_work', type: 'checkbox', checked: cap.call_blocks_other_work }), 'off: blended'),
    capBtn, capOut);
  capForm.addEventListener('submit', (e) => {
    e.preventDefault();
    act(capBtn, capOut, async () => {
      const v = values(capForm);
      await put('/users/' + enc(u.id) + '/capacity', { voice: num(v.voice), chat: num(v.chat), async: num(v.async), call_blocks_other_work: v.call_blocks_other_work });
      toast('Capacity saved');
    });
  });
  mount(el, h('section', { class: 'card' },
    h('h2', {}, `Edit ${u.name}`), form,
    h('h3', {}, 'Phone connection'), connection(s, devices),
    h('h3', {}, 'Capacity'), capForm,
    h('h3', {}, 'Skills'),
    mine.length ? h('ul', { class: 'list' }, mine.map((k) => h('li', {}, `${k.name} — ${k.proficiency}/5 `,
      h('button', { type: 'button', class: 'ghost', onclick: async () => { await del(`/users/${enc(u.id)}/skills/${enc(k.skill_id)}`); editUser(el, u, s, skillList, reload, devices); } }, 'Remove'))))
      : h('p', { class: 'muted' }, 'No skills.'),
    skillList.length ? h('div', { class: 'row' }, skSel, prof, skBtn) : h('p', { class: 'muted' }, 'Create skills first.'), skOut));
  el.scrollIntoView({ block: 'nearest' });
  form.querySelector('[name=name]').focus();
}

// --- teams
async function teams(el) {
  const [list, people] = await Promise.all([get('/teams'), get('/users')]);
  const name = (id) => (people.find((u) => u.id === id) || {}).name || id;
  const out = h('div');
  const btn = h('button', { type: 'submit', class: 'primary' }, 'Create team');
  const form = h('form', { class: 'inline-form', id: 'new-team' }, field('Name', h('input', { name: 'name', required: true })), btn, out);
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    act(btn, out, async () => { await post('/teams', values(form)); await teams(el); });
  });
  mount(el,
    h('section', { class: 'card' }, h('h2', {}, 'Teams'),
      list.length ? list.map((t) => {
        const sel = h('select', { 'aria-label': `Add a member to ${t.name}` }, people.filter((u) => !t.members.includes(u.id)).map((u) => h('option', { value: u.id }, u.name)));
        const o = h('div');
        return h('div', { class: 'team' }, h('h3', {}, t.name),
          h('ul', { class: 'list' }, t.members.map((m) => h('li', {}, name(m), ' ',
            h('button', { type: 'button', class: 'ghost', onclick: () => act(null, o, async () => { await del(`/teams/${enc(t.id)}/members/${enc(m)}`); await teams(el); }) }, 'Remove')))),
          h('div', { class: 'row' }, sel, h('button', { type: 'button', onclick: () => act(null, o, async () => { await put(`/teams/${enc(t.id)}/members/${enc(sel.value)}`); await teams(el); }) }, 'Add member')), o);
      }) : h('p', { class: 'muted' }, 'No team yet.')),
    h('section', { class: 'card' }, h('h2', {}, 'New team'), form));
}

// --- skills
async function skills(el) {
  const list = await get('/skills');
  const out = h('div');
  const btn = h('button', { type: 'submit', class: 'primary' }, 'Create skill');
  const form = h('form', { class: 'inline-form', id: 'new-skill' }, field('Name', h('input', { name: 'name', required: true })), btn, out);
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    act(btn, out, async () => { await post('/skills', values(form)); await skills(el); });
  });
  mount(el,
    h('section', { class: 'card' }, h('h2', {}, 'Skills'), h('p', { class: 'muted' }, 'Give users skills (with proficiency) from the Users tab.'),
      list.length ? h('ul', { class: 'list' }, list.map((k) => h('li', {}, k.name))) : h('p', { class: 'muted' }, 'No skill yet.')),
    h('section', { class: 'card' }, h('h2', {}, 'New skill'), form));
}

// --- queues (/queues: a full replacement on save; the IVR's `enqueue` names a queue)
const STRATEGIES = [['longest_idle', 'Longest idle'], ['most_skilled', 'Most skilled'], ['round_robin', 'Round robin']];
const num = (v) => (v === '' || v === undefined ? null : Number(v));
const CHANNELS = [['', 'their own channel'], ['voice', 'voice'], ['chat', 'chat'], ['async', 'async (email, messages, tasks)']];

async function queues(el) {
  const [list, skillList] = await Promise.all([get('/queues'), get('/skills')]);
  const skillName = (id) => (skillList.find((k) => k.id === id) || {}).name || id;
  const queueName = (id) => (list.find((q) => q.id === id) || {}).name || id;
  const out = h('div');
  const btn = h('button', { type: 'submit', class: 'primary' }, 'Create queue');
  const title = h('h2', {}, 'New queue');
  // One row per tenant skill: required or not, and the minimum proficiency.
  const skillRows = skillList.map((k) => ({
    k,
    on: h('input', { type: 'checkbox', name: 'skill:' + k.id, 'aria-label': `Requires ${k.name}` }),
    min: h('input', { type: 'number', min: 1, max: 5, value: 1, name: 'min:' + k.id, 'aria-label': `Minimum ${k.name} proficiency`, class: 'narrow' }),
  }));
  const overflowSel = h('select', { name: 'overflow_queue_id' }, h('option', { value: '' }, 'none'), list.map((q) => h('option', { value: q.id }, q.name)));
  const form = h('form', { id: 'queue-form', class: 'inline-form' },
    field('Name', h('input', { name: 'name', required: true, placeholder: 'sales' }), 'the IVR enqueue node names it'),
    field('Strategy', h('select', { name: 'strategy' }, STRATEGIES.map(([v, l]) => h('option', { value: v }, l)))),
    field('Service level (s)', h('input', { name: 'sl_threshold_s', type: 'number', min: 0, value: 20 })),
    field('Ring time per agent (s)', h('input', { name: 'ring_timeout_s', type: 'number', min: 1, value: 15 })),
    field('Wrap-up (s)', h('input', { name: 'wrap_up_s', type: 'number', min: 0, value: 10 })),
    field('Announce every (s)', h('input', { name: 'announce_interval_s', type: 'number', min: 0, value: 30 }), '0: no announcements'),
    field('Maximum wait (s)', h('input', { name: 'max_wait_s', type: 'number', min: 1, placeholder: 'none' })),
    field('At the maximum wait', h('select', { name: 'max_wait_action' }, [['voicemail', 'voicemail'], ['callback', 'offer a callback']].map(([v, l]) => h('option', { value: v }, l)))),
    field('Callback key', h('input', { name: 'callback_key', maxlength: 1, pattern: '[0-9*#]', placeholder: 'none', class: 'narrow' }), 'a caller presses it to be called back'),
    field('Missed offers before away', h('input', { name: 'max_missed_offers', type: 'number', min: 0, value: 3 })),
    field('Priority per minute waited', h('input', { name: 'priority_aging_per_min', type: 'number', min: 0, value: 0 })),
    field('Overflow to', overflowSel),
    field('Overflow after (s)', h('input', { name: 'overflow_after_s', type: 'number', min: 1, placeholder: 'none' })),
    field('Items overflowing here take', h('select', { name: 'channel' }, CHANNELS.map(([v, l]) => h('option', { value: v }, l))), 'e.g. chats moved to an email queue'),
    field('Assign automatically', h('input', { name: 'auto_assign', type: 'checkbox' }), 'no offer to accept'),
    field('Sticky to the last agent (s)', h('input', { name: 'sticky_window_s', type: 'number', min: 0, max: 2592000, value: 0 }), 'a returning customer\'s item goes to their last agent when free; 0: off'),
    h('fieldset', { class: 'queue-skills' }, h('legend', {}, 'Required skills (minimum proficiency 1–5)'),
      skillRows.length ? skillRows.map((r) => h('label', { class: 'row' }, r.on, ' ', r.k.name, ' ', r.min))
        : h('p', { class: 'muted' }, 'No skills yet: any agent can take this queue\'s calls.')),
    btn, out);
  let editing = null;
  const edit = (q) => {
    editing = q;
    const f = form.elements;
    for (const k of ['name', 'strategy', 'sl_threshold_s', 'ring_timeout_s', 'wrap_up_s', 'announce_interval_s', 'max_wait_action', 'max_missed_offers', 'priority_aging_per_min']) f[k].value = q[k];
    f.max_wait_s.value = q.max_wait_s ?? '';
    f.callback_key.value = q.callback_key || '';
    f.overflow_after_s.value = q.overflow_after_s ?? '';
    f.channel.value = q.channel || '';
    f.auto_assign.checked = !!q.auto_assign;
    f.sticky_window_s.value = q.sticky_window_s ?? 0;
    overflowSel.value = q.overflow_queue_id || '';
    for (const r of skillRows) {
      const req = q.skills.find((s) => s.skill === r.k.id);
      r.on.checked = !!req;
      r.min.value = req ? req.min_proficiency : 1;
    }
    title.textContent = `Edit queue ${q.name}`;
    btn.textContent = 'Save queue';
    f.name.focus();
  };
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    act(btn, out, async () => {
      const v = values(form);
      const body = {
        name: v.name.trim(), strategy: v.strategy,
        skills: skillRows.filter((r) => r.on.checked).map((r) => ({ skill: r.k.id, min_proficiency: Number(r.min.value) || 1 })),
        sl_threshold_s: num(v.sl_threshold_s), ring_timeout_s: num(v.ring_timeout_s), wrap_up_s: num(v.wrap_up_s),
        announce_interval_s: num(v.announce_interval_s), max_wait_s: num(v.max_wait_s), max_wait_action: v.max_wait_action,
        max_missed_offers: num(v.max_missed_offers), priority_aging_per_min: num(v.priority_aging_per_min),
        callback_key: opt(v.callback_key.trim()), overflow_queue_id: opt(v.overflow_queue_id), overflow_after_s: num(v.overflow_after_s),
        channel: opt(v.channel), auto_assign: v.auto_assign, sticky_window_s: num(v.sticky_window_s),
      };
      const q = editing ? await put('/queues/' + enc(editing.id), body) : await post('/queues', body);
      toast(editing ? `Queue ${q.name} saved` : `Queue ${q.name} created`);
      await queues(el);
    });
  });
  const lOut = h('div');
  mount(el,
    h('section', { class: 'card' }, h('h2', {}, 'Queues'),
      h('p', { class: 'muted' }, 'An IVR flow\'s enqueue node names a queue; its callers ring the agents who have the queue\'s skills and are available. Give agents skills in the Users tab.'),
      table(list, [
        { label: 'Name', get: (q) => h('button', { type: 'button', class: 'link', onclick: () => edit(q) }, q.name) },
        { label: 'Strategy', get: (q) => (STRATEGIES.find(([v]) => v === q.strategy) || [0, q.strategy])[1] },
        { label: 'Skills', get: (q) => (q.skills.length ? q.skills.map((s) => `${skillName(s.skill)} ≥ ${s.min_proficiency}`).join(', ') : 'any agent') },
        { label: 'Service level', get: (q) => `${q.sl_threshold_s} s` },
        { label: 'Max wait', get: (q) => (q.max_wait_s ? `${q.max_wait_s} s, then ${q.max_wait_action}` : '—') },
        { label: 'Callback key', get: (q) => q.callback_key || '—' },
        { label: 'Overflow', get: (q) => (q.overflow_queue_id ? `${queueName(q.overflow_queue_id)} after ${q.overflow_after_s} s` : '—') },
        { label: 'Routing', get: (q) => [q.auto_assign ? 'assigned automatically' : 'offered', q.sticky_window_s ? `sticky ${q.sticky_window_s} s` : null, q.channel ? `takes ${q.channel}` : null].filter(Boolean).join(', ') },
        { label: '', get: (q) => h('button', { type: 'button', class: 'ghost', onclick: () => { if (confirm(`Delete queue ${q.name}?`)) act(null, lOut, async () => { await del('/queues/' + enc(q.id)); toast(`Queue ${q.name} deleted`); await queues(el); }); } }, 'Delete') },
      ], { rowData: (q) => ({ queue: q.name }), empty: 'No queue yet: callers of an enqueue node ring every registered agent.' }), lOut),
    h('section', { class: 'card' }, title, form));
}

// --- trunks and numbers
async function telephony(el) {
  const [trunks, numbers, routes, flows] = await Promise.all([get('/trunks'), get('/numbers'), get('/ivr/numbers'), get('/ivr/flows')]);
  const trunkName = (id) => (trunks.find((t) => t.id === id) || {}).name || id;
  const routeOf = (n) => routes.find((r) => r.number === n);
  const tOut = h('div');
  const tBtn = h('button', { type: 'submit', class: 'primary' }, 'Add trunk');
  const tForm = h('form', { class: 'inline-form', id: 'new-trunk' },
    field('Name', h('input', { name: 'name', required: true })),
    field('Inbound addresses', h('input', { name: 'inbound_addresses', placeholder: '203.0.113.5, 198.51.100.0/24' }), 'comma separated'),
    field('Inbound username', h('input', { name: 'inbound_username' })),
    field('Inbound password', h('input', { name: 'inbound_password', type: 'password', autocomplete: 'new-password' })),
    field('Outbound target', h('input', { name: 'outbound_target', placeholder: 'sip.example.net:5060' })),
    field('Transport', h('select', { name: 'transport' }, ['udp', 'tcp', 'tls'].map((t) => h('option', { value: t }, t))), 'tls: port 5061 when none is given'),
    field('TLS CA (PEM)', h('textarea', { name: 'tls_ca_pem', rows: 2, placeholder: '-----BEGIN CERTIFICATE-----' }), 'tls only: the carrier\'s CA; empty: the system roots'),
    field('Caller ID', h('input', { name: 'caller_id', placeholder: '+15550100' })),
    field('SRTP', h('select', { name: 'srtp' }, ['optional', 'required', 'off'].map((m) => h('option', { value: m, selected: m === ('optional') }, m))), 'required: use SIP over TLS'),
    tBtn, tOut);
  let editing = null; // the trunk being edited, or null for a new one
  const tTitle = h('h2', {}, 'New trunk');
  const editTrunk = (t) => {
    editing = t;
    const f = tForm.elements;
    f.name.value = t.name;
    f.inbound_addresses.value = t.inbound_addresses.join(', ');
    f.inbound_username.value = t.inbound_username || '';
    f.inbound_password.value = '';
    f.inbound_password.placeholder = t.has_inbound_password ? 'unchanged' : '';
    f.outbound_target.value = t.outbound_target || '';
    f.transport.value = t.transport;
    f.tls_ca_pem.value = t.tls_ca_pem || '';
    f.caller_id.value = t.caller_id || '';
    f.srtp.value = t.srtp || 'optional';
    tTitle.textContent = `Edit trunk ${t.name}`;
    tBtn.textContent = 'Save trunk';
    f.name.focus();
  };
  tForm.addEventListener('submit', (e) => {
    e.preventDefault();
    act(tBtn, tOut, async () => {
      const v = values(tForm);
      await (editing ? (b) => put('/trunks/' + enc(editing.id), b) : (b) => post('/trunks', b))({
        name: v.name,
        inbound_addresses: v.inbound_addresses.split(',').map((s) => s.trim()).filter(Boolean),
        inbound_username: opt(v.inbound_username), inbound_password: opt(v.inbound_password),
        outbound_target: opt(v.outbound_target), transport: v.transport, caller_id: opt(v.caller_id),
        tls_ca_pem: v.transport === 'tls' ? opt(v.tls_ca_pem) : null,
        srtp: v.srtp,
      });
      toast(editing ? 'Trunk saved' : 'Trunk added');
      await telephony(el);
    });
  });
  const nOut = h('div');
  const nBtn = h('button', { type: 'submit', class: 'primary' }, 'Add number');
  const nForm = h('form', { class: 'inline-form', id: 'new-number' },
    field('Number (E.164)', h('input', { name: 'number', required: true, placeholder: '+15550123' })),
    field('Trunk', h('select', { name: 'trunk_id' }, trunks.map((t) => h('option', { value: t.id }, t.name)))),
    nBtn, nOut);
  nForm.addEventListener('submit', (e) => {
    e.preventDefault();
    act(nBtn, nOut, async () => { await post('/numbers', values(nForm)); toast('Number added'); await telephony(el); });
  });
  const rm = (path, what) => async () => {
    if (!confirm(`Delete ${what}?`)) return;
    try { await del(path); await telephony(el); } catch (e) { toast(e.message, 'bad'); }
  };
  mount(el,
    h('section', { class: 'card' }, h('h2', {}, 'Trunks'),
      table(trunks, [
        { label: 'Name', get: (t) => h('button', { type: 'button', class: 'link', title: 'Edit', onclick: () => editTrunk(t) }, t.name) },
        { label: 'Inbound from', get: (t) => t.inbound_addresses.join(', ') || '—' },
        { label: 'Digest user', get: (t) => t.inbound_username || '—' },
        { label: 'Outbound', get: (t) => t.outbound_target || '—' },
        { label: 'Transport', get: (t) => t.transport + (t.tls_ca_pem ? ' (pinned CA)' : '') },
        { label: 'Caller ID', get: (t) => t.caller_id || '—' },
        { label: 'SRTP', get: (t) => t.srtp },
        { label: '', get: (t) => h('button', { type: 'button', class: 'ghost', onclick: rm('/trunks/' + enc(t.id), `trunk ${t.name} and its numbers`) }, 'Delete') },
      ])),
    h('section', { class: 'card' }, tTitle, tForm),
    h('section', { class: 'card' }, h('h2', {}, 'Numbers'),
      table(numbers, [
        { label: 'Number', get: (n) => n.number },
        { label: 'Trunk', get: (n) => trunkName(n.trunk_id) },
        { label: 'IVR flow', get: (n) => { const r = routeOf(n.number); return r ? h('a', { href: '/designer/' + enc(r.flow_id), 'data-link': '' }, r.flow_id) : '—'; } },
        { label: '', get: (n) => h('button', { type: 'button', class: 'ghost', onclick: rm('/numbers/' + enc(n.id), `number ${n.number}`) }, 'Delete') },
      ], { rowData: (n) => ({ number: n.number }) }),
      h('p', { class: 'muted small' }, flows.length ? 'Route a number to a flow from the IVR designer.' : '')),
    h('section', { class: 'card' }, h('h2', {}, 'New number'), trunks.length ? nForm : h('p', { class: 'muted' }, 'Add a trunk first.')));
}

// --- business hours
const DAYS = ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'];

// --- speech (GET/PUT /speech/settings)
// The speech models installed on this server (from /readyz), for the tenant's choice.
async function installedSpeechModels() {
  try {
    const r = await fetch('/readyz');
    const body = await r.json();
    return (body.models || []).filter((m) => m.kind === 'speech' && m.installed).map((m) => m.id);
  } catch (_) {
    return [];
  }
}

const SPEECH_LANGUAGES = [['', 'detect per utterance'], ['en', 'English'], ['es', 'Spanish'], ['fr', 'French'],
  ['de', 'German'], ['it', 'Italian'], ['pt', 'Portuguese'], ['nl', 'Dutch'], ['pl', 'Polish']];

async function speech(el) {
  const [s, installed] = await Promise.all([get('/speech/settings'), installedSpeechModels()]);
  const models = ['auto', ...installed];
  if (!models.includes(s.model)) models.push(s.model);
  const langs = SPEECH_LANGUAGES.slice();
  if (s.language && !langs.some(([c]) => c === s.language)) langs.push([s.language, s.language]);
  const out = h('div');
  const btn = h('button', { type: 'submit', class: 'primary' }, 'Save');
  const form = h('form', { id: 'speech-form', class: 'stack' },
    h('label', { class: 'check' }, h('input', { type: 'checkbox', name: 'transcription', checked: s.transcription }),
      ' Transcribe calls live (local speech model: live transcript for agents and supervisors, alerts, summary and sentiment on the timeline)'),
    h('label', { class: 'check' }, h('input', { type: 'checkbox', name: 'require_consent', checked: s.require_consent }),
      ' Only callers whose customer record has recording consent (off: your call notice covers every caller)'),
    field('Speech model', h('select', { name: 'model' }, models.map((m) => h('option', { value: m, selected: m === s.model },
      m === 'auto' ? 'auto (this server\'s default for its size)' : (installed.includes(m) ? m : `${m} (not installed: default used)`)))),
      'Which installed model transcribes your calls; whisper-base-* are multilingual and more accurate, whisper-tiny.en is English-only and fastest.'),
    field('Callers\' language', h('select', { name: 'language' }, langs.map(([c, label]) => h('option', { value: c, selected: c === (s.language || '') }, label))),
      'With a multilingual model: detected per utterance (the call is tagged with it), or forced.'),
    field('Alert phrases (one per line)', h('textarea', { name: 'alert_phrases', rows: 5, value: s.alert_phrases.join('\n') }),
      'Supervisors get an alert when one is said (case-insensitive, whole words).'),
    h('div', { class: 'row' }, btn), out);
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    act(btn, out, async () => {
      const v = values(form);
      const saved = await put('/speech/settings', {
        transcription: v.transcription, require_consent: v.require_consent,
        alert_phrases: v.alert_phrases.split('\n').map((x) => x.trim()).filter(Boolean),
        model: v.model, language: v.language || null,
      });
      toast('Speech settings saved');
      mount(out, h('p', { class: 'ok-msg' }, `Saved: transcription ${saved.transcription ? 'on' : 'off'}, model ${saved.model}, language ${saved.language || 'detected'}, ${saved.alert_phrases.length} alert phrase(s).`));
      form.elements.alert_phrases.value = saved.alert_phrases.join('\n');
    });
  });
  mount(el, h('section', { class: 'card' }, h('h2', {}, 'Speech & AI'),
    h('p', { class: 'muted' }, 'Transcription runs on this server with its installed speech models (`parley models list`); nothing leaves the machine.'),
    form));
}

async function hours(el) {
  const cals = await get('/ivr/calendars');
  const editor = h('div', { id: 'calendar-editor' });
  mount(el,
    h('section', { class: 'card' }, h('h2', {}, 'Business-hours calendars'),
      h('p', { class: 'muted' }, 'IVR flows use them in business_hours / holiday conditions.'),
      table(cals, [
        { label: 'Name', get: (c) => h('button', { type: 'button', class: 'link', onclick: () => calendarEditor(editor, c.name, c.calendar, () => hours(el)) }, c.name) },
        { label: 'Time zone', get: (c) => c.calendar.time_zone },
        { label: 'Weekly', get: (c) => (c.calendar.weekly || []).map((w) => `${w.days.join(',')} ${w.open}–${w.close}`).join('; ') },
        { label: 'Holidays', get: (c) => String((c.calendar.holidays || []).length) },
        { label: 'Changed', get: (c) => fmtTime(c.updated_at) },
      ]),
      h('button', { type: 'button', onclick: () => calendarEditor(editor, '', { time_zone: Intl.DateTimeFormat().resolvedOptions().timeZone || 'UTC', weekly: [{ days: DAYS.slice(0, 5), open: '09:00', close: '17:00' }], holidays: [] }, () => hours(el)) }, 'New calendar')),
    editor);
}

function calendarEditor(el, name, cal, reload) {
  const out = h('div');
  const rows = h('div', { class: 'rows' });
  const hols = h('div', { class: 'rows' });
  const weeklyRow = (w) => {
    const r = h('div', { class: 'row weekly' },
      h('fieldset', { class: 'days' }, h('legend', { class: 'sr-only' }, 'Days'), DAYS.map((d) => h('label', {}, h('input', { type: 'checkbox', value: d, checked: w.days.includes(d) }), d))),
      h('input', { type: 'time', class: 'open', value: w.open.slice(0, 5), 'aria-label': 'Opens' }), '–',
      h('input', { type: 'time', class: 'close', value: w.close.slice(0, 5), 'aria-label': 'Closes' }),
      h('button', { type: 'button', class: 'ghost', onclick: () => r.remove() }, 'Remove'));
    return r;
  };
  const holRow = (x) => {
    const r = h('div', { class: 'row holiday' },
      h('input', { type: 'date', class: 'date', value: x.date || '', 'aria-label': 'Date', required: true }),
      h('input', { class: 'hname', value: x.name || '', placeholder: 'Name', 'aria-label': 'Holiday name' }),
      h('input', { type: 'time', class: 'open', value: (x.open || '').slice(0, 5), 'aria-label': 'Special opening (optional)' }), '–',
      h('input', { type: 'time', class: 'close', value: (x.close || '').slice(0, 5), 'aria-label': 'Special closing (optional)' }),
      h('button', { type: 'button', class: 'ghost', onclick: () => r.remove() }, 'Remove'));
    return r;
  };
  (cal.weekly || []).forEach((w) => rows.append(weeklyRow(w)));
  (cal.holidays || []).forEach((x) => hols.append(holRow(x)));
  const nameIn = h('input', { name: 'name', value: name, required: true, pattern: '[A-Za-z0-9_.\\-]+', readonly: name ? true : null });
  const tz = h('input', { name: 'time_zone', value: cal.time_zone, required: true });
  const btn = h('button', { type: 'submit', class: 'primary' }, 'Save calendar');
  const form = h('form', { id: 'calendar-form' },
    h('div', { class: 'inline-form' }, field('Name', nameIn), field('Time zone (IANA)', tz)),
    h('h3', {}, 'Weekly hours'), rows,
    h('button', { type: 'button', onclick: () => rows.append(weeklyRow({ days: [], open: '09:00', close: '17:00' })) }, 'Add hours'),
    h('h3', {}, 'Holidays'), hols,
    h('button', { type: 'button', onclick: () => hols.append(holRow({})) }, 'Add holiday'),
    h('div', { class: 'row' }, btn), out);
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    act(btn, out, async () => {
      const body = {
        time_zone: tz.value.trim(),
        weekly: [...rows.querySelectorAll('.weekly')].map((r) => ({
          days: [...r.querySelectorAll('input[type=checkbox]:checked')].map((c) => c.value),
          open: r.querySelector('.open').value, close: r.querySelector('.close').value,
        })),
        holidays: [...hols.querySelectorAll('.holiday')].map((r) => {
          const x = { date: r.querySelector('.date').value };
          const n = r.querySelector('.hname').value.trim();
          if (n) x.name = n;
          const o = r.querySelector('.open').value; const c = r.querySelector('.close').value;
          if (o && c) { x.open = o; x.close = c; }
          return x;
        }),
      };
      await put('/ivr/calendars/' + enc(nameIn.value.trim()), body);
      toast('Calendar saved');
      await reload();
    });
  });
  mount(el, h('section', { class: 'card' }, h('h2', {}, name ? `Calendar ${name}` : 'New calendar'), form));
  tz.focus();
}


// --- canned responses (the inbox's reply templates, issue 17)
const PLACEHOLDER_HINT = 'Placeholders: {{customer.name}}, {{customer.first_name}}, {{customer.email}}, {{customer.phone}}, {{agent.name}}, {{agent.first_name}}';

async function canned(el) {
  const list = await get('/canned-responses');
  const out = h('div');
  const form = cannedForm(null, h('div'), () => canned(el));
  mount(el,
    h('section', { class: 'card' }, h('h2', {}, 'Canned responses'),
      h('p', { class: 'muted' }, 'Agents insert these in the inbox\'s reply box (the Canned responses button, the c key, or /shortcut); placeholders are filled for the customer and the agent.'),
      table(list, [
        { label: 'Shortcut', get: (c) => h('code', {}, '/' + c.shortcut) },
        { label: 'Title', get: (c) => c.title },
        { label: 'Text', get: (c) => h('span', { class: 'small' }, c.body) },
        { label: '', get: (c) => h('div', { class: 'row' },
          h('button', { type: 'button', onclick: (e) => {
            const row = e.target.closest('tr');
            const edit = h('td', { colspan: 4 }, cannedForm(c, h('div'), () => canned(el)));
            row.replaceChildren(edit);
          } }, 'Edit'),
          h('button', { type: 'button', class: 'danger', onclick: (e) => act(e.target, out, async () => {
            if (!confirm(`Delete the canned response /${c.shortcut}?`)) return;
            await del('/canned-responses/' + enc(c.id));
            toast(`/${c.shortcut} deleted`);
            await canned(el);
          }) }, 'Delete')) },
      ], { empty: 'No canned response yet.', rowData: (c) => ({ shortcut: c.shortcut }) }), out),
    h('section', { class: 'card' }, h('h2', {}, 'New canned response'), form));
}

function cannedForm(c, out, done) {
  const btn = h('button', { type: 'submit', class: 'primary' }, c ? 'Save' : 'Add');
  const form = h('form', { class: 'canned-form', id: c ? null : 'new-canned' },
    h('div', { class: 'inline-form' },
      field('Shortcut', h('input', { name: 'shortcut', required: true, pattern: '[a-z0-9_\\-]{1,32}', value: c ? c.shortcut : '', placeholder: 'refund' })),
      field('Title', h('input', { name: 'title', required: true, value: c ? c.title : '', placeholder: 'Refund on its way' }))),
    field('Text', h('textarea', { name: 'body', rows: 4, required: true }, c ? c.body : ''), PLACEHOLDER_HINT),
    btn, out);
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    act(btn, out, async () => {
      const v = values(form);
      const body = { shortcut: v.shortcut, title: v.title, body: v.body };
      if (c) await put('/canned-responses/' + enc(c.id), body);
      else await post('/canned-responses', body);
      toast(`/${v.shortcut} saved`);
      await done();
    });
  });
  return form;
}

// --- knowledge base (issue 20): articles (Markdown, tags, versions, draft/published)
// and the web-chat bot's switch. The editor saves a new version each time; "Save as
// draft" keeps customers on the published version until "Publish".

const KB_STATUS = { draft: 'draft', published: 'published', changed: 'published, newer draft' };

async function kb(el) {
  const [list, settings] = await Promise.all([get('/kb/articles'), get('/kb/settings')]);
  const out = h('div');
  const bot = h('input', { type: 'checkbox', name: 'bot_enabled', checked: settings.bot_enabled });
  bot.addEventListener('change', () => act(bot, out, async () => {
    await put('/kb/settings', { bot_enabled: bot.checked });
    toast(bot.checked ? 'Bot on' : 'Bot off');
  }));
  const q = h('input', { type: 'search', name: 'q', placeholder: 'Try a customer question…' });
  const results = h('div', { class: 'kb-try' });
  const tryForm = h('form', { class: 'inline-form', id: 'kb-try' }, q,
    h('button', { type: 'submit' }, 'Ask'), results);
  tryForm.addEventListener('submit', (e) => {
    e.preventDefault();
    act(e.submitter || tryForm, out, async () => {
      const a = await post('/ai/answer', { question: q.value });
      results.replaceChildren(a.handoff
        ? h('p', { class: 'muted' }, `Hand-off: ${(a.reason || '').replace(/_/g, ' ')} (confidence ${a.confidence.toFixed(2)})`)
        : h('div', {}, h('pre', { class: 'kb-answer' }, a.answer),
          h('p', { class: 'small' }, 'Cites: ', a.citations.map((c) => c.title + ' (' + c.slug + ')').join(', '),
            ` — confidence ${a.confidence.toFixed(2)}`)));
    });
  });
  mount(el,
    h('section', { class: 'card' }, h('h2', {}, 'Knowledge base'),
      h('label', { class: 'row' }, bot, ' Web-chat bot answers how-to questions from published articles (and hands off the rest with a brief)'),
      table(list, [
        { label: 'Slug', get: (a) => h('code', {}, a.slug) },
        { label: 'Title', get: (a) => a.title },
        { label: 'Tags', get: (a) => a.tags.join(', ') },
        { label: 'Status', get: (a) => badge(KB_STATUS[a.status] || a.status) },
        { label: 'Version', get: (a) => a.published_version && a.published_version !== a.version ? `${a.version} (live: ${a.published_version})` : String(a.version) },
        { label: '', get: (a) => h('div', { class: 'row' },
          h('button', { type: 'button', onclick: (e) => {
            const row = e.target.closest('tr');
            row.replaceChildren(h('td', { colspan: 6 }, kbForm(a, () => kb(el))));
          } }, 'Edit'),
          a.status !== 'published' ? h('button', { type: 'button', class: 'primary', onclick: (e) => act(e.target, out, async () => {
            await post('/kb/articles/' + enc(a.slug) + '/publish', {});
            toast(`${a.slug} published`);
            await kb(el);
          }) }, 'Publish') : h('button', { type: 'button', onclick: (e) => act(e.target, out, async () => {
            await post('/kb/articles/' + enc(a.slug) + '/unpublish');
            toast(`${a.slug} unpublished`);
            await kb(el);
          }) }, 'Unpublish')) },
      ], { empty: 'No article yet.', rowData: (a) => ({ slug: a.slug }) }), out),
    h('section', { class: 'card' }, h('h2', {}, 'Try the bot'), tryForm),
    h('section', { class: 'card' }, h('h2', {}, 'New article'), kbForm(null, () => kb(el))));
}

function kbForm(a, done) {
  const out = h('div');
  const save = h('button', { type: 'submit', class: 'primary', value: 'published' }, a ? 'Save and publish' : 'Publish');
  const draft = h('button', { type: 'submit', value: 'draft' }, 'Save as draft');
  const form = h('form', { class: 'kb-form', id: a ? 'kb-edit' : 'new-kb' },
    h('div', { class: 'inline-form' },
      field('Slug', h('input', { name: 'slug', required: true, pattern: '[a-z0-9][a-z0-9\\-]{0,63}', value: a ? a.slug : '', readonly: !!a, placeholder: 'router-reset' })),
      field('Title', h('input', { name: 'title', required: true, value: a ? a.title : '', placeholder: 'Reset the router' })),
      field('Tags', h('input', { name: 'tags', value: a ? a.tags.join(', ') : '', placeholder: 'router, wifi' }))),
    field('Body (Markdown)', h('textarea', { name: 'body', rows: 8, required: true }, a ? a.body : '')),
    h('div', { class: 'row' }, save, draft), out);
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    const status = (e.submitter && e.submitter.value) || 'published';
    act(e.submitter || save, out, async () => {
      const v = values(form);
      const body = { slug: v.slug, title: v.title, body: v.body, tags: v.tags.split(',').map((t) => t.trim()).filter(Boolean), status };
      if (a) await put('/kb/articles/' + enc(a.slug), body);
      else await post('/kb/articles', body);
      toast(`${v.slug} saved${status === 'draft' ? ' as a draft' : ' and published'}`);
      await done();
    });
  });
  return form;
}
