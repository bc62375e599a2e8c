// The review queue and one review item: the page image with the words behind each field
// outlined, the fields with confidence and provenance, warnings and conflicts; edit, approve,
// reject with a reason, skip. Shortcuts: j/k next/previous, a approve, r reject, e edit,
// s skip.
import { api, blob, query } from './api.js';
import {
  announce, clear, confidenceMeter, formatAge, formatAmount, formatTime, formatValue, h, navigate, s, statusBadge,
} from './dom.js';

const FILTER_KEY = 'docpipe.queueFilter';
const IDS_KEY = 'docpipe.queueIds';
const NUMERIC = new Set(['total_amount', 'sst_amount', 'gst_amount']);
const LABELS = {
  total_amount: 'Total amount', service_date: 'Service date', receipt_number: 'Receipt number', policy_number: 'Policy number',
  member_id: 'Member ID', member_name: 'Member name', provider_name: 'Provider', provider_address: 'Provider address',
  currency: 'Currency', sst_amount: 'SST', gst_amount: 'GST', itemized_charges: 'Items',
};

function label(name) {
  return LABELS[name] || name.replace(/_/g, ' ');
}

function loadFilter() {
  try {
    return JSON.parse(sessionStorage.getItem(FILTER_KEY)) || {};
  } catch (_) {
    return {};
  }
}

// Claims per page of the queue. localStorage 'docpipe.queue_page_size' sets another (the
// browser test pages through a short queue with it).
const queuePage = () => Number(localStorage.getItem('docpipe.queue_page_size')) || 100;

function queuePath(f, limit = queuePage(), offset = 0) {
  const minC = f.min_confidence !== undefined && f.min_confidence !== '' ? Number(f.min_confidence) / 100 : undefined;
  const maxC = f.max_confidence !== undefined && f.max_confidence !== '' ? Number(f.max_confidence) / 100 : undefined;
  const age = { new24: { max_age_hours: 24 }, old1: { min_age_hours: 1 }, old24: { min_age_hours: 24 }, old72: { min_age_hours: 72 } }[f.age] || {};
  return `/api/v1/exceptions${query({ limit, offset: offset || undefined, route: f.route, min_confidence: minC, max_confidence: maxC, provider: f.provider, sort: f.sort || 'created_at', ...age })}`;
}

function savedIds() {
  try {
    return JSON.parse(sessionStorage.getItem(IDS_KEY)) || [];
  } catch (_) {
    return [];
  }
}

function fieldValue(job, name) {
  const f = (job.fields || {})[name];
  return f && typeof f === 'object' && 'value' in f ? f.value : f;
}

function reviewReason(job) {
  const reasons = (job.outcomes || []).filter((o) => o.status === 'review' && o.reason).map((o) => o.reason);
  return [...new Set(reasons)].join('; ') || job.last_error || '';
}

// ---- queue ----------------------------------------------------------------------------

