// The admin API as the UI uses it. The key lives in sessionStorage (gone when the tab
// closes) and travels only in the X-API-Key header: never in a URL, so it cannot leak
// through history, logs or a Referer. Because the API accepts the key only from a header
// that a page on another site cannot make a browser attach, cross-site request forgery has
// nothing to ride on (there are no cookies).

const KEY = 'docpipe.adminKey';
const LABEL = 'docpipe.keyLabel';

export class ApiError extends Error {
  constructor(status, code, message, details) {
    super(message);
    this.status = status;
    this.code = code;
    this.details = details || {};
  }
}

export function hasKey() {
  return !!sessionStorage.getItem(KEY);
}

export function keyLabel() {
  return sessionStorage.getItem(LABEL) || '';
}

export function signOut() {
  sessionStorage.removeItem(KEY);
  sessionStorage.removeItem(LABEL);
}

async function errorOf(response) {
  let body = null;
  try {
    body = await response.json();
  } catch (_) {
    // not JSON: fall through to a generic message
  }
  const e = body && body.error ? body.error : {};
  return new ApiError(response.status, e.code || `HTTP_${response.status}`, e.message || `the server answered ${response.status}`, e.details);
}

async function send(path, options, key) {
  // X-Docpipe-Client: the audit trail says an action came from this UI, not a script.
  const headers = { 'X-API-Key': key, Accept: 'application/json', 'X-Docpipe-Client': 'review-ui' };
  if (options.body !== undefined) headers['Content-Type'] = 'application/json';
  let response;
  try {
    response = await fetch(path, {
      method: options.method || 'GET',
      headers,
      body: options.body !== undefined ? JSON.stringify(options.body) : undefined,
      cache: 'no-store',
      credentials: 'omit',
    });
  } catch (_) {
    throw new ApiError(0, 'NETWORK', 'The docpipe server cannot be reached. Check that it is running and try again.');
  }
  return response;
}

// Checks a key against the server; stores it (and its label) when it is accepted.
export async function signIn(key) {
  const response = await send('/api/v1/session', {}, key);
  if (response.status === 401 || response.status === 403) {
    throw new ApiError(response.status, 'BAD_KEY', 'That admin key was not accepted. Check it for typos, or ask whoever runs docpipe for a key.');
  }
  if (!response.ok) throw await errorOf(response);
  const body = await response.json();
  sessionStorage.setItem(KEY, key);
  sessionStorage.setItem(LABEL, body.data.label || '');
  return body.data.label;
}

function currentKey() {
  const key = sessionStorage.getItem(KEY);
  if (!key) throw new ApiError(401, 'SIGNED_OUT', 'Sign in with your admin key.');
  return key;
}

function signedOutBy(response) {
  if (response.status === 401 || response.status === 403) {
    signOut();
    window.dispatchEvent(new CustomEvent('docpipe:signed-out', { detail: 'Your key is no longer accepted; sign in again.' }));
    return true;
  }
  return false;
}

// The `data` of a JSON answer (and its `meta` as a second property when asked).
export async function api(path, options = {}) {
  const response = await send(path, options, currentKey());
  if (signedOutBy(response)) throw new ApiError(response.status, 'SIGNED_OUT', 'Your key is no longer accepted; sign in again.');
  if (!response.ok) throw await errorOf(response);
  const body = await response.json();
  return options.withMeta ? { data: body.data, meta: body.meta } : body.data;
}

// A JSON document that is not in the API envelope (/health/detailed).
export async function rawJson(path) {
  const response = await send(path, {}, currentKey());
  if (signedOutBy(response)) throw new ApiError(response.status, 'SIGNED_OUT', 'Sign in again.');
  return response.json();
}

export async function blob(path) {
  const response = await send(path, {}, currentKey());
  if (signedOutBy(response)) throw new ApiError(response.status, 'SIGNED_OUT', 'Sign in again.');
  if (!response.ok) throw await errorOf(response);
  return response.blob();
}

export function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== '') q.set(k, v);
  const text = q.toString();
  return text ? `?${text}` : '';
}
