// Admin → Automation (issue 23): the tenant's automation rules. Build a rule from a
// trigger (events), conditions (field comparisons, business hours) and actions; try it
// on the last events (dry run) before saving; see each rule's execution log.

import { get, post, put, del, enc } from '../api.js';
import { h, mount, act, field, table, badge, toast, fmtTime } from '../dom.js';

const EVENTS = [
  'conversation.opened', 'conversation.message', 'conversation.updated', 'conversation.assigned',
  'conversation.status_changed', 'case.created', 'case.updated', 'case.status_changed',
  'sla.warning', 'sla.breached', 'call.ended', 'csat.received',
];
const FIELDS = [
  'message.text', 'message.author', 'conversation.priority', 'conversation.channel',
  'conversation.tags', 'conversation.status', 'conversation.assignee_id', 'customer.name',
  'case.priority', 'case.status', 'case.tags',
];
const OPS = ['eq', 'ne', 'contains', 'not_contains', 'in', 'not_in', 'gt', 'gte', 'lt', 'lte', 'exists'];
// Action type → its parameter (name, label, placeholder); `tags` are comma-separated.
const ACTIONS = {
  assign_user: ['user_id', 'User', null],
  add_tags: ['tags', 'Tags', 'billing, vip'],
  remove_tags: ['tags', 'Tags', 'new'],
  set_priority: ['priority', 'Priority', 'P1'],
  set_status: ['status', 'Status', 'pending'],
  reply_template: ['shortcut', 'Canned response', null],
  add_note: ['text', 'Note', 'Checked by automation'],
  escalate_to_supervisor: ['reason', 'Reason', 'VIP waiting'],
  set_field: ['field', 'Field', 'region'],
  assign_team: ['team_id', 'Team id', ''],
};

export async function rules(el) {
  const [list, users, canned] = await Promise.all([
    get('/rules'), get('/colleagues').catch(() => []), get('/canned-responses').catch(() => []),
  ]);
  const out = h('div');
  const logBox = h('div', { id: 'rule-log' });
  mount(el,
    h('section', { class: 'card' }, h('h2', {}, 'Automation rules'),
      h('p', { class: 'muted' }, 'Rules run in order on every event of the tenant; a rule with "stop" ends the evaluation. A rule never re-triggers itself, and chains stop after 3 rules.'),
      table(list, [
        { label: '#', get: (r) => String(r.position) },
        { label: 'Name', get: (r) => h('strong', {}, r.name) },
        { label: 'When', get: (r) => r.trigger.type === 'event' ? r.trigger.kinds.join(', ') : `every ${r.trigger.every_minutes} min` },
        { label: 'Then', get: (r) => r.actions.map((a) => a.type.replaceAll('_', ' ')).join(', ') },
        { label: 'State', get: (r) => r.enabled ? badge('on', 'ok') : badge('off') },
        { label: '', get: (r) => h('div', { class: 'row' },
          h('button', { type: 'button', onclick: (e) => act(e.target, out, () => showLog(logBox, r)) }, 'Log'),
          h('button', { type: 'button', onclick: (e) => act(e.target, out, async () => {
            await put('/rules/' + enc(r.id), { ...pick(r), enabled: !r.enabled });
            await rules(el);
          }) }, r.enabled ? 'Disable' : 'Enable'),
          h('button', { type: 'button', class: 'danger', onclick: (e) => act(e.target, out, async () => {
            if (!confirm(`Delete the rule ${r.name}?`)) return;
            await del('/rules/' + enc(r.id));
            toast(`${r.name} deleted`);
            await rules(el);
          }) }, 'Delete')) },
      ], { empty: 'No rule yet.', rowData: (r) => ({ rule: r.name }) }), out, logBox),
    h('section', { class: 'card' }, h('h2', {}, 'New rule'), builder(users, canned, () => rules(el))));
}

function pick(r) {
  const { name, enabled, position, trigger, conditions, actions, stop_processing } = r;
  return { name, enabled, position, trigger, conditions, actions, stop_processing };
}

async function showLog(box, r) {
  const runs = await get('/rules/' + enc(r.id) + '/log?limit=50');
  mount(box, h('h3', {}, `Log of ${r.name}`),
    table(runs, [
      { label: 'When', get: (x) => fmtTime(x.at) },
      { label: 'Event', get: (x) => x.event_kind },
      { label: 'On', get: (x) => x.subject || '' },
      { label: 'Outcome', get: (x) => badge(x.outcome, x.outcome === 'applied' ? 'ok' : 'bad') },
      { label: 'Detail', get: (x) => h('span', { class: 'small' }, Array.isArray(x.detail)
        ? x.detail.map((d) => `${d.action.type}${d.ok ? '' : ' ✗ ' + d.error}`).join('; ') : '') },
    ], { empty: 'This rule has not run yet.' }));
}