export async function showQueue(main) {
  const f = loadFilter();
  const field = (id, text, control) => h('div', { class: 'field' }, h('label', { for: id }, text), control);
  const select = (id, value, options) => h('select', { id, name: id },
    options.map(([v, t]) => h('option', { value: v, selected: v === (value || '') }, t)));
  const form = h('form', { class: 'filters', 'aria-label': 'Filter the review queue' },
    field('f-route', 'Route', select('f-route', f.route, [['', 'Any'], ['low', 'Low'], ['medium', 'Medium'], ['high', 'High']])),
    field('f-min', 'Confidence from (%)', h('input', { id: 'f-min', type: 'number', min: '0', max: '100', step: '1', value: f.min_confidence ?? '' })),
    field('f-max', 'Confidence to (%)', h('input', { id: 'f-max', type: 'number', min: '0', max: '100', step: '1', value: f.max_confidence ?? '' })),
    field('f-age', 'Age', select('f-age', f.age, [['', 'Any'], ['new24', 'Newer than 24 h'], ['old1', 'Older than 1 h'], ['old24', 'Older than 24 h'], ['old72', 'Older than 3 days']])),
    field('f-provider', 'Provider', h('input', { id: 'f-provider', type: 'search', value: f.provider || '' })),
    field('f-sort', 'Sort by', select('f-sort', f.sort || 'created_at', [['created_at', 'Oldest first'], ['-created_at', 'Newest first'],
      ['confidence', 'Lowest confidence'], ['-confidence', 'Highest confidence'], ['provider', 'Provider A–Z'], ['-amount', 'Largest amount'], ['amount', 'Smallest amount']])),
    h('div', { class: 'field actions' }, h('button', { type: 'submit' }, 'Apply'), h('button', { type: 'reset', class: 'quiet' }, 'Clear')));
  const results = h('div', { class: 'results' });
  main.append(h('h1', {}, 'Review queue'), form, results);

  let rows = [];
  let cursor = 0;
  let loads = 0; // the newest load() draws; an older one still on its way is dropped
  const focusRow = (i) => {
    if (!rows.length) return;
    cursor = Math.max(0, Math.min(rows.length - 1, i));
    rows.forEach((r, n) => r.classList.toggle('cursor', n === cursor));
    rows[cursor].querySelector('a').focus();
  };

  async function load() {
    const mine = ++loads;
    const current = {
      route: form.querySelector('#f-route').value,
      min_confidence: form.querySelector('#f-min').value,
      max_confidence: form.querySelector('#f-max').value,
      age: form.querySelector('#f-age').value,
      provider: form.querySelector('#f-provider').value.trim(),
      sort: form.querySelector('#f-sort').value,
    };
    sessionStorage.setItem(FILTER_KEY, JSON.stringify(current));
    const answer = await api(queuePath(current), { withMeta: true }).catch((e) => { if (mine === loads) throw e; });
    if (mine !== loads) return;
    const { data, meta } = answer;
    clear(results);
    const total = meta.pagination.total;
    const shown = [...data];
    const saveIds = () => sessionStorage.setItem(IDS_KEY, JSON.stringify(shown.map((j) => j.id)));
    saveIds();
    const countText = () => [total === 1 ? '1 claim waits for review' : `${total} claims wait for review`,
      shown.length < total ? ` (first ${shown.length} shown)` : ''];
    const count = h('p', { class: 'count', 'data-count': String(total) }, countText());
    results.append(count);
    if (!data.length) {
      results.append(h('p', { class: 'empty' }, 'Nothing matches these filters.'));
      rows = [];
      announce(`${total} claims in the review queue`);
      return;
    }
    const rowFor = (job, i) => h('tr', { dataset: { id: job.id }, onclick: () => { cursor = i; } },
      h('td', {}, h('a', { href: `#/review/${encodeURIComponent(job.id)}` }, job.filename || job.id)),
      h('td', { class: 'provider' }, formatValue(fieldValue(job, 'provider_name'))),
      h('td', { class: 'num' }, formatAmount(fieldValue(job, 'total_amount'))),
      h('td', {}, confidenceMeter(job.confidence)),
      h('td', {}, job.confidence_level || '—'),
      h('td', { title: formatTime(job.created_ms) }, formatAge(job.created_ms)),
      h('td', { class: 'wrap' }, reviewReason(job)));
    rows = data.map(rowFor);
    const tbody = h('tbody', {}, rows);
    results.append(h('div', { class: 'table-wrap' }, h('table', { class: 'data queue' },
      h('caption', { class: 'sr-only' }, 'Claims waiting for review'),
      h('thead', {}, h('tr', {}, ['Claim', 'Provider', 'Total (RM)', 'Confidence', 'Route', 'Age', 'Why'].map((t) => h('th', { scope: 'col' }, t)))),
      tbody)));
    // The next page of the queue, under the same filters: with more than a page waiting, the
    // rest was reachable only by filtering.
    if (shown.length < total) {
      const moreButton = h('button', { type: 'button', class: 'quiet more' }, 'Show more');
      moreButton.addEventListener('click', async () => {
        moreButton.disabled = true;
        try {
          const next = await api(queuePath(current, queuePage(), shown.length), { withMeta: true });
          if (mine !== loads) return;
          const seen = new Set(shown.map((j) => j.id));
          const fresh = next.data.filter((j) => !seen.has(j.id));  // a claim decided meanwhile shifts the pages
          for (const job of fresh) {
            const row = rowFor(job, rows.length);
            rows.push(row);
            shown.push(job);
            tbody.append(row);
          }
          saveIds();
          clear(count).append(...countText());
          announce(`${fresh.length} more claims shown`);
          if (shown.length >= total || !next.data.length) moreButton.remove();
          else moreButton.disabled = false;
        } catch (e) {
          moreButton.disabled = false;
          showError(e);
        }
      });
      results.append(moreButton);
    }
    results.append(h('p', { class: 'hint' }, 'Keys: j / k move, Enter opens.'));
    announce(`${total} claims in the review queue`);
  }

  form.addEventListener('submit', (e) => { e.preventDefault(); load().catch(showError); });
  form.addEventListener('reset', () => setTimeout(() => { sessionStorage.removeItem(FILTER_KEY); load().catch(showError); }, 0));
  const showError = (e) => { clear(results); results.append(h('p', { class: 'error', role: 'alert' }, e.message)); };
  await load().catch(showError);
  return {
    onKey(event) {
      if (event.key === 'j') { focusRow(document.activeElement && rows.includes(document.activeElement.closest('tr')) ? cursor + 1 : cursor); return true; }
      if (event.key === 'k') { focusRow(cursor - 1); return true; }
      return false;
    },
  };
}

