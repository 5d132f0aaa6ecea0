// The words of a call entry on the agent's timeline (web/ui/pages/callentry.js): pure
// functions, run with plain Node (no browser): `node tests/browser/callentry.test.mjs`.
// Regression (issue 14): call entries left out the agent, the durations, the
// disposition, transfers and supervisors, and the IVR trail showed node ids.

import { callFacts, holdSeconds, trailSteps } from '../../web/ui/pages/callentry.js';

let failed = 0;
function check(name, got, want) {
  const [g, w] = [JSON.stringify(got), JSON.stringify(want)];
  if (g === w) console.log('ok   ' + name);
  else { failed++; console.log(`FAIL ${name}\n  got  ${g}\n  want ${w}`); }
}

// A body as calls/src/call/ivr.rs stores it for an answered queue call.
const body = {
  summary: 'Call through the IVR',
  flow: 'demo',
  queue: {
    queue: 'sales', queue_id: 'q1', outcome: 'answered', wait_s: 12, talk_s: 95,
    agent_id: 'u1', agent_name: 'Alice Agent',
    agents: [{ agent_id: 'u1', agent_name: 'Alice Agent', outcome: 'answered', talk_s: 95 }],
  },
  controls: {
    disposition: 'sale_made',
    events: [
      { at_ms: 1000, action: 'hold' },
      { at_ms: 31000, action: 'unhold' },
      { at_ms: 40000, action: 'supervisor.listen', user_id: 's1', user_name: 'Sam Supervisor' },
      { at_ms: 45000, action: 'supervisor.barge', user_id: 's1', user_name: 'Sam Supervisor' },
      { at_ms: 50000, action: 'hold' },
      { at_ms: 55000, action: 'unhold' },
      { at_ms: 60000, action: 'transfer.blind', to: '1002' },
    ],
  },
  quality: { mos: 4.31, packets_expected: 1000, cumulative_lost: 5, jitter_ms: 3.2 },
  ivr_trail: [
    { type: 'node', node: 'greeting', kind: 'play', label: 'Greeting' },
    { type: 'node', node: 'main_menu', kind: 'menu', label: 'Main menu' },
    { type: 'digits', digits: '1' },
    { type: 'node', node: 'sales_queue', kind: 'enqueue' },
  ],
};

check('hold spans add up', holdSeconds(body.controls.events), 35);
check('facts of an answered queue call', callFacts(body), [
  ['Agent', 'Alice Agent'],
  ['Queue', 'sales — answered'],
  ['Wait', '12 s'],
  ['Talk', '1 min 35 s'],
  ['Hold', '35 s'],
  ['Disposition', 'sale made'],
  ['Transfers', 'blind transfer to 1002'],
  ['Supervisor', 'Sam Supervisor listened; Sam Supervisor barged in'],
  ['Quality', 'MOS 4.3 · jitter 3 ms · 0.5% lost'],
]);
check('trail by labels and choices', trailSteps(body.ivr_trail).map((s) => s.text),
  ['Greeting', 'Main menu', 'Pressed 1', 'sales queue']);
check('a voicemail call without a queue', callFacts({ summary: 'Voicemail left in the IVR', queue: null, controls: { events: [] } }), []);
check('a call that never queued shows no wait', callFacts({ queue: { wait_s: 0, agent_id: null, outcome: 'abandoned' }, controls: { events: [] } }), []);
check('an abandoned queue call', callFacts({ queue: { queue: 'support', outcome: 'abandoned', wait_s: 40, agent_id: null } }),
  [['Queue', 'support — caller hung up while waiting'], ['Wait', '40 s']]);

if (failed) { console.log(`${failed} failed`); process.exit(1); }
