// The API client: bearer token from the login, JSON in and out, structured errors.
// Every page talks to the server through `api` (or `apiRaw` for files).

const TOKEN_KEY = 'parley.token';
const USER_KEY = 'parley.user';

/** An error answered by the API: `{"error": {code, message, field, details}}`. */
export class ApiError extends Error {
  constructor(status, body) {
    const e = (body && body.error) || {};
    super(e.message || `HTTP ${status}`);
    this.status = status;
    this.code = e.code || (status === 0 ? 'network' : 'http_' + status);
    this.field = e.field || null;
    this.details = e.details || null;
  }
}

export const session = {
  get token() { return localStorage.getItem(TOKEN_KEY); },
  get user() {
    try { return JSON.parse(localStorage.getItem(USER_KEY) || 'null'); } catch { return null; }
  },
  set(token, user) {
    localStorage.setItem(TOKEN_KEY, token);
    localStorage.setItem(USER_KEY, JSON.stringify(user));
  },
  clear() {
    localStorage.removeItem(TOKEN_KEY);
    localStorage.removeItem(USER_KEY);
  },
};

/** Called when the server says the token is no longer good (set by the app shell). */
let onUnauthorized = () => {};
export function setUnauthorizedHandler(f) { onUnauthorized = f; }

async function send(method, path, body, headers) {
  const h = { ...headers };
  if (session.token) h.authorization = 'Bearer ' + session.token;
  let res;
  try {
    res = await fetch('/api/v1' + path, { method, headers: h, body });
  } catch (e) {
    throw new ApiError(0, { error: { code: 'network', message: 'The server cannot be reached (' + e.message + ')' } });
  }
  if (res.status === 401 && session.token && path !== '/auth/login') {
    onUnauthorized();
  }
  if (!res.ok) {
    let payload = null;
    try { payload = await res.json(); } catch { /* not JSON */ }
    throw new ApiError(res.status, payload);
  }
  return res;
}

/** JSON request; resolves to the parsed body (null for 204). */
export async function api(method, path, body) {
  const headers = {};
  let payload;
  if (body !== undefined) {
    headers['content-type'] = 'application/json';
    payload = JSON.stringify(body);
  }
  const res = await send(method, path, payload, headers);
  if (res.status === 204) return null;
  const text = await res.text();
  return text ? JSON.parse(text) : null;
}

/** Raw request (file upload / download); resolves to the Response. */
export function apiRaw(method, path, body, contentType) {
  return send(method, path, body, contentType ? { 'content-type': contentType } : {});
}

export const get = (p) => api('GET', p);
export const post = (p, b) => api('POST', p, b === undefined ? {} : b);
export const put = (p, b) => api('PUT', p, b);
export const patch = (p, b) => api('PATCH', p, b);
export const del = (p) => api('DELETE', p);

/** `?a=1&b=2` from an object, leaving out empty values. */
export function qs(params) {
  const u = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== '') u.set(k, v);
  const s = u.toString();
  return s ? '?' + s : '';
}

export const enc = encodeURIComponent;