// ---- one item -------------------------------------------------------------------------

function provenanceText(f) {
  const p = f.provenance || {};
  const line = p.text !== undefined ? p : p.chosen && p[p.chosen] ? p[p.chosen] : p.receipt || p.email || null;
  const parts = [];
  if (f.source) parts.push(f.source);
  if (line && line.text !== undefined) parts.push(`line ${line.line ?? '?'}${line.page !== undefined ? ` on page ${line.page + 1}` : ''}: “${line.text}”`);
  if (p.reason) parts.push(p.reason);
  if (p.note) parts.push(p.note);
  if (p.as_written) parts.push(`written as ${p.as_written}`);
  return parts.join(' · ');
}

function parseCorrection(name, text) {
  const t = text.trim();
  if (NUMERIC.has(name)) {
    // Digits with at most two decimals, as a receipt prints an amount: Number() alone took
    // "0x1F" for 31, "1e3" for 1000 and rounded away a third decimal the reviewer typed.
    const written = t.replace(/^(RM|MYR)\s*/i, '');
    // A comma separates thousands only ("1,250.00"): "12,50" was read here as 1250 and by the
    // server as 12.50, so it is refused, as the server refuses it.
    if (written.includes(',') && !/^\d{1,3}(,\d{3})+(\.\d{1,2})?$/.test(written)) {
      throw new Error(`${label(name)}: write decimals with a point (12.50); a comma only separates thousands (1,250.00)`);
    }
    const digits = written.replace(/,/g, '');
    if (!/^(\d+|\d*\.\d{1,2})$/.test(digits)) throw new Error(`${label(name)} must be an amount such as 479.05`);
    return Number(digits);
  }
  if (!t) throw new Error(`${label(name)} cannot be empty`);
  return t;
}

