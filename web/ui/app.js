// The app shell and router: history-API routes (the server answers index.html for any
// page path), a role-aware nav, the live-connection indicator. Each page module exports
// `render(main, params, ctx)` and may return a cleanup function.

import { api, session, setUnauthorizedHandler } from './api.js';
import { h, mount, errorBox } from './dom.js';
import * as events from './events.js';

const ROLE_RANK = { engineer: 1, agent: 2, supervisor: 3, admin: 4 };

// path pattern -> [module, minimum role, nav label]
const ROUTES = [
  ['/login', () => import('./pages/login.js'), null],
  ['/agent', () => import('./pages/agent.js'), 'agent', 'Desktop'],
  ['/agent/customers/:id', () => import('./pages/agent.js'), 'agent'],
  ['/inbox', () => import('./pages/inbox.js'), 'agent', 'Inbox'],
  ['/inbox/:id', () => import('./pages/inbox.js'), 'agent'],
  ['/incidents', () => import('./pages/incidents.js'), 'engineer', 'Incidents'],
  ['/incidents/:id', () => import('./pages/incidents.js'), 'engineer'],
  ['/supervisor', () => import('./pages/supervisor.js'), 'supervisor', 'Supervisor'],
  ['/dashboards', () => import('./pages/dashboards.js'), 'supervisor', 'Dashboards'],
  ['/admin', () => import('./pages/admin.js'), 'admin', 'Admin'],
  ['/admin/:tab', () => import('./pages/admin.js'), 'admin'],
  ['/designer', () => import('./pages/designer.js'), 'supervisor', 'IVR designer'],
  ['/designer/:flow', () => import('./pages/designer.js'), 'supervisor'],
];

function match(pattern, path) {
  const a = pattern.split('/').filter(Boolean);
  const b = path.split('/').filter(Boolean);
  if (a.length !== b.length) return null;
  const params = {};
  for (let i = 0; i < a.length; i++) {
    if (a[i].startsWith(':')) params[a[i].slice(1)] = decodeURIComponent(b[i]);
    else if (a[i] !== b[i]) return null;
  }
  return params;
}

export function hasRole(user, role) {
  return !!user && (ROLE_RANK[user.role] || 0) >= (ROLE_RANK[role] || 0);
}

export function navigate(path, { replace = false } = {}) {
  if (replace) history.replaceState(null, '', path);
  else history.pushState(null, '', path);
  route();
}

function home(user) {
  if (!user) return '/login';
  if (user.role === 'engineer') return '/incidents';
  return user.role === 'agent' ? '/agent' : user.role === 'supervisor' ? '/supervisor' : '/admin';
}

let cleanup = null;
let seq = 0;

async function route() {
  const main = document.getElementById('view');
  const user = session.user;
  let path = location.pathname.replace(/\/+$/, '') || '/';
  if (path === '/') { navigate(home(user), { replace: true }); return; }
  if (!user && path !== '/login') { navigate('/login?next=' + encodeURIComponent(location.pathname), { replace: true }); return; }
  const found = ROUTES.map(([p, load, role]) => [match(p, path), load, role]).find(([m]) => m);
  if (typeof cleanup === 'function') cleanup();
  cleanup = null;
  shell(user, path);
  if (!found) { mount(main, h('h1', {}, 'Not found'), h('p', {}, h('a', { href: home(user), 'data-link': '' }, 'Go home'))); return; }
  const [params, load, role] = found;
  if (role && !hasRole(user, role)) {
    mount(main, h('h1', {}, 'Not allowed'), h('p', {}, `This page needs the ${role} role.`));
    return;
  }
  const mine = ++seq;
  try {
    const mod = await load();
    if (mine !== seq) return;
    mount(main);
    cleanup = await mod.render(main, params, { user, navigate });
  } catch (e) {
    mount(main, h('h1', {}, 'Something went wrong'), errorBox(e));
  }
  if (mine === seq && document.activeElement === document.body) main.focus({ preventScroll: true });
}

function shell(user, path) {
  const bar = document.getElementById('topbar');
  bar.hidden = !user;
  if (!user) { events.stop(); return; }
  events.start();
  const nav = document.getElementById('nav');
  mount(nav, ROUTES.filter((r) => r[3] && hasRole(user, r[2])).map(([p, , , label]) =>
    h('a', { href: p, 'data-link': '', 'aria-current': path === p || path.startsWith(p + '/') ? 'page' : null }, label)));
  document.getElementById('whoami').textContent = `${user.name} · ${user.role}`;
}

function showConnection(state, detail) {
  const conn = document.getElementById('conn');
  const banner = document.getElementById('banner');
  conn.className = 'conn ' + state;
  conn.textContent = state === 'open' ? 'Live' : state === 'connecting' ? 'Connecting…' : state === 'down' ? 'Offline' : '';
  conn.title = state === 'open' ? 'Live updates are on' : detail || '';
  if (state === 'down') {
    mount(banner,
      h('strong', {}, 'Live updates are disconnected'), ` — ${detail || 'the server cannot be reached'}. What you see may be out of date. `,
      h('button', { type: 'button', onclick: () => events.retryNow() }, 'Retry now'));
    banner.hidden = false;
  } else {
    banner.hidden = true;
  }
}

async function logout() {
  try { await api('POST', '/auth/logout', {}); } catch { /* token may already be gone */ }
  session.clear();
  events.stop();
  navigate('/login', { replace: true });
}

setUnauthorizedHandler(() => {
  session.clear();
  events.stop();
  navigate('/login?expired=1', { replace: true });
});

document.addEventListener('click', (e) => {
  const a = e.target.closest && e.target.closest('a[data-link]');
  if (!a || e.ctrlKey || e.metaKey || e.shiftKey || e.button !== 0) return;
  e.preventDefault();
  navigate(a.getAttribute('href'));
});
window.addEventListener('popstate', route);
document.getElementById('logout').addEventListener('click', logout);
events.onState(showConnection);
route();
