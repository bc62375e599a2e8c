// Dashboard: today / this week / this month, queue sizes, component health and a 14-day
// chart drawn here as SVG (no charting library).
import { api, rawJson } from './api.js';
import { announce, formatNumber, formatPercent, formatTime, h, s } from './dom.js';

const WINDOWS = [
  ['today', 'Today'],
  ['this_week', 'Last 7 days'],
  ['this_month', 'Last 30 days'],
];

const STATS = [
  ['processed', 'Processed'],
  ['auto_submitted', 'Auto-submitted'],
  ['review', 'In review'],
  ['failed', 'Failed'],
];

function windowCard(key, title, d) {
  const list = h('dl', { class: 'stats' });
  for (const [stat, label] of STATS) {
    list.append(h('div', {}, h('dt', {}, label), h('dd', { 'data-stat': `${key}.${stat}` }, formatNumber(d[stat]))));
  }
  list.append(h('div', {}, h('dt', {}, 'Average confidence'),
    h('dd', { 'data-stat': `${key}.average_confidence` }, formatPercent(d.average_confidence))));
  return h('section', { class: 'card', 'aria-labelledby': `w-${key}` }, h('h2', { id: `w-${key}` }, title), list);
}

const SERIES = [
  ['auto_submitted', 'Auto-submitted', 'c-submitted'],
  ['approved', 'Approved in review', 'c-approved'],
  ['review', 'In review', 'c-review'],
  ['failed', 'Failed', 'c-failed'],
];

// Stacked bars, one per day, with a y axis, day labels and a legend.
export function chart(days) {
  const width = 720, height = 260, left = 40, right = 10, top = 12, bottom = 44;
  const plotW = width - left - right, plotH = height - top - bottom;
  const max = Math.max(1, ...days.map((d) => d.processed || 0));
  const step = Math.max(1, Math.ceil(max / 4));
  const yMax = step * 4;
  const barW = plotW / days.length;
  const y = (v) => top + plotH - (v / yMax) * plotH;
  const total = days.reduce((n, d) => n + (d.processed || 0), 0);
  const svg = s('svg', {
    viewBox: `0 0 ${width} ${height}`, class: 'chart', role: 'img',
    'aria-labelledby': 'chart-title chart-desc', 'data-days': String(days.length),
  },
  s('title', { id: 'chart-title' }, 'Documents processed per day, last 14 days'),
  s('desc', { id: 'chart-desc' }, `${total} in all; bars split into auto-submitted, approved, in review and failed.`));
  for (let v = 0; v <= yMax; v += step) {
    svg.append(s('line', { x1: left, x2: width - right, y1: y(v), y2: y(v), class: 'grid' }));
    svg.append(s('text', { x: left - 6, y: y(v) + 4, class: 'axis', 'text-anchor': 'end' }, String(v)));
  }
  days.forEach((d, i) => {
    const x = left + i * barW + barW * 0.15;
    const w = barW * 0.7;
    let base = 0;
    const group = s('g', { class: 'bar', 'data-date': d.date, 'data-processed': String(d.processed || 0) });
    for (const [key, label, cls] of SERIES) {
      const v = d[key] || 0;
      if (v > 0) {
        group.append(s('rect', { x, width: w, y: y(base + v), height: y(base) - y(base + v), class: cls },
          s('title', {}, `${d.date}: ${v} ${label.toLowerCase()}`)));
      }
      base += v;
    }
    const other = (d.processed || 0) - base; // received, processing, rejected, skipped...
    if (other > 0) {
      group.append(s('rect', { x, width: w, y: y(base + other), height: y(base) - y(base + other), class: 'c-other' },
        s('title', {}, `${d.date}: ${other} other (processing, rejected, skipped)`)));
    }
    svg.append(group);
    if (i % 2 === days.length % 2 || days.length <= 7) {
      svg.append(s('text', { x: x + w / 2, y: height - bottom + 16, class: 'axis', 'text-anchor': 'middle' }, d.date.slice(5)));
    }
  });
  const legend = h('ul', { class: 'legend' },
    [...SERIES, ['other', 'Other', 'c-other']].map(([, label, cls]) => h('li', {}, h('span', { class: `swatch ${cls}`, 'aria-hidden': 'true' }), label)));
  return h('figure', { class: 'chart-box' }, svg, legend);
}

function healthTable(report) {
  const rows = [];
  const entries = Object.entries(report.components || {});
  if (report.state_store) entries.push([`state store (${report.state_store.backend})`, { ...report.state_store, kind: 'store', component: report.state_store.backend }]);
  for (const [name, c] of entries) {
    rows.push(h('tr', { dataset: { component: name } },
      h('th', { scope: 'row' }, name),
      h('td', {}, c.component || ''),
      h('td', {}, h('span', { class: `health health-${String(c.status).replace(/[^a-z_]/g, '')}` }, c.status)),
      h('td', {}, formatTime(c.checked_at)),
      h('td', { class: 'wrap' }, c.last_error || c.detail || '')));
  }
  return h('div', { class: 'table-wrap' }, h('table', { class: 'data' },
    h('caption', {}, `Overall: ${report.status}, checked ${formatTime(report.checked_at)}`),
    h('thead', {}, h('tr', {}, ['Node', 'Component', 'Status', 'Last check', 'Detail'].map((t) => h('th', { scope: 'col' }, t)))),
    h('tbody', {}, rows)));
}

export async function showDashboard(main) {
  main.append(h('h1', {}, 'Dashboard'));
  const [stats, history, health] = await Promise.all([
    api('/api/v1/stats/dashboard'),
    api('/api/v1/stats/history?days=14'),
    rawJson('/health/detailed').catch((e) => ({ status: 'unknown', components: {}, error: e.message })),
  ]);
  main.append(h('div', { class: 'cards' }, WINDOWS.map(([key, title]) => windowCard(key, title, stats[key] || {}))));
  const q = stats.queues || {};
  main.append(h('section', { class: 'panel', 'aria-labelledby': 'queues-title' },
    h('h2', { id: 'queues-title' }, 'Queues now'),
    h('dl', { class: 'stats inline' },
      h('div', {}, h('dt', {}, 'Review queue'), h('dd', { 'data-stat': 'queues.review' }, h('a', { href: '#/review' }, formatNumber(q.review)))),
      h('div', {}, h('dt', {}, 'Processing'), h('dd', { 'data-stat': 'queues.processing' }, formatNumber(q.processing))),
      h('div', {}, h('dt', {}, 'Failed'), h('dd', { 'data-stat': 'queues.failed' }, formatNumber(q.failed))))));
  main.append(h('section', { class: 'panel', 'aria-labelledby': 'chart-h' }, h('h2', { id: 'chart-h' }, 'Last 14 days'), chart(history)));
  main.append(h('section', { class: 'panel', 'aria-labelledby': 'health-h' }, h('h2', { id: 'health-h' }, 'Component health'), healthTable(health)));
  announce('Dashboard loaded');
  return {};
}