// The page with the field boxes over it, in the page's own pixel coordinates: the OCR'd
// raster's width x height. The image (the raster's PNG preview, scaled by page.image.scale,
// or the original attachment) is stretched over that same box, so the boxes fall on the words
// whatever size the image itself has. A born-digital PDF page (source "pdf") has no raster:
// the API gives the rendered image's own size, and there are no boxes.
function pageView(jobId, doc, page, boxesByField, selected) {
  const w = page.width || 1000, h0 = page.height || 1400;
  const svg = s('svg', { viewBox: `0 0 ${w} ${h0}`, class: 'page', role: 'img', 'aria-label': `Page ${page.index + 1} of ${doc.name || 'the receipt'}` });
  svg.append(s('rect', { x: 0, y: 0, width: w, height: h0, class: 'paper' }));
  const figure = h('figure', { class: 'page-box', dataset: { page: page.index, imageSource: (page.image && page.image.source) || 'none' } }, svg);
  if (page.has_image) {
    const image = s('image', { x: 0, y: 0, width: w, height: h0, preserveAspectRatio: 'none' });
    svg.append(image);
    blob(`/api/v1/exceptions/${encodeURIComponent(jobId)}/documents/${encodeURIComponent(doc.doc_id)}/pages/${page.index}/image`)
      .then((b) => {
        const url = URL.createObjectURL(b);
        image.addEventListener('load', () => { figure.dataset.imageLoaded = 'true'; }, { once: true });
        image.setAttribute('href', url);
        figure.dataset.objectUrl = url;
        // The receipt's own size, for a reader of the page (and the browser test).
        createImageBitmap(b).then((bitmap) => { figure.dataset.naturalSize = `${bitmap.width}x${bitmap.height}`; bitmap.close(); }).catch(() => {});
      })
      .catch((e) => figure.append(h('figcaption', { class: 'error' }, `The page image could not be loaded: ${e.message}`)));
    if (page.image && page.image.source === 'pdf') {
      figure.append(h('figcaption', { class: 'hint' }, 'Rendered from the PDF. Its text was read from the PDF itself, not by OCR, so no words are outlined.'));
    }
  } else {
    figure.append(h('figcaption', { class: 'hint' }, 'No image is stored for this page; the boxes show where the words were read.'));
  }
  for (const [name, boxes] of Object.entries(boxesByField)) {
    for (const b of boxes) {
      if (b.page !== page.index) continue;
      svg.append(s('rect', {
        x: b.x - 3, y: b.y - 3, width: b.width + 6, height: b.height + 6,
        class: `box${name === selected ? ' selected' : ''}`, dataset: { field: name, kind: b.kind },
      }, s('title', {}, label(name))));
    }
  }
  return figure;
}

