// Jobs: a searchable list, and one job's detail with its timeline, references, dead-letter
// reason and retry, and the reviewers' actions on it.
import { api, query } from './api.js';
import { announce, clear, confidenceMeter, formatAmount, formatTime, formatValue, h, statusBadge } from './dom.js';
import { auditList } from './review.js';

const STATUSES = ['', 'received', 'processing', 'extracted', 'submitted', 'review', 'approved', 'rejected', 'failed', 'skipped', 'partial'];
const PAGE = 50;

function value(job, name) {
  const f = (job.fields || {})[name];
  return f && typeof f === 'object' && 'value' in f ? f.value : f;
}

export async function showJobs(main) {
  const saved = JSON.parse(sessionStorage.getItem('docpipe.jobsFilter') || '{}');
  const search = h('input', { id: 'j-q', type: 'search', value: saved.q || '', placeholder: 'file, email id, provider, NCB reference…' });
  const status = h('select', { id: 'j-status' }, STATUSES.map((st) => h('option', { value: st, selected: st === (saved.status || '') }, st || 'Any')));
  const form = h('form', { class: 'filters', role: 'search', 'aria-label': 'Search jobs' },
    h('div', { class: 'field grow' }, h('label', { for: 'j-q' }, 'Search'), search),
    h('div', { class: 'field' }, h('label', { for: 'j-status' }, 'Status'), status),
    h('div', { class: 'field actions' }, h('button', { type: 'submit' }, 'Search')));
  const results = h('div', { class: 'results' });
  main.append(h('h1', {}, 'Jobs'), form, results);
  let offset = 0;
  let loads = 0; // the newest load() draws; an older one still on its way is dropped

  async function load() {
    const mine = ++loads;
    sessionStorage.setItem('docpipe.jobsFilter', JSON.stringify({ q: search.value.trim(), status: status.value }));
    const answer = await api(`/api/v1/jobs${query({ q: search.value.trim(), status: status.value, limit: PAGE, offset })}`, { withMeta: true })
      .catch((e) => { if (mine === loads) throw e; });
    if (mine !== loads) return;
    const { data, meta } = answer;
    clear(results);
    const total = meta.pagination.total;
    results.append(h('p', { class: 'count', 'data-count': String(total) }, `${total} job${total === 1 ? '' : 's'}`,
      total > PAGE ? ` — ${offset + 1} to ${Math.min(total, offset + PAGE)} shown` : ''));
    if (!data.length) {
      results.append(h('p', { class: 'empty' }, 'No job matches.'));
      return;
    }
    results.append(h('div', { class: 'table-wrap' }, h('table', { class: 'data jobs' },
      h('caption', { class: 'sr-only' }, 'Jobs'),
      h('thead', {}, h('tr', {}, ['Job', 'Status', 'Provider', 'Total (RM)', 'Confidence', 'Received', 'NCB reference'].map((t) => h('th', { scope: 'col' }, t)))),
      h('tbody', {}, data.map((job) => h('tr', { dataset: { id: job.id } },
        h('td', {}, h('a', { href: `#/jobs/${encodeURIComponent(job.id)}` }, job.filename || job.id)),
        h('td', {}, statusBadge(job.status)),
        h('td', { class: 'provider' }, formatValue(value(job, 'provider_name'))),
        h('td', { class: 'num' }, formatAmount(value(job, 'total_amount'))),
        h('td', {}, confidenceMeter(job.confidence)),
        h('td', {}, formatTime(job.created_ms)),
        h('td', {}, (job.references || {}).ncb_claim_reference || '—')))))));
    const pager = h('div', { class: 'buttons' });
    if (offset > 0) pager.append(h('button', { type: 'button', onclick: () => { offset = Math.max(0, offset - PAGE); load().catch(showError); } }, '← Newer'));
    if (offset + PAGE < total) pager.append(h('button', { type: 'button', onclick: () => { offset += PAGE; load().catch(showError); } }, 'Older →'));
    results.append(pager);
    announce(`${total} jobs`);
  }
  const showError = (e) => { clear(results); results.append(h('p', { class: 'error', role: 'alert' }, e.message)); };
  form.addEventListener('submit', (e) => { e.preventDefault(); offset = 0; load().catch(showError); });
  await load().catch(showError);
  return {};
}

// Which step of the claims pipeline a node call was, from its component.
function stage(component) {
  const c = String(component || '');
  if (c.startsWith('source.')) return 'received';
  if (c === 'transform.dedup') return 'checked for duplicates';
  if (c === 'transform.mime') return 'attachments';
  if (c === 'transform.pdf_pages') return 'pages';
  if (c === 'transform.preprocess') return 'page clean-up';
  if (c.startsWith('ocr.')) return 'OCR';
  if (c === 'transform.claims') return 'claims';
  if (c === 'transform.claims_reread') return 're-read check';
  if (c === 'transform.confidence_router') return 'routed';
  if (c === 'sink.ncb') return 'submitted to NCB';
  if (c === 'sink.review') return 'review queue';
  if (c === 'sink.sheets') return 'Sheets row';
  if (c === 'sink.drive') return 'Drive archive';
  return c.replace(/^[a-z]+\./, '');
}

