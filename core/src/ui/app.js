// The review UI's shell: sign-in, navigation, routing (#/dashboard, #/review, #/review/<id>,
// #/jobs, #/jobs/<id>) and the keyboard shortcuts' dispatch to the current view.
import { hasKey, keyLabel, signIn, signOut } from './api.js';
import { announce, clear, h, navigate } from './dom.js';
import { showDashboard } from './dashboard.js';
import { showQueue, showItem } from './review.js';
import { showJobs, showJob } from './jobs.js';

const main = document.getElementById('main');
let current = null; // the view on screen: {onKey?(event) -> bool, leave?()}
let signOutReason = '';
let routes = 0; // counts route() calls: a view whose route was overtaken by a newer one is dropped
let routedHash = null; // the hash route() drew last (the hashchange after navigate() brings the same)

function showSignIn(message) {
  document.getElementById('topbar').hidden = true;
  clear(main);
  const input = h('input', { id: 'key', name: 'key', type: 'password', autocomplete: 'off', required: true, spellcheck: 'false', 'aria-describedby': 'key-help sign-in-error' });
  const problem = h('p', { id: 'sign-in-error', class: 'error', role: 'alert' }, message || '');
  const button = h('button', { type: 'submit', class: 'primary' }, 'Sign in');
  const form = h('form', { class: 'sign-in', 'aria-labelledby': 'sign-in-title' },
    h('h1', { id: 'sign-in-title' }, 'docpipe review'),
    h('label', { for: 'key' }, 'Admin key'),
    input,
    h('p', { id: 'key-help', class: 'hint' }, 'Kept in this browser tab only, and sent to the server in a header.'),
    problem,
    button);
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    problem.textContent = '';
    button.disabled = true;
    try {
      await signIn(input.value.trim());
      input.value = '';
      if (!location.hash || location.hash === '#/' || location.hash === '#/sign-in') navigate('#/dashboard');
      else route();
    } catch (e) {
      problem.textContent = e.message;
      input.focus();
      input.select();
    } finally {
      button.disabled = false;
    }
  });
  main.append(form);
  input.focus();
}

function setNav(section) {
  const bar = document.getElementById('topbar');
  bar.hidden = false;
  document.getElementById('who').textContent = `Signed in as ${keyLabel() || 'admin'}`;
  for (const link of bar.querySelectorAll('nav a')) {
    if (link.dataset.section === section) link.setAttribute('aria-current', 'page');
    else link.removeAttribute('aria-current');
  }
}

// Draws the view the hash names. Views load over the network, so a route can be overtaken by
// the next one (a key pressed again, a link followed) before its data arrives: each view
// therefore draws into its own element, which a newer route takes off the page, and only the
// newest route's view gets the keys. The element is aria-busy until its view is ready.
async function route() {
  const mine = ++routes;
  routedHash = location.hash;
  if (current && current.leave) current.leave();
  current = null;
  if (!hasKey()) {
    const reason = signOutReason;
    signOutReason = '';
    showSignIn(reason);
    return;
  }
  const parts = location.hash.replace(/^#\/?/, '').split('/').map(decodeURIComponent);
  const [section, id] = parts;
  const view = h('div', { class: 'view', 'aria-busy': 'true', dataset: { route: location.hash } });
  clear(main).append(view);
  let shown;
  try {
    if (section === 'review' && id) {
      setNav('review');
      shown = await showItem(view, id);
    } else if (section === 'review') {
      setNav('review');
      shown = await showQueue(view);
    } else if (section === 'jobs' && id) {
      setNav('jobs');
      shown = await showJob(view, id);
    } else if (section === 'jobs') {
      setNav('jobs');
      shown = await showJobs(view);
    } else {
      setNav('dashboard');
      shown = await showDashboard(view);
    }
  } catch (e) {
    if (mine !== routes || !hasKey()) return; // overtaken, or signed out meanwhile (the sign-out event redraws)
    clear(view);
    view.append(h('div', { class: 'panel' }, h('h1', {}, 'Something went wrong'), h('p', { class: 'error', role: 'alert' }, e.message)));
    shown = {};
  }
  if (mine !== routes) { // overtaken while loading: its element is off the page already
    if (shown && shown.leave) shown.leave();
    return;
  }
  current = shown;
  view.setAttribute('aria-busy', 'false');
}

document.getElementById('signout').addEventListener('click', () => {
  signOut();
  announce('Signed out');
  location.hash = '#/sign-in';
  route();
});

document.querySelector('.skip').addEventListener('click', (event) => {
  event.preventDefault();
  main.focus();
});

window.addEventListener('docpipe:signed-out', (event) => {
  signOutReason = event.detail;
  route();
});

// navigate() (dom.js) routes at once; the browser's hashchange for it comes a task later and
// finds that hash drawn already. Links, Back and Forward arrive only as hashchange.
window.addEventListener('docpipe:navigate', route);
window.addEventListener('hashchange', () => {
  if (location.hash !== routedHash) route();
});

// Shortcuts belong to the view; none fires while typing in a field or with a modifier.
document.addEventListener('keydown', (event) => {
  if (event.ctrlKey || event.metaKey || event.altKey) return;
  const t = event.target;
  if (t && (t.isContentEditable || ['INPUT', 'TEXTAREA', 'SELECT'].includes(t.tagName))) return;
  if (document.querySelector('dialog[open]')) return;
  if (current && current.onKey && current.onKey(event)) event.preventDefault();
});

route();