export async function showItem(main, id) {
  const item = await api(`/api/v1/exceptions/${encodeURIComponent(id)}`);
  const job = item.job;
  let ids = savedIds();
  if (!ids.includes(id)) {
    try {
      ids = (await api(queuePath(loadFilter()))).map((j) => j.id);
    } catch (_) {
      ids = [];
    }
  }
  const pos = ids.indexOf(id);
  const go = (offset) => {
    const target = ids[pos + offset];
    if (target) navigate(`#/review/${encodeURIComponent(target)}`);
    else announce(offset > 0 ? 'This is the last claim in the queue' : 'This is the first claim in the queue');
  };
  // Set when the reviewer has gone to another page. An approve or reject answered after that
  // must not pull them back to this queue: their next click would land on a claim they never
  // chose (a slow server, a quick reviewer).
  let left = false;
  const next = (flash) => {
    if (left) {
      // The queue saved since may differ from this page's copy: only take this claim out of it.
      sessionStorage.setItem(IDS_KEY, JSON.stringify(savedIds().filter((x) => x !== id)));
      return;
    }
    const rest = ids.filter((x) => x !== id);
    sessionStorage.setItem(IDS_KEY, JSON.stringify(rest));
    sessionStorage.setItem('docpipe.flash', flash);
    const target = rest[pos] || rest[pos - 1];
    navigate(target ? `#/review/${encodeURIComponent(target)}` : '#/review');
  };

  const documents = item.documents || [];
  const multi = documents.length > 1;
  // Corrections by document id: with several claim documents (an email with two receipts)
  // each is corrected on its own, since their totals and dates differ.
  const corrections = Object.fromEntries(documents.map((d) => [d.doc_id, {}]));
  const inReview = job.status === 'review';
  const order = ['total_amount', 'service_date', 'receipt_number', 'policy_number', 'member_id', 'member_name', 'provider_name'];
  const namesOf = (d) => {
    const names = [];
    for (const n of Object.keys(d.fields || {})) if (!names.includes(n)) names.push(n);
    for (const m of d.missing || []) for (const n of String(m).split(' or ')) if (!names.includes(n)) names.push(n);
    return names.sort((x, y) => ((order.indexOf(x) + 1) || 99) - ((order.indexOf(y) + 1) || 99));
  };
  // A field is named by its document's position and its name: "0:total_amount".
  const keyOf = (i, name) => `${i}:${name}`;
  const firstNames = documents.length ? namesOf(documents[0]) : [];
  let selected = keyOf(0, firstNames.includes('total_amount') ? 'total_amount' : firstNames[0]);
  // Element ids stay as they were for a one-document claim (edit-total_amount).
  const idOf = (i, name) => (multi ? `${i}-${name}` : name);
  const docName = (d) => d.name || d.doc_id;

  const message = h('p', { class: 'message', role: 'alert' });
  const header = h('div', { class: 'item-head' },
    h('div', {},
      h('h1', {}, job.filename || job.id),
      h('p', { class: 'meta' }, statusBadge(job.status), ` received ${formatTime(job.created_ms)} · confidence `, confidenceMeter(job.confidence),
        ` · route ${job.confidence_level || '—'}`, pos >= 0 ? ` · ${pos + 1} of ${ids.length} in the queue` : '')),
    h('nav', { class: 'pager', 'aria-label': 'Queue position' },
      h('button', { type: 'button', onclick: () => go(-1), disabled: pos <= 0, 'aria-keyshortcuts': 'k' }, '← Previous (k)'),
      h('button', { type: 'button', onclick: () => go(1), disabled: pos < 0 || pos >= ids.length - 1, 'aria-keyshortcuts': 'j' }, 'Next (j) →')));
  main.append(header, message);
  if (!inReview) {
    main.append(h('p', { class: 'notice' }, `This claim is ${job.status} now; it can no longer be approved or rejected here. `,
      h('a', { href: `#/jobs/${encodeURIComponent(job.id)}` }, 'Open the job')));
  }
  if (!documents.length) {
    main.append(h('p', { class: 'empty' }, 'No parked document is stored for this claim.'));
  }

  const layout = h('div', { class: 'item' });
  const pagesCol = h('div', { class: 'pages' });
  const fieldsCol = h('div', { class: 'fields' });
  layout.append(pagesCol, fieldsCol);
  main.append(layout);
  const rowsByKey = {};
  const editors = {};
  const openEdits = {};  // by field key: its editor, input and name, so approve can see an edit left open

  function drawPages() {
    for (const rect of pagesCol.querySelectorAll('rect.box')) {
      rect.classList.toggle('selected', keyOf(rect.closest('figure').dataset.doc, rect.dataset.field) === selected);
    }
  }

  function select(key) {
    selected = key;
    for (const [k, row] of Object.entries(rowsByKey)) row.classList.toggle('selected', k === key);
    drawPages();
  }

  if (multi) {
    fieldsCol.append(h('p', { class: 'notice' }, `This email has ${documents.length} claim documents. Each has its own fields below; `
      + 'a correction applies to that document only.'));
  }
  documents.forEach((doc, i) => {
    const boxes = {};
    for (const [n, f] of Object.entries(doc.fields || {})) boxes[n] = f.boxes || [];
    if (multi) pagesCol.append(h('h2', {}, docName(doc)));
    for (const page of doc.pages || []) {
      const figure = pageView(job.id, doc, page, boxes, null);
      figure.dataset.doc = String(i);
      pagesCol.append(figure);
    }
    const notes = [];
    if (doc.reason) notes.push(h('li', {}, h('strong', {}, 'Why review: '), doc.reason));
    for (const wng of doc.warnings || []) notes.push(h('li', { class: 'warning' }, h('strong', {}, 'Warning: '), wng));
    for (const m of doc.missing || []) notes.push(h('li', { class: 'warning' }, h('strong', {}, 'Missing: '), label(String(m))));
    // Other parts of the email that were not read (encrypted, winmail.dat, a password-protected
    // file in a ZIP): the claim may need them.
    if (doc.skipped_attachments) notes.push(h('li', { class: 'warning' }, h('strong', {}, 'Not read from the email: '), doc.skipped_attachments));
    for (const c of doc.conflicts || []) {
      notes.push(h('li', { class: 'conflict' }, h('strong', {}, `Conflict (${c.kind}) in ${label(c.field)}: `),
        h('bdi', {}, formatValue(c.value)), ' vs ', h('bdi', {}, formatValue(c.other))));
    }
    if (notes.length) {
      fieldsCol.append(h('section', { 'aria-labelledby': `n-${doc.doc_id}` },
        h('h2', { id: `n-${doc.doc_id}` }, multi ? `Warnings and conflicts: ${docName(doc)}` : 'Warnings and conflicts'), h('ul', { class: 'notes' }, notes)));
    }

    const tbody = h('tbody');
    for (const name of namesOf(doc)) {
      const key = keyOf(i, name);
      const id = idOf(i, name);
      const f = (doc.fields || {})[name] || { value: null, confidence: null, source: '', provenance: {} };
      const editable = !Array.isArray(f.value) && inReview;
      const valueCell = h('td', { class: 'value', dataset: { value: name } }, formatValue(f.value));
      const problem = h('p', { class: 'field-error', id: `err-${id}` });
      const input = h('input', { id: `edit-${id}`, type: 'text', inputmode: NUMERIC.has(name) ? 'decimal' : 'text', 'aria-describedby': `err-${id}`, value: f.value === null ? '' : formatValue(f.value) });
      const what = multi ? `${label(name)} of ${docName(doc)}` : label(name);
      const editor = h('div', { class: 'editor', hidden: true },
        h('label', { for: `edit-${id}` }, multi ? `New ${label(name).toLowerCase()} of ${docName(doc)}` : `New ${label(name).toLowerCase()}`), input,
        h('button', { type: 'button', class: 'primary', onclick: () => save() }, 'Keep'),
        h('button', { type: 'button', class: 'quiet', onclick: () => close() }, 'Cancel'));
      const editButton = h('button', { type: 'button', class: 'quiet', onclick: () => open(), disabled: !editable, 'aria-label': `Edit ${what}` }, 'Edit');
      const close = () => { editor.hidden = true; problem.textContent = ''; editButton.focus(); };
      const open = () => { select(key); editor.hidden = false; input.focus(); input.select(); };
      const save = () => {
        try {
          corrections[doc.doc_id][name] = parseCorrection(name, input.value);
        } catch (e) {
          problem.textContent = e.message;
          problem.classList.remove('field-warning');
          return;
        }
        const now = corrections[doc.doc_id][name];
        clear(valueCell).append(h('span', { class: 'corrected' }, formatValue(now)), h('span', { class: 'was' }, ` was ${formatValue(f.value)}`));
        editor.hidden = true;
        // A slipped decimal point ("47905" for 479.05) still parses: say so, without refusing
        // it, when the new amount is far above the one read from the receipt.
        const far = NUMERIC.has(name) && typeof f.value === 'number' && f.value > 0 && now >= 5 * f.value;
        problem.textContent = far ? `${formatValue(now)} is ${Math.round(now / f.value)} times the ${formatValue(f.value)} read from the receipt: check the digits before approving` : '';
        problem.classList.toggle('field-warning', far);
        editButton.focus();
        announce(`${what} corrected to ${formatValue(now)}; approve to send it${far ? '. ' + problem.textContent : ''}`);
      };
      input.addEventListener('keydown', (e) => {
        if (e.key === 'Enter') { e.preventDefault(); save(); }
        if (e.key === 'Escape') { e.preventDefault(); close(); }
      });
      editors[key] = open;
      openEdits[key] = { editor, input, what };
      const row = h('tr', { dataset: { field: name, doc: String(i) }, class: key === selected ? 'selected' : '' },
        h('th', { scope: 'row' }, h('button', { type: 'button', class: 'link', onclick: () => select(key), 'aria-label': `Show ${what} on the page` }, label(name))),
        valueCell,
        h('td', {}, confidenceMeter(f.confidence)),
        h('td', { class: 'wrap prov' }, provenanceText(f)),
        h('td', {}, editButton, editor, problem));
      row.addEventListener('focusin', () => select(key));
      rowsByKey[key] = row;
      tbody.append(row);
    }
    const headingId = multi ? `fields-h-${i}` : 'fields-h';
    fieldsCol.append(h('section', { 'aria-labelledby': headingId, dataset: { doc: String(i), docId: doc.doc_id } },
      h('h2', { id: headingId }, multi ? `Fields: ${docName(doc)}` : 'Fields'),
      h('div', { class: 'table-wrap' }, h('table', { class: 'data fields-table' },
        h('thead', {}, h('tr', {}, ['Field', 'Value', 'Confidence', 'Read from', ''].map((t) => h('th', { scope: 'col' }, t)))), tbody))));
  });
  drawPages();

  // Decisions.
  const notesInput = h('textarea', { id: 'review-notes', rows: '2' });
  const approveButton = h('button', { type: 'button', class: 'primary', disabled: !inReview, 'aria-keyshortcuts': 'a', onclick: () => approve() }, 'Approve (a)');
  const rejectButton = h('button', { type: 'button', class: 'danger', disabled: !inReview, 'aria-keyshortcuts': 'r', onclick: () => openReject() }, 'Reject… (r)');
  const skipButton = h('button', { type: 'button', class: 'quiet', 'aria-keyshortcuts': 's', onclick: () => skip() }, 'Skip (s)');
  fieldsCol.append(h('section', { class: 'decide', 'aria-labelledby': 'decide-h' }, h('h2', { id: 'decide-h' }, 'Decision'),
    h('label', { for: 'review-notes' }, 'Note for the record (optional)'), notesInput,
    h('div', { class: 'buttons' }, approveButton, rejectButton, skipButton),
    h('p', { class: 'hint' }, 'Keys: j / k next / previous · a approve · r reject · e edit the selected field · s skip')));

  const reason = h('textarea', { id: 'reject-reason', rows: '3', 'aria-required': 'true', 'aria-describedby': 'reject-error' });
  const rejectError = h('p', { id: 'reject-error', class: 'field-error' });
  const dialog = h('dialog', { 'aria-labelledby': 'reject-h', class: 'reject-dialog' },
    h('form', { method: 'dialog' },
      h('h2', { id: 'reject-h' }, 'Reject this claim'),
      h('label', { for: 'reject-reason' }, 'Reason (recorded on the job)'), reason, rejectError,
      h('div', { class: 'buttons' },
        h('button', { type: 'submit', class: 'danger', value: 'reject' }, 'Reject'),
        h('button', { type: 'button', class: 'quiet', onclick: () => dialog.close('cancel') }, 'Cancel'))));
  dialog.querySelector('form').addEventListener('submit', (e) => {
    e.preventDefault();
    if (!reason.value.trim()) {
      rejectError.textContent = 'Say why the claim is rejected.';
      reason.focus();
      return;
    }
    reject(reason.value.trim());
  });
  dialog.addEventListener('close', () => { if (dialog.returnValue !== 'done') rejectButton.focus(); });
  main.append(dialog);

  const audit = item.audit || [];
  if (audit.length) main.append(auditList(audit));

  const fail = (e) => {
    message.className = 'message error';
    message.textContent = e.message;
    const details = e.details || {};
    for (const [n, why] of Object.entries(details)) {
      // A job-wide field ("total_amount"), or one document's ("documents.<doc id>.total_amount").
      let id = n;
      const m = /^documents\.([^.]+)\.(.+)$/.exec(n);
      if (m) {
        const i = documents.findIndex((d) => d.doc_id === m[1]);
        if (i < 0) continue;
        id = idOf(i, m[2]);
      }
      const err = document.getElementById(`err-${id}`);
      if (err) err.textContent = String(why);
    }
  };

  // One document: its corrections as the job's `fields`, as before. Several: each under its
  // own id in `documents`, so a correction reaches that document alone.
  function approvalBody() {
    const body = { notes: notesInput.value.trim(), expected_status: 'review' };
    if (!multi) {
      body.fields = documents.length ? corrections[documents[0].doc_id] : {};
      return body;
    }
    body.documents = {};
    for (const d of documents) {
      if (Object.keys(corrections[d.doc_id]).length) body.documents[d.doc_id] = { fields: corrections[d.doc_id] };
    }
    return body;
  }

  async function approve() {
    // The 'a' key as well as the button: a second press while the first approval is on its
    // way sent a second request (expected_status alone stopped it at the server).
    if (!inReview || approveButton.disabled) return;
    // A value typed but not kept is not part of the claim: approving then sent the value read
    // from the receipt while the box showed the correction.
    const unkept = Object.values(openEdits).find((e) => !e.editor.hidden);
    if (unkept) {
      message.className = 'message error';
      message.textContent = `Keep or cancel the edit of ${unkept.what} before approving: the value in its box is not part of the claim yet.`;
      announce(message.textContent);
      unkept.input.focus();
      return;
    }
    approveButton.disabled = true;
    try {
      await api(`/api/v1/exceptions/${encodeURIComponent(job.id)}/approve`, { method: 'POST', body: approvalBody() });
      const n = Object.values(corrections).reduce((sum, c) => sum + Object.keys(c).length, 0);
      announce(`Approved ${job.filename || job.id}${n ? ` with ${n} correction(s)` : ''}`);
      next(`Approved ${job.filename || job.id}${n ? ` with ${n} correction(s)` : ''}.`);
    } catch (e) {
      fail(e);
      approveButton.disabled = false;
    }
  }

  function openReject() {
    if (!inReview) return;
    rejectError.textContent = '';
    dialog.showModal();
    reason.focus();
  }

  async function reject(text) {
    try {
      await api(`/api/v1/exceptions/${encodeURIComponent(job.id)}/reject`, { method: 'POST', body: { reason: text } });
      dialog.close('done');
      announce(`Rejected ${job.filename || job.id}`);
      next(`Rejected ${job.filename || job.id}.`);
    } catch (e) {
      rejectError.textContent = e.message;
    }
  }

  function skip() {
    announce('Skipped');
    go(1);
  }

  const flash = sessionStorage.getItem('docpipe.flash');
  if (flash) {
    sessionStorage.removeItem('docpipe.flash');
    message.className = 'message ok';
    message.textContent = flash;
  }
  approveButton.focus();

  return {
    onKey(event) {
      switch (event.key) {
        case 'j': go(1); return true;
        case 'k': go(-1); return true;
        case 'a': approve(); return true;
        case 'r': openReject(); return true;
        case 's': skip(); return true;
        case 'e': if (selected && editors[selected] && inReview) editors[selected](); return true;
        default: return false;
      }
    },
    leave() {
      left = true;
      for (const fig of pagesCol.querySelectorAll('figure[data-object-url]')) URL.revokeObjectURL(fig.dataset.objectUrl);
    },
  };
}