function timeline(job, audit) {
  const events = [{ at: job.created_ms, what: 'received', node: job.source || '', detail: job.filename || '', outcome: 'ok' }];
  for (const t of job.trace || []) {
    events.push({ at: t.start_ms, what: stage(t.component), node: t.node, ms: t.ms, outcome: t.outcome, detail: t.detail || '', attempt: t.attempt, doc: t.doc_id });
  }
  for (const a of audit) events.push({ at: a.at_ms, what: `${a.action.replace(/_/g, ' ')} by ${a.by || 'unknown'}`, node: a.via || '', outcome: 'ok', detail: a.reason || a.notes || '' });
  events.sort((x, y) => (x.at || 0) - (y.at || 0));
  return h('ol', { class: 'timeline' }, events.map((e) => h('li', { class: `outcome-${String(e.outcome).replace(/[^a-z_]/g, '')}`, dataset: { stage: e.what } },
    h('time', {}, formatTime(e.at)), ' ',
    h('strong', {}, e.what), e.node ? ` (${e.node})` : '',
    typeof e.ms === 'number' ? ` · ${e.ms.toFixed(1)} ms` : '',
    e.attempt > 1 ? ` · attempt ${e.attempt}` : '',
    e.outcome && e.outcome !== 'ok' ? ` · ${e.outcome}` : '',
    e.detail ? h('span', { class: 'detail' }, ` — ${e.detail}`) : '')));
}

export async function showJob(main, id) {
  const [job, audit] = await Promise.all([api(`/api/v1/jobs/${encodeURIComponent(id)}`), api(`/api/v1/jobs/${encodeURIComponent(id)}/audit`)]);
  const message = h('p', { class: 'message', role: 'alert' });
  main.append(h('h1', {}, job.filename || job.id),
    h('p', { class: 'meta' }, statusBadge(job.status), ` · job ${job.id}`, job.email_id ? ` · email ${job.email_id}` : '',
      ` · received ${formatTime(job.created_ms)} · updated ${formatTime(job.updated_ms)}`),
    message);
  if (job.status === 'review') main.append(h('p', {}, h('a', { href: `#/review/${encodeURIComponent(job.id)}`, class: 'button' }, 'Review this claim')));

  const refs = job.references || {};
  const refRows = [
    ['NCB claim reference', refs.ncb_claim_reference],
    ['Sheets row', refs.sheets_row],
    ['Drive file', refs.drive_file_id],
    ['Reviewer note', refs.reviewer_notes],
  ];
  for (const [k, v] of Object.entries(refs)) {
    if (!['ncb_claim_reference', 'sheets_row', 'drive_file_id', 'reviewer_notes'].includes(k)) refRows.push([k.replace(/_/g, ' '), v]);
  }
  main.append(h('section', { class: 'panel', 'aria-labelledby': 'refs-h' }, h('h2', { id: 'refs-h' }, 'References'),
    h('dl', { class: 'refs' }, refRows.map(([k, v]) => h('div', {}, h('dt', {}, k), h('dd', { dataset: { ref: k } }, v === undefined || v === null || v === '' ? '—' : formatValue(v)))))));

  if (job.status === 'failed' || job.status === 'partial' || job.last_error) {
    const retry = h('button', { type: 'button', class: 'primary' }, 'Retry from the dead letter');
    retry.addEventListener('click', async () => {
      retry.disabled = true;
      try {
        await api(`/api/v1/jobs/${encodeURIComponent(job.id)}/retry`, { method: 'POST', body: {} });
        message.className = 'message ok';
        message.textContent = 'Retry started. Reload in a moment to see how it went.';
        announce('Retry started');
      } catch (e) {
        message.className = 'message error';
        message.textContent = e.message;
        retry.disabled = false;
      }
    });
    const failed = (job.outcomes || []).filter((o) => o.status === 'failed');
    main.append(h('section', { class: 'panel dead-letter', 'aria-labelledby': 'dl-h' }, h('h2', { id: 'dl-h' }, job.status === 'failed' || job.status === 'partial' ? 'Dead letter' : 'Last error'),
      h('p', { class: 'reason' }, job.last_error || '—'),
      failed.length ? h('ul', {}, failed.map((o) => h('li', {}, `${o.name || o.doc_id}: ${o.reason || ''} (node ${o.node || '?'})`))) : '',
      job.status === 'failed' || job.status === 'partial' ? retry : ''));
  }

  const fields = Object.entries(job.fields || {});
  if (fields.length) {
    main.append(h('section', { class: 'panel', 'aria-labelledby': 'jf-h' }, h('h2', { id: 'jf-h' }, 'Fields'),
      h('div', { class: 'table-wrap' }, h('table', { class: 'data' },
        h('thead', {}, h('tr', {}, ['Field', 'Value', 'Confidence', 'Source'].map((t) => h('th', { scope: 'col' }, t)))),
        h('tbody', {}, fields.map(([n, f]) => h('tr', { dataset: { field: n } },
          h('th', { scope: 'row' }, n.replace(/_/g, ' ')),
          h('td', { class: 'value' }, formatValue(f && typeof f === 'object' ? f.value : f)),
          h('td', {}, confidenceMeter(f && f.confidence)),
          h('td', {}, (f && (f.source || (f.provenance && f.provenance.source))) || ''))))))));
  }
  main.append(h('section', { class: 'panel', 'aria-labelledby': 'tl-h' }, h('h2', { id: 'tl-h' }, 'Timeline'), timeline(job, audit)));
  if (audit.length) main.append(auditList(audit));
  announce(`Job ${job.filename || job.id}`);
  return {};
}
