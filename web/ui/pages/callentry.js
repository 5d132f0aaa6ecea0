// What a call entry on the timeline says, from the call interaction's JSON body (what
// the server stored when the call ended: `queue`, `controls`, `quality`, `ivr_trail`).
// Pure functions (no DOM), so they are tested on their own (tests/browser/callentry.test.mjs);
// agent.js renders them.

const seconds = (s) => {
  const n = Math.max(0, Math.round(Number(s) || 0));
  return n >= 60 ? `${Math.floor(n / 60)} min ${n % 60} s` : `${n} s`;
};

const OUTCOMES = {
  answered: 'answered', abandoned: 'caller hung up while waiting', timeout: 'waited too long',
  callback: 'callback requested', voicemail: 'sent to voicemail', no_queue: 'no queue',
};

/** Seconds on hold: the spans between each `hold` and the next `unhold` of the call's controls. */
export function holdSeconds(events) {
  let total = 0;
  let since = null;
  for (const e of events || []) {
    if (e.action === 'hold' && since === null) since = e.at_ms;
    else if (e.action === 'unhold' && since !== null) { total += Math.max(0, e.at_ms - since); since = null; }
  }
  return Math.round(total / 1000);
}

const who = (e) => e.user_name || e.to || e.address || e.number || '';

/** The transfers of a call, in words, in order. */
export function transfers(events) {
  const words = {
    'transfer.blind': 'blind transfer to', 'transfer.consult': 'consulted', 'transfer.answered': 'transfer answered by',
    'transfer.complete': 'transferred to', 'transfer.cancel': 'consultation cancelled with', 'transfer.failed': 'transfer failed to',
  };
  return (events || []).filter((e) => words[e.action]).map((e) => `${words[e.action]} ${who(e)}`.trim());
}

/** Supervisor interventions (listen, whisper, barge, take over), in words, in order. */
export function interventions(events) {
  const words = { listen: 'listened', whisper: 'whispered', barge: 'barged in', take_over: 'took over' };
  return (events || []).filter((e) => /^supervisor\.(listen|whisper|barge|take_over)$/.test(e.action))
    .map((e) => `${e.user_name || 'a supervisor'} ${words[e.action.slice('supervisor.'.length)]}`);
}

/** [label, text] pairs for the facts of a call: agent, queue, wait/talk/hold, disposition, transfers, supervisors, quality. */
export function callFacts(b) {
  const facts = [];
  const q = b && b.queue && typeof b.queue === 'object' ? b.queue : null;
  const c = b && b.controls && typeof b.controls === 'object' ? b.controls : {};
  const events = Array.isArray(c.events) ? c.events : [];
  if (q && q.queue) {
    if (q.agent_id) facts.push(['Agent', q.agent_name || 'an agent']);
    if (q.queue) facts.push(['Queue', `${q.queue}${q.outcome ? ' — ' + (OUTCOMES[q.outcome] || q.outcome) : ''}`]);
    facts.push(['Wait', seconds(q.wait_s)]);
    if (q.agent_id) facts.push(['Talk', seconds(q.talk_s)]);
  }
  const hold = holdSeconds(events);
  if (hold || events.some((e) => e.action === 'hold')) facts.push(['Hold', seconds(hold)]);
  if (c.disposition) facts.push(['Disposition', String(c.disposition).replace(/_/g, ' ')]);
  const t = transfers(events);
  if (t.length) facts.push(['Transfers', t.join('; ')]);
  const s = interventions(events);
  if (s.length) facts.push(['Supervisor', s.join('; ')]);
  const ql = b && b.quality;
  if (ql && ql.mos) {
    const lost = ql.packets_expected ? ` · ${(100 * (ql.cumulative_lost || 0) / ql.packets_expected).toFixed(1)}% lost` : '';
    const jitter = ql.jitter_ms !== undefined && ql.jitter_ms !== null ? ` · jitter ${Number(ql.jitter_ms).toFixed(0)} ms` : '';
    facts.push(['Quality', `MOS ${Number(ql.mos).toFixed(1)}${jitter}${lost}`]);
  }
  return facts;
}

/** One IVR trail line in words: the node's label (or its id made readable), the caller's choices. */
export function trailText(t) {
  switch (t.type) {
    case 'node': return t.label || String(t.node || '').replace(/[_-]+/g, ' ');
    case 'digits': return `Pressed ${t.digits}`;
    case 'speech': return `Said “${t.text}”`;
    case 'no_input': return 'No answer';
    case 'no_match': return `Not understood: ${t.input}`;
    case 'queue': return `Queue: ${OUTCOMES[t.outcome] || t.outcome}`;
    default: return String(t.type || '').replace(/_/g, ' ');
  }
}

/**
 * The trail as steps a person reads: each node by its label, and what the caller did
 * there, "Main menu → pressed 1 → Sales queue". Returns [{text, kind}] (kind: node or
 * input).
 */
export function trailSteps(trail) {
  return (Array.isArray(trail) ? trail : []).map((t) => ({
    kind: t.type === 'node' ? 'node' : 'input',
    text: trailText(t),
    node: t.type === 'node' ? t.node : null,
  }));
}