// Who did what to the job, from the audit trail.
export function auditList(entries) {
  const describe = (e) => {
    const parts = [];
    for (const [field, c] of Object.entries(e.changes || {})) parts.push(`${label(field)}: ${formatValue(c.from)} → ${formatValue(c.to)}`);
    // With several documents, what each one alone had changed (the job-wide ones are above).
    const docs = Object.values(e.documents || {});
    if (docs.length > 1 || (docs.length === 1 && !Object.keys(e.changes || {}).length)) {
      for (const d of docs) {
        for (const [field, c] of Object.entries(d.changes || {})) {
          if (!(e.changes || {})[field]) parts.push(`${d.name || 'document'}: ${label(field)}: ${formatValue(c.from)} → ${formatValue(c.to)}`);
        }
      }
    }
    if (e.reason) parts.push(`reason: ${e.reason}`);
    if (e.notes) parts.push(`note: ${e.notes}`);
    if (e.status_from) parts.push(`${e.status_from} → ${e.status_to}`);
    return parts.join(' · ');
  };
  return h('section', { class: 'panel', 'aria-labelledby': 'audit-h' }, h('h2', { id: 'audit-h' }, 'Actions on this job'),
    h('ol', { class: 'audit' }, entries.map((e) => h('li', { dataset: { action: e.action } },
      h('time', { datetime: e.at }, formatTime(e.at_ms)), ' ', h('strong', {}, e.action.replace(/_/g, ' ')), ' by ',
      h('span', { class: 'who' }, e.by || 'unknown'), ' — ', describe(e)))));
}
