// What every browser test file shares: where the binary, Chromium and the artefacts are,
// and starting the real `parley` binary on loopback with ephemeral ports and a fresh
// SQLite data directory (the demo tenant's one-time passwords are read from its output).

import { spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { tmpdir } from 'node:os';
import { join, dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const here = dirname(fileURLToPath(import.meta.url));
export const root = resolve(here, '../..');
export const BIN = process.env.PARLEY_BIN || join(process.env.CARGO_TARGET_DIR || join(root, 'target'), 'debug/parley');
export const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
export const ARTIFACTS = resolve(process.env.ARTIFACTS || join(here, 'artifacts'));

export function assert(cond, msg) { if (!cond) throw new Error('assertion failed: ' + msg); }
export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/**
 * Starts `parley serve --demo` in a temporary directory (`tag` names it) with `env` on top of
 * the defaults. Resolves once it listens, with `{ child, dir, log, http, sip, passwords
 * (email -> password), sipAccounts (email -> { extension, password }), sipPasswords
 * (extension -> password) }`.
 */
export async function startParley(tag, env = {}) {
  const dir = mkdtempSync(join(tmpdir(), `parley-${tag}-`));
  const base = { ...process.env };
  delete base.DATABASE_URL; // SQLite in the temporary data directory
  const child = spawn(BIN, ['serve', '--demo'], {
    cwd: dir,
    env: {
      ...base,
      PARLEY_DATA_DIR: join(dir, 'data'),
      PARLEY_HTTP_ADDR: '127.0.0.1:0',
      PARLEY_SIP_ADDR: '127.0.0.1:0',
      PARLEY_LOGIN_ATTEMPTS_PER_MINUTE: '1000',
      // No demo history (dashboards.spec.mjs asks for it): its conversations would fill the inbox.
      PARLEY_DEMO_HISTORY_DAYS: '0',
      RUST_LOG: process.env.RUST_LOG || 'warn,parley=info',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const log = [];
  child.stderr.on('data', (d) => log.push(d.toString()));
  const p = { child, dir, log, passwords: {}, sipAccounts: {}, sipPasswords: {}, sip: null, http: null };
  const lines = createInterface({ input: child.stdout });
  await new Promise((ok, fail) => {
    const timer = setTimeout(() => fail(new Error('parley did not start in 60 s\n' + log.join(''))), 60000);
    child.on('exit', (code) => fail(new Error(`parley exited (${code})\n${log.join('')}`)));
    lines.on('line', (line) => {
      log.push(line + '\n');
      const m = /(\S+@demo\.parley\.test)\s+password: (\S+)/.exec(line);
      if (m) p.passwords[m[1]] = m[2];
      const e = /(\S+@demo\.parley\.test)\s.*SIP extension (\S+) password: (\S+)/.exec(line);
      if (e) p.sipAccounts[e[1]] = { extension: e[2], password: e[3] };
      const x = /SIP extension (\d+) password: (\S+)/.exec(line);
      if (x) p.sipPasswords[x[1]] = x[2];
      const s = /^SIP listening on .*udp:(\S+)/.exec(line);
      if (s) p.sip = s[1];
      const h = /^Parley listening on (\S+)/.exec(line);
      if (h) { p.http = h[1]; clearTimeout(timer); ok(); }
    });
  });
  return p;
}