function conditionRow() {
  const kind = h('select', { 'aria-label': 'Condition kind', class: 'cond-kind' },
    h('option', { value: 'field' }, 'field'), h('option', { value: 'open' }, 'within business hours'),
    h('option', { value: 'closed' }, 'outside business hours'));
  const fieldIn = h('input', { 'aria-label': 'Field', class: 'cond-field', list: 'rule-fields', value: 'message.text' });
  const op = h('select', { 'aria-label': 'Comparison', class: 'cond-op' }, OPS.map((o) => h('option', { value: o }, o)));
  op.value = 'contains';
  const value = h('input', { 'aria-label': 'Value', class: 'cond-value', placeholder: 'refund, invoice' });
  const row = h('div', { class: 'inline-form cond-row' }, kind, fieldIn, op, value,
    h('button', { type: 'button', onclick: () => row.remove(), 'aria-label': 'Remove condition' }, '×'));
  kind.addEventListener('change', () => {
    const f = kind.value === 'field';
    op.hidden = !f;
    fieldIn.placeholder = f ? 'message.text' : 'calendar name';
    if (!f) fieldIn.value = '';
  });
  row.read = () => {
    if (kind.value !== 'field') return { type: 'business_hours', calendar: fieldIn.value.trim(), open: kind.value === 'open' };
    const raw = value.value.trim();
    const list = raw.split(',').map((s) => s.trim()).filter(Boolean);
    let v = raw;
    if (['in', 'not_in'].includes(op.value) || (['contains', 'not_contains'].includes(op.value) && list.length > 1)) v = list;
    else if (op.value === 'exists') v = raw !== 'false';
    else if (raw !== '' && !Number.isNaN(Number(raw)) && ['gt', 'gte', 'lt', 'lte'].includes(op.value)) v = Number(raw);
    return { type: 'field', field: fieldIn.value.trim(), op: op.value, value: v };
  };
  return row;
}

function actionRow(users, canned) {
  const type = h('select', { 'aria-label': 'Action', class: 'act-type' }, Object.keys(ACTIONS).map((a) => h('option', { value: a }, a.replaceAll('_', ' '))));
  const slot = h('span');
  let input;
  const draw = () => {
    const [, label, ph] = ACTIONS[type.value];
    if (type.value === 'assign_user') {
      input = h('select', { 'aria-label': label, class: 'act-param' }, users.map((u) => h('option', { value: u.id }, u.name)));
    } else if (type.value === 'reply_template') {
      input = h('select', { 'aria-label': label, class: 'act-param' }, canned.map((c) => h('option', { value: c.shortcut }, '/' + c.shortcut)));
    } else {
      input = h('input', { 'aria-label': label, class: 'act-param', placeholder: ph || '' });
    }
    slot.replaceChildren(input);
  };
  type.addEventListener('change', draw);
  draw();
  const row = h('div', { class: 'inline-form act-row' }, type, slot,
    h('button', { type: 'button', onclick: () => row.remove(), 'aria-label': 'Remove action' }, '×'));
  row.read = () => {
    const [param] = ACTIONS[type.value];
    const v = input.value.trim();
    if (param === 'tags') return { type: type.value, tags: v.split(',').map((s) => s.trim()).filter(Boolean) };
    if (param === 'reason') return v ? { type: type.value, reason: v } : { type: type.value };
    if (param === 'field') return { type: type.value, field: v, value: true };
    return { type: type.value, [param]: v };
  };
  return row;
}

function builder(users, canned, done) {
  const out = h('div');
  const dry = h('div', { id: 'dry-run' });
  const name = h('input', { name: 'name', required: true, placeholder: 'Refunds to billing' });
  const position = h('input', { name: 'position', type: 'number', value: '10' });
  const stop = h('input', { name: 'stop_processing', type: 'checkbox' });
  const events = h('select', { name: 'kinds', multiple: true, size: 4, 'aria-label': 'Trigger events' },
    EVENTS.map((k) => h('option', { value: k, selected: k === 'conversation.message' }, k)));
  const conds = h('div', { class: 'conds' }, conditionRow());
  const acts = h('div', { class: 'acts' }, actionRow(users, canned));
  const read = () => ({
    name: name.value.trim(),
    position: Number(position.value || 0),
    stop_processing: stop.checked,
    trigger: { type: 'event', kinds: [...events.selectedOptions].map((o) => o.value) },
    conditions: [...conds.children].map((r) => r.read()),
    actions: [...acts.children].map((r) => r.read()),
  });
  const save = h('button', { type: 'submit', class: 'primary' }, 'Save rule');
  const tryIt = h('button', { type: 'button', id: 'dry-run-btn' }, 'Dry run on the last 200 events');
  tryIt.addEventListener('click', () => act(tryIt, out, async () => {
    const r = await post('/rules/dry-run', { limit: 200, rule: read() });
    mount(dry, h('h3', {}, `Dry run: would fire on ${r.events.length} of ${r.evaluated} events`),
      table(r.events, [
        { label: 'Event', get: (e) => e.kind },
        { label: 'Id', get: (e) => h('code', { class: 'small' }, e.event_id.slice(-12)) },
        { label: 'Would do', get: (e) => e.fired.flatMap((f) => f.actions.map((a) => a.type.replaceAll('_', ' '))).join(', ') },
      ], { empty: 'It would not have fired on any of them.' }));
  }));
  const form = h('form', { id: 'new-rule' },
    h('datalist', { id: 'rule-fields' }, FIELDS.map((f) => h('option', { value: f }))),
    h('div', { class: 'inline-form' }, field('Name', name), field('Order', position), field('Stop after this rule', stop)),
    field('When one of these events happens', events),
    h('h3', {}, 'If all of these hold'), conds,
    h('button', { type: 'button', onclick: () => conds.append(conditionRow()) }, '+ condition'),
    h('h3', {}, 'Then'), acts,
    h('button', { type: 'button', onclick: () => acts.append(actionRow(users, canned)) }, '+ action'),
    h('div', { class: 'row' }, save, tryIt), out, dry);
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    act(save, out, async () => {
      const r = await post('/rules', read());
      toast(`Rule ${r.name} saved`);
      await done();
    });
  });
  return form;
}
