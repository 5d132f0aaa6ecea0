// Pure helpers over a flow document (no DOM): the exits of a node (the edges of the
// graph), setting an exit, node templates, validator problems by node, a simulated
// trace's path, the test-call steps. The graph's geometry (automatic layout, edge
// routes, label places, fit to view) is in flowlayout.js; `node.ui = {x, y}` is the
// designer's data in the flow format.

export const NODE_TYPES = {
  play: () => ({ type: 'play', prompts: [{ tts: 'Hello, thanks for calling.' }], next: '' }),
  menu: () => ({ type: 'menu', prompts: [{ tts: 'Press 1 for sales, 2 for support.' }], choices: [{ digit: '1', next: '' }], timeout_ms: 5000, max_retries: 2, on_max_retries: '' }),
  gather: () => ({ type: 'gather', prompts: [{ tts: 'Please enter your account number, then press hash.' }], variable: 'account', min_len: 1, max_len: 12, terminator: '#', next: '', on_invalid: '' }),
  branch: () => ({ type: 'branch', rules: [{ when: { business_hours: 'main' }, next: '' }], default: '' }),
  set: () => ({ type: 'set', variable: 'topic', value: 'support', next: '' }),
  customer: () => ({ type: 'customer', create: true, next: '', on_error: '' }),
  enqueue: () => ({ type: 'enqueue', queue: 'support', skills: [], on_answered: '', on_timeout: '' }),
  transfer: () => ({ type: 'transfer', target: { extension: '1001' } }),
  voicemail: () => ({ type: 'voicemail', prompts: [{ tts: 'Please leave a message after the tone.' }], beep: true, max_length_s: 60 }),
  survey: () => ({ type: 'survey', prompts: [{ tts: 'On a scale of 1 to 5, how satisfied were you?' }], variable: 'csat', next: '' }),
  hangup: () => ({ type: 'hangup' }),
};

const LIST_EXITS = { choices: (c) => c.digit, rules: (_r, i) => `rule ${i + 1}`, intents: (x) => x.name };

/** The exits of a node: [{label, path, target}], `path` being where the target id lives. */
export function exits(node) {
  const out = [];
  for (const [k, v] of Object.entries(node)) {
    if (k in LIST_EXITS && Array.isArray(v)) {
      v.forEach((item, i) => out.push({ label: String(LIST_EXITS[k](item, i) ?? i), path: [k, i, 'next'], target: item.next ?? '' }));
    } else if ((k === 'next' || k === 'default' || k.startsWith('on_')) && (typeof v === 'string' || v === null)) {
      out.push({ label: k === 'next' ? 'next' : k, path: [k], target: v ?? '' });
    }
  }
  // Optional exits a type has but the node leaves out (so they can be connected).
  const optional = { voicemail: ['next'], enqueue: ['on_answered', 'on_abandoned', 'on_timeout', 'on_callback'], customer: ['on_not_found'], callback: ['on_refused'] }[node.type] || [];
  for (const k of optional) if (!(k in node)) out.push({ label: k, path: [k], target: '', optional: true });
  return out;
}

/** Sets the exit at `path` to `target` ('' clears an optional exit). */
export function setExit(node, path, target, optional) {
  if (path.length === 1) {
    if (!target && optional) delete node[path[0]];
    else node[path[0]] = target;
    return;
  }
  node[path[0]][path[1]][path[2]] = target;
}

/** Node ids named by validator problems: Map(node -> [messages]); `null` for the flow. */
export function problemsByNode(errors) {
  const m = new Map();
  for (const e of errors || []) {
    const k = e.flow ? null : e.node || null;
    if (!m.has(k)) m.set(k, []);
    m.get(k).push(e.message);
  }
  return m;
}

/** The ids of nodes a simulated trace entered, in order. */
export function visited(trace) {
  const out = [];
  for (const e of (trace && trace.entries) || []) {
    const n = e.node || (e.event && e.event.node) || (e.entered && e.entered.node);
    if (typeof n === 'string') out.push(n);
  }
  return out;
}

/** Parses the test-call steps: `1, 23#, say billing please, wait 3000, queue answered, hangup`. */
export function parseSteps(text) {
  const steps = [];
  for (const raw of text.split(',')) {
    const t = raw.trim();
    if (!t) continue;
    let m;
    if (/^[0-9*#A-D]+$/.test(t)) steps.push({ digits: t });
    else if ((m = /^say\s+(.+)$/i.exec(t))) steps.push({ speech: { text: m[1] } });
    else if ((m = /^wait\s+(\d+)$/i.exec(t))) steps.push({ wait: Number(m[1]) });
    else if ((m = /^queue\s+(\w+)$/i.exec(t))) steps.push({ queue: m[1] });
    else if (/^hang\s*up$/i.test(t)) steps.push('hangup');
    else throw new Error(`Step "${t}" not understood: use digits, "say …", "wait MS", "queue OUTCOME" or "hangup"`);
  }
  return steps;
}
