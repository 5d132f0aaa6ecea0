// Login: tenant, email, password -> bearer token kept in localStorage.

import { api, session } from '../api.js';
import { h, mount, act, field, values } from '../dom.js';

export function render(main, _params, { navigate }) {
  const q = new URLSearchParams(location.search);
  const out = h('div', { id: 'login-error' });
  const btn = h('button', { type: 'submit', class: 'primary' }, 'Log in');
  const form = h('form', { class: 'card login', id: 'login-form' },
    h('h1', {}, 'Parley'),
    h('p', { class: 'muted' }, 'Sign in to your contact center.'),
    q.get('expired') ? h('p', { class: 'warn' }, 'Your session ended. Please sign in again.') : null,
    field('Tenant', h('input', { name: 'tenant', value: 'demo', required: true, autocomplete: 'organization' })),
    field('Email', h('input', { name: 'email', type: 'email', required: true, autocomplete: 'username', autofocus: true })),
    field('Password', h('input', { name: 'password', type: 'password', required: true, autocomplete: 'current-password' })),
    out, btn);
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    act(btn, out, async () => {
      const r = await api('POST', '/auth/login', values(form));
      session.set(r.token, r.user);
      const next = q.get('next');
      navigate(next && next.startsWith('/') && next !== '/login' ? next : '/', { replace: true });
    });
  });
  mount(main, h('div', { class: 'center' }, form));
  form.querySelector('[name=email]').focus();
}
