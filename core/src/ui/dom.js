// DOM helpers. Every piece of data reaches the page as a text node or an attribute value set
// through the DOM API, never as HTML: a provider called `<img src=x onerror=alert(1)>` is
// shown as those characters. No code in the UI parses a string as markup.

const SVG_NS = 'http://www.w3.org/2000/svg';

// Bidirectional controls, zero-width and other invisible characters and the byte-order mark in
// data (an email body, a value read from a receipt) turn the text around them or look like
// nothing: a policy number "POL" + U+202E + "123" read reversed, and reversed the words after
// it on its line; "MEM" + U+2060 + "123" looked like MEM123. (The server refuses the same set
// in a reviewer's corrections: plugins/claims/field_check.cpp; the test
// ClaimCorrections.TheInvisibleCharactersRefusedAreTheOnesTheReviewPagesShow keeps the two equal.)
// They are shown as their code points instead, wherever data becomes text on the page.
const INVISIBLE = /[\u00AD\u034F\u061C\u115F\u1160\u180E\u200B-\u200F\u202A-\u202E\u2060-\u2064\u2066-\u2069\u3164\uFEFF\uFFA0\uFFF9-\uFFFB]/g;
export function visible(text) {
  return String(text).replace(INVISIBLE, (c) => `<U+${c.codePointAt(0).toString(16).toUpperCase().padStart(4, '0')}>`);
}

function build(el, attrs, children) {
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith('on') && typeof value === 'function') {
      el.addEventListener(name.slice(2), value);
    } else if (name === 'class') {
      el.setAttribute('class', value);
    } else if (name === 'text') {
      el.textContent = visible(value);
    } else if (name === 'dataset') {
      for (const [k, v] of Object.entries(value)) el.dataset[k] = String(v);
    } else if (value === true) {
      el.setAttribute(name, '');
    } else {
      el.setAttribute(name, String(value));
    }
  }
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(visible(child)));
  }
  return el;
}

// h('p', {class: 'x'}, 'text', h('b', {}, 'bold'))
export function h(tag, attrs, ...children) {
  return build(document.createElement(tag), attrs, children);
}

export function s(tag, attrs, ...children) {
  return build(document.createElementNS(SVG_NS, tag), attrs, children);
}

export function clear(el) {
  while (el.firstChild) el.removeChild(el.firstChild);
  return el;
}

// Goes to the view `hash` names (#/review/<id>) now. Setting location.hash alone leaves the old
// view on screen until the browser's hashchange event, which comes a task later: on a busy page
// (page images decoding) that is a tenth of a second or more, and a key pressed meanwhile would
// still act on the old view, e.g. open its reject dialog just before the route change removes
// it. The shell (app.js) routes on this event and skips the hashchange that follows.
export function navigate(hash) {
  if (location.hash === hash) return;
  location.hash = hash;
  window.dispatchEvent(new Event('docpipe:navigate'));
}

// Polite announcement for screen readers (and the test's view of what happened).
export function announce(message) {
  const region = document.getElementById('status');
  if (!region) return;
  region.textContent = '';
  setTimeout(() => { region.textContent = message; }, 20);
}

export function formatNumber(n) {
  return typeof n === 'number' && Number.isFinite(n) ? n.toLocaleString('en-GB') : '—';
}

export function formatPercent(x) {
  return typeof x === 'number' && Number.isFinite(x) ? `${(x * 100).toFixed(1)}%` : '—';
}

export function formatAmount(x) {
  return typeof x === 'number' && Number.isFinite(x) ? x.toFixed(2) : '—';
}

export function formatTime(ms) {
  if (typeof ms === 'string') ms = Date.parse(ms);
  if (typeof ms !== 'number' || !Number.isFinite(ms) || ms <= 0) return '—';
  const d = new Date(ms);
  const pad = (n) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

export function formatAge(ms) {
  if (typeof ms !== 'number' || ms <= 0) return '—';
  const minutes = Math.max(0, Math.round((Date.now() - ms) / 60000));
  if (minutes < 60) return `${minutes} min`;
  const hours = Math.round(minutes / 60);
  if (hours < 48) return `${hours} h`;
  return `${Math.round(hours / 24)} d`;
}

// A field's value as a person reads it.
export function formatValue(v) {
  if (v === null || v === undefined) return '—';
  if (typeof v === 'number') return Number.isInteger(v) ? String(v) : v.toFixed(2);
  if (typeof v === 'string') return v;
  if (Array.isArray(v)) {
    return v.map((x) => (x && typeof x === 'object' && 'description' in x ? `${x.description}: ${formatValue(x.amount)}` : formatValue(x))).join('; ');
  }
  return JSON.stringify(v);
}

export function statusBadge(status) {
  return h('span', { class: `badge badge-${String(status).replace(/[^a-z_]/g, '')}` }, status);
}

export function confidenceMeter(c) {
  const pct = typeof c === 'number' ? Math.round(c * 100) : null;
  const level = pct === null ? 'none' : pct >= 90 ? 'high' : pct >= 75 ? 'medium' : 'low';
  return h('span', { class: `conf conf-${level}` },
    h('meter', { min: '0', max: '1', value: typeof c === 'number' ? String(c) : '0', 'aria-hidden': 'true' }),
    h('span', {}, pct === null ? '—' : `${pct}%`));
}
