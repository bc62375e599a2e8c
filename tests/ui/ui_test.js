// Browser test of the review UI (run by run_ui_test.sh against a live docpipe + fake NCB).
// Each step asserts what a user would see; a failed step stops the run with its reason and a
// screenshot. Environment: BASE, KEY_ALICE, KEY_BOB, NCB, ARTIFACTS, CHROMIUM.
'use strict';
const assert = require('node:assert/strict');
const path = require('node:path');
const { chromium } = require('playwright-core');

const { BASE, KEY_ALICE, KEY_BOB, NCB, ARTIFACTS, CHROMIUM } = process.env;
const XSS = '<img src=x onerror=alert(1)>';
let passed = 0;

async function apiGet(p, key = KEY_ALICE) {
  const r = await fetch(BASE + p, { headers: { 'X-API-Key': key } });
  assert.equal(r.status, 200, `GET ${p}: ${r.status}`);
  return (await r.json()).data;
}

async function poll(what, fn, timeoutMs = 60000) {
  const end = Date.now() + timeoutMs;
  let last;
  while (Date.now() < end) {
    last = await fn();
    if (last) return last;
    await new Promise((r) => setTimeout(r, 300));
  }
  throw new Error(`timed out waiting for ${what}`);
}

// Waits until the view for `hash` (#/review/<id>) is drawn and takes keys. The URL alone says
// nothing about that: it changes before the app has reacted (the hashchange event comes a task
// later), and most views share elements (an Approve button, a fields table) with the one before.
const viewReady = (page, hash) => page.locator(`#main > .view[data-route="${hash}"][aria-busy="false"]`).waitFor();

// Approve and reject move the page on by themselves, to the next claim in the queue (which
// says what was done), once the browser has the server's answer. The API shows the new status
// as soon as the server has it, which on a busy machine can be well before the browser has
// handled that answer: a step that checked the API and went on to another page could see its
// page taken over by the late move. So a decision is done when the page has moved on.
async function movedOn(page, fromHash, flash) {
  await page.waitForFunction((h) => location.hash !== h, fromHash);
  await page.locator('#main > .view[aria-busy="false"] p.message.ok').filter({ hasText: flash }).waitFor();
}

const shot = (page, name) => page.screenshot({ path: path.join(ARTIFACTS, `${name}.png`), fullPage: true });

async function main() {
  const browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox'] });
  const context = await browser.newContext({ viewport: { width: 1366, height: 900 } });
  const page = await context.newPage();
  const problems = [];
  const dialogs = [];
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('console', (m) => { if (m.type() === 'error' && !/status of 4\d\d/.test(m.text())) problems.push(`console: ${m.text()}`); });
  page.on('dialog', (d) => { dialogs.push(d.message()); d.dismiss().catch(() => {}); });
  page.on('request', (r) => {
    if (r.url().includes(KEY_ALICE) || r.url().includes(KEY_BOB)) problems.push(`a key in a URL: ${r.url()}`);
  });

  async function step(name, fn) {
    try {
      await fn();
      passed += 1;
      console.log(`ok ${passed} - ${name}`);
    } catch (e) {
      console.log(`not ok - ${name}\n  ${String(e.stack || e).split('\n').slice(0, 6).join('\n  ')}`);
      await shot(page, `failed-${name.replace(/[^a-z0-9]+/gi, '-')}`).catch(() => {});
      throw e;
    }
  }

  const jobs = await apiGet('/api/v1/jobs?limit=100');
  const byFile = (f) => jobs.find((j) => j.filename === f);
  for (const f of ['approve-me.eml', 'xss-provider.eml', '03-html-forwarded.eml', '02-malay-two-receipts.eml', 'pdf-receipt.eml']) {
    assert.ok(byFile(f), `no job for ${f}`);
    assert.equal(byFile(f).status, 'review', `${f} is ${byFile(f).status}, the test needs it in review`);
  }

  await step('a wrong key is refused with a clear message', async () => {
    await page.goto(`${BASE}/ui/`);
    await page.getByLabel('Admin key').fill('not-the-key-not-the-key-not-the-key');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.locator('#sign-in-error').getByText('That admin key was not accepted').waitFor();
    assert.equal(await page.locator('#topbar').isVisible(), false, 'the app opened with a wrong key');
    assert.equal(await page.evaluate(() => sessionStorage.getItem('docpipe.adminKey')), null, 'a wrong key was kept');
    await shot(page, '01-sign-in-wrong-key');
  });

  await step('the right key signs in, named by its label', async () => {
    await page.getByLabel('Admin key').fill(KEY_ALICE);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('heading', { name: 'Dashboard' }).waitFor();
    assert.equal(await page.locator('#who').textContent(), 'Signed in as alice');
    assert.ok(!page.url().includes(KEY_ALICE), 'the key is in the URL');
    assert.equal(await page.evaluate(() => localStorage.length), 0, 'something was written to localStorage');
  });

  await step('dashboard numbers equal the API', async () => {
    await page.locator('svg.chart').waitFor();
    const api = await apiGet('/api/v1/stats/dashboard');
    const fmt = (n) => n.toLocaleString('en-GB');
    for (const w of ['today', 'this_week', 'this_month']) {
      for (const k of ['processed', 'auto_submitted', 'review', 'failed']) {
        const shown = await page.locator(`[data-stat="${w}.${k}"]`).textContent();
        assert.equal(shown, fmt(api[w][k]), `${w}.${k}: page ${shown}, API ${api[w][k]}`);
      }
      const conf = await page.locator(`[data-stat="${w}.average_confidence"]`).textContent();
      assert.equal(conf, api[w].average_confidence === null ? '—' : `${(api[w].average_confidence * 100).toFixed(1)}%`, `${w} confidence`);
    }
    // "Today" is the UTC day: a run that crosses midnight counts only the jobs made after it.
    const midnight = Date.now() - (Date.now() % 86400000);
    const todays = jobs.filter((j) => j.created_ms >= midnight);
    assert.equal(api.today.processed, todays.length, 'the API does not count today\'s jobs');
    if (todays.length === jobs.length) assert.equal(api.today.review, 5);
    for (const q of ['review', 'processing', 'failed']) {
      assert.equal(await page.locator(`[data-stat="queues.${q}"]`).textContent(), fmt(api.queues[q]), `queue ${q}`);
    }
    const history = await apiGet('/api/v1/stats/history?days=14');
    const bars = page.locator('svg.chart g.bar');
    assert.equal(await bars.count(), 14, 'the chart has 14 days');
    for (let i = 0; i < 14; i++) {
      assert.equal(await bars.nth(i).getAttribute('data-date'), history[i].date);
      assert.equal(Number(await bars.nth(i).getAttribute('data-processed')), history[i].processed, `chart ${history[i].date}`);
    }
    assert.ok(await page.locator('svg.chart g.bar').last().locator('rect').count() > 0, 'today has no bar');
    const health = page.locator('tr[data-component="router"]');
    await health.waitFor();
    assert.match(await health.locator('td').nth(1).textContent(), /healthy/);
    assert.match(await health.locator('td').nth(2).textContent(), /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$/, 'no last-check time');
    await shot(page, '02-dashboard');
  });

  await step('the review queue lists what the API lists, and filters', async () => {
    await page.getByRole('link', { name: 'Review queue' }).click();
    await page.getByRole('heading', { name: 'Review queue' }).waitFor();
    await page.locator('table.queue tbody tr').first().waitFor();
    const api = await apiGet('/api/v1/exceptions?limit=100&sort=created_at');
    const ids = await page.locator('table.queue tbody tr').evaluateAll((rows) => rows.map((r) => r.dataset.id));
    assert.deepEqual(ids, api.map((j) => j.id), 'queue order or content differs from the API');
    await shot(page, '03-review-queue');
    // Sort by confidence, lowest first.
    await page.getByLabel('Sort by').selectOption('confidence');
    await page.getByRole('button', { name: 'Apply' }).click();
    const sorted = await apiGet('/api/v1/exceptions?limit=100&sort=confidence');
    await poll('the sorted list', async () => {
      const now = await page.locator('table.queue tbody tr').evaluateAll((rows) => rows.map((r) => r.dataset.id));
      return JSON.stringify(now) === JSON.stringify(sorted.map((j) => j.id));
    }, 10000);
    // The provider filter narrows the list to the one claim.
    await page.getByLabel('Provider').fill('onerror');
    await page.getByRole('button', { name: 'Apply' }).click();
    await poll('the filtered list', async () => (await page.locator('table.queue tbody tr').count()) === 1, 10000);
    assert.equal(await page.locator('p.count').getAttribute('data-count'), '1');
    await page.getByRole('button', { name: 'Clear' }).click();
    await poll('the cleared list', async () => (await page.locator('table.queue tbody tr').count()) === api.length, 10000);
    // More than a page waiting: "Show more" brings the next page, until the queue is all shown
    // in the API's order (the rest was reachable only by filtering). Pages of 2 here.
    assert.ok(api.length > 2, `a queue of ${api.length} claims cannot show paging`);
    await page.evaluate(() => localStorage.setItem('docpipe.queue_page_size', '2'));
    try {
      await page.getByRole('button', { name: 'Apply' }).click();
      await poll('a first page of 2', async () => (await page.locator('table.queue tbody tr').count()) === 2, 10000);
      assert.match(await page.locator('p.count').textContent(), new RegExp(`^${api.length} claims wait for review \\(first 2 shown\\)$`));
      for (let pages = 1; await page.getByRole('button', { name: 'Show more' }).count(); ++pages) {
        assert.ok(pages < api.length, 'Show more never ends');
        const before = await page.locator('table.queue tbody tr').count();
        await page.getByRole('button', { name: 'Show more' }).click();
        await poll('the next page', async () => (await page.locator('table.queue tbody tr').count()) > before, 10000);
      }
      const all = await page.locator('table.queue tbody tr').evaluateAll((rows) => rows.map((r) => r.dataset.id));
      assert.deepEqual(all, api.map((j) => j.id), 'the pages together differ from the API\'s list');
      assert.equal(await page.locator('p.count').textContent(), `${api.length} claims wait for review`);
    } finally {
      await page.evaluate(() => localStorage.removeItem('docpipe.queue_page_size'));
    }
  });

  await step('a provider named like markup stays text', async () => {
    const xss = byFile('xss-provider.eml');
    const provider = xss.fields.provider_name ? xss.fields.provider_name.value : null;
    assert.equal(provider, XSS, `the XSS email's provider was read as ${JSON.stringify(provider)}`);
    const cell = page.locator(`tr[data-id="${xss.id}"] td.provider`);
    assert.equal(await cell.textContent(), XSS);
    assert.equal(await page.locator('main img').count(), 0, 'an <img> element was created from data');
    await page.goto(`${BASE}/ui/#/review/${encodeURIComponent(xss.id)}`);
    await viewReady(page, `#/review/${encodeURIComponent(xss.id)}`);
    assert.equal(await page.locator('tr[data-field="provider_name"] td.value').textContent(), XSS);
    assert.equal(xss.fields.member_name && xss.fields.member_name.value, 'ALI \u202eBAKAR', 'the name as the email wrote it');
    assert.equal(await page.locator('tr[data-field="member_name"] td.value').textContent(), 'ALI <U+202E>BAKAR',
      'an invisible direction override is shown, not obeyed');
    await page.goto(`${BASE}/ui/#/jobs/${encodeURIComponent(xss.id)}`);
    await viewReady(page, `#/jobs/${encodeURIComponent(xss.id)}`);
    assert.equal(await page.locator('tr[data-field="provider_name"] td.value').textContent(), XSS);
    assert.equal(await page.locator('main img').count(), 0);
    assert.deepEqual(dialogs, [], 'a script ran: an alert was shown');
  });

  const target = byFile('approve-me.eml');
  await step('a review item shows the page with the total\'s words outlined', async () => {
    await page.goto(`${BASE}/ui/#/review/${encodeURIComponent(target.id)}`);
    await page.locator('figure.page-box[data-image-loaded="true"]').waitFor({ timeout: 15000 });
    const item = await apiGet(`/api/v1/exceptions/${encodeURIComponent(target.id)}`);
    const total = item.documents[0].fields.total_amount;
    assert.ok(total.boxes.length > 0, 'the API has no box for the total');
    assert.equal(total.boxes[0].kind, 'words', 'the total was not located word by word');
    const rect = page.locator('svg.page rect.box[data-field="total_amount"]').first();
    assert.equal(Number(await rect.getAttribute('x')), total.boxes[0].x - 3);
    assert.equal(Number(await rect.getAttribute('y')), total.boxes[0].y - 3);
    assert.match(await rect.getAttribute('class'), /selected/, 'the total is not the highlighted field');
    const box = await rect.boundingBox();
    const img = await page.locator('svg.page').boundingBox();
    assert.ok(box && box.width > 5 && box.height > 3, 'the outline is not drawn');
    assert.ok(box.x >= img.x && box.y >= img.y && box.x + box.width <= img.x + img.width + 1 && box.y + box.height <= img.y + img.height + 1, 'the outline lies off the page');
    // The image is the receipt itself, scaled into the page's coordinates.
    await page.locator('figure.page-box[data-natural-size]').waitFor();
    const [w, h] = (await page.locator('figure.page-box').getAttribute('data-natural-size')).split('x').map(Number);
    assert.ok(w > 300 && h > 300, `page image ${w}x${h}`);
    const href = await page.locator('svg.page image').getAttribute('href');
    assert.ok(href.startsWith('blob:'), 'the image is not loaded through the authenticated fetch');
    assert.ok(item.documents[0].conflicts.length + item.documents[0].warnings.length > 0, 'no warning or conflict for a claim whose email disagrees');
    assert.ok(await page.getByText(/Warning|Conflict/).first().isVisible());
    // The email's winmail.dat was not read: the reviewer is told, as the claim may need it.
    assert.match(item.documents[0].skipped_attachments, /^'winmail\.dat': an Outlook TNEF attachment/);
    assert.ok(await page.getByText(/Not read from the email:/).isVisible(), 'the unread winmail.dat is not shown');
    await shot(page, '04-review-item');
  });

  await step('correct the total, approve: NCB receives the corrected amount', async () => {
    const row = page.locator('tr[data-field="total_amount"]');
    await page.getByLabel('Note for the record (optional)').fill('total corrected from the receipt');
    await row.getByRole('button', { name: 'Edit Total amount' }).click();
    // Not an amount as a receipt prints one: refused in the form (Number() took 0x1F for 31).
    for (const typed of ['0x1F', '1e3', '481.105']) {
      await page.getByLabel('New total amount').fill(typed);
      await page.getByLabel('New total amount').press('Enter');
      assert.match(await row.locator('p.field-error').textContent(), /must be an amount such as 479\.05/, typed);
    }
    // A decimal comma: the page read "481,10" as 48110 and the server as 481.10; refused.
    await page.getByLabel('New total amount').fill('481,10');
    await page.getByLabel('New total amount').press('Enter');
    assert.match(await row.locator('p.field-error').textContent(), /write decimals with a point \(12\.50\); a comma only separates thousands/);
    // A slipped decimal point is kept, with a warning to check it, and then typed again.
    await page.getByLabel('New total amount').fill('48110');
    await page.getByLabel('New total amount').press('Enter');
    assert.match(await row.locator('p.field-warning').textContent(), /^48110 is \d+ times the .* read from the receipt: check the digits/);
    await row.getByRole('button', { name: 'Edit Total amount' }).click();
    await page.getByLabel('New total amount').fill('RM 481.10');
    await page.getByLabel('New total amount').press('Enter');
    assert.match(await row.locator('td.value').textContent(), /^481\.10 was /);
    assert.equal(await page.evaluate(() => document.activeElement.getAttribute('aria-label')), 'Edit Total amount');
    // Typed but not kept: approving then sent the amount read from the receipt while the box
    // showed another. It is refused, naming the field, and nothing is sent.
    await row.getByRole('button', { name: 'Edit Total amount' }).click();
    await page.getByLabel('New total amount').fill('999.99');
    await page.getByRole('button', { name: 'Approve (a)' }).click();
    assert.match(await page.locator('p.message.error').textContent(), /^Keep or cancel the edit of Total amount before approving/);
    assert.equal((await apiGet(`/api/v1/jobs/${target.id}`)).status, 'review');
    await page.getByLabel('New total amount').press('Escape');
    assert.match(await row.locator('td.value').textContent(), /^481\.10 was /, 'the kept correction stands');
    await page.keyboard.press('a'); // the approve shortcut (focus is back on the Edit button)
    await poll('the job leaving review', async () => (await apiGet(`/api/v1/jobs/${target.id}`)).status !== 'review', 15000);
    await movedOn(page, `#/review/${encodeURIComponent(target.id)}`, 'Approved approve-me.eml with 1 correction(s).');
    const claim = await poll('the claim at the fake NCB', async () => {
      const r = await (await fetch(`${NCB}/_fake/claims`)).json();
      return r.claims.find((c) => c.record['Claim Amount'] === 481.1);
    }, 60000);
    assert.equal(claim.record['Policy Number'], 'POL987654321');
    const job = await poll('the job submitted', async () => {
      const j = await apiGet(`/api/v1/jobs/${target.id}`);
      return j.references && j.references.ncb_claim_reference ? j : null;
    }, 30000);
    assert.equal(job.references.ncb_claim_reference, claim.claim_reference);
    const audit = await apiGet(`/api/v1/jobs/${target.id}/audit`);
    assert.equal(audit.length, 1);
    assert.equal(audit[0].action, 'approve');
    assert.equal(audit[0].by, 'alice');
    assert.equal(audit[0].via, 'review UI', 'an action taken in the UI is recorded as such');
    assert.equal(audit[0].changes.total_amount.to, 481.1);
    assert.equal(audit[0].changes.total_amount.from, target.fields.total_amount.value);
    assert.equal(audit[0].notes, 'total corrected from the receipt');
  });

  await step('a PDF receipt shows its rendered page, the total outlined where it is printed', async () => {
    const pdfJob = byFile('pdf-receipt.eml');
    await page.goto(`${BASE}/ui/#/review/${encodeURIComponent(pdfJob.id)}`);
    await page.locator('figure.page-box[data-image-loaded="true"]').waitFor({ timeout: 15000 });
    const item = await apiGet(`/api/v1/exceptions/${encodeURIComponent(pdfJob.id)}`);
    const doc = item.documents[0];
    assert.match(doc.name, /\.pdf$/);
    const pg = doc.pages[0];
    assert.equal(pg.image.source, 'raster', 'the PDF page is not served from its stored raster');
    assert.ok(Math.max(pg.image.width, pg.image.height) <= 1600, `preview ${pg.image.width}x${pg.image.height}`);
    const figure = page.locator('figure.page-box').first();
    assert.equal(await figure.getAttribute('data-image-source'), 'raster');
    await page.locator('figure.page-box[data-natural-size]').waitFor();
    assert.equal(await figure.getAttribute('data-natural-size'), `${pg.image.width}x${pg.image.height}`, 'the browser did not get the PNG preview');
    // The preview may be smaller than the raster; it is drawn over the raster's box, the
    // coordinates the OCR boxes are in.
    assert.equal(Number(await page.locator('svg.page image').first().getAttribute('width')), pg.width);
    const total = doc.fields.total_amount;
    assert.ok(total && total.boxes.length > 0, 'the API has no box for the total');
    assert.equal(total.boxes[0].kind, 'words', 'the total was not located word by word');
    const rect = page.locator('svg.page rect.box[data-field="total_amount"]').first();
    assert.equal(Number(await rect.getAttribute('x')), total.boxes[0].x - 3);
    assert.match(await rect.getAttribute('class'), /selected/, 'the total is not the highlighted field');
    // On screen: the outline sits where the raster box falls on the drawn page (the <image>,
    // centred in the svg), give or take its stroke.
    const drawnPage = await page.locator('svg.page image').first().boundingBox();
    const drawn = await rect.boundingBox();
    const want = drawnPage.x + ((total.boxes[0].x - 3) * drawnPage.width) / pg.width;
    assert.ok(Math.abs(drawn.x - want) < 3, `the outline is drawn at x=${drawn.x}, expected ${want}`);
    // And there is print under it in the preview itself: the box, scaled into the PNG's
    // pixels, holds dark pixels (it would not when the preview and the boxes disagreed on scale).
    const ink = await page.evaluate(async ({ href, box, scale }) => {
      // An <img> rather than fetch(): the CSP allows blob: images, not blob: connections.
      const img = new Image();
      img.src = href;
      await img.decode();
      const bitmap = await createImageBitmap(img);
      const canvas = new OffscreenCanvas(bitmap.width, bitmap.height);
      const ctx = canvas.getContext('2d');
      ctx.drawImage(bitmap, 0, 0);
      const x = Math.floor(box.x * scale), y = Math.floor(box.y * scale);
      const w = Math.max(1, Math.ceil(box.width * scale)), h = Math.max(1, Math.ceil(box.height * scale));
      const px = ctx.getImageData(x, y, w, h).data;
      let dark = 0;
      for (let i = 0; i < px.length; i += 4) if (px[i] + px[i + 1] + px[i + 2] < 3 * 110) dark += 1;
      return dark / (w * h);
    }, { href: await page.locator('svg.page image').first().getAttribute('href'), box: total.boxes[0], scale: pg.image.scale });
    assert.ok(ink > 0.05, `the total's box covers no print in the preview (${(ink * 100).toFixed(1)}% dark)`);
    await shot(page, '04b-review-item-pdf');
  });

  await step('an email with two receipts: each is corrected on its own', async () => {
    const two = byFile('02-malay-two-receipts.eml');
    const item = await apiGet(`/api/v1/exceptions/${encodeURIComponent(two.id)}`);
    assert.equal(item.documents.length, 2, 'the two-receipt email does not have two parked documents');
    const [a, b] = item.documents;
    await page.goto(`${BASE}/ui/#/review/${encodeURIComponent(two.id)}`);
    await viewReady(page, `#/review/${encodeURIComponent(two.id)}`);
    assert.equal(await page.locator('section[data-doc-id]').count(), 2, 'not one fields table per document');
    const rowB = page.locator(`section[data-doc-id="${b.doc_id}"] tr[data-field="total_amount"]`);
    // The 'e' shortcut edits the selected field of the document it belongs to: select the
    // second receipt's total, press e, and its editor (not the first receipt's) opens.
    await rowB.getByRole('button', { name: `Show Total amount of ${b.name} on the page` }).click();
    await page.keyboard.press('e');
    assert.equal(await page.evaluate(() => document.activeElement.id), 'edit-1-total_amount', "'e' did not open the second receipt's editor");
    await page.keyboard.press('Escape');
    assert.equal(await page.locator('.editor:not([hidden])').count(), 0, 'Escape did not close the field editor');
    await rowB.getByRole('button', { name: `Edit Total amount of ${b.name}` }).click();
    await page.getByLabel(`New total amount of ${b.name}`).fill('RM 123.45');
    await page.getByLabel(`New total amount of ${b.name}`).press('Enter');
    assert.match(await rowB.locator('td.value').textContent(), /^123\.45 was /);
    const rowA = page.locator(`section[data-doc-id="${a.doc_id}"] tr[data-field="total_amount"]`);
    if (await rowA.count()) assert.doesNotMatch(await rowA.locator('td.value').textContent(), /123\.45/, 'the correction shows on the other receipt');
    await shot(page, '04c-two-receipts-one-corrected');
    const request = page.waitForRequest((r) => r.url().endsWith('/approve') && r.method() === 'POST');
    await page.getByRole('button', { name: 'Approve (a)' }).click();
    const sent = (await request).postDataJSON();
    assert.equal(sent.fields, undefined, 'a job-wide correction was sent for a two-document claim');
    assert.deepEqual(Object.keys(sent.documents), [b.doc_id]);
    assert.deepEqual(sent.documents[b.doc_id], { fields: { total_amount: 123.45 } });
    const entry = await poll('the approval in the audit', async () => (await apiGet(`/api/v1/jobs/${two.id}/audit`)).find((e) => e.action === 'approve'), 10000);
    assert.equal(entry.documents[b.doc_id].changes.total_amount.to, 123.45);
    assert.equal(entry.documents[b.doc_id].changes.total_amount.from, b.fields.total_amount ? b.fields.total_amount.value : null);
    assert.equal(entry.documents[a.doc_id], undefined, 'the other receipt is recorded as changed');
    assert.equal(entry.by, 'alice');
    await movedOn(page, `#/review/${encodeURIComponent(two.id)}`, 'Approved 02-malay-two-receipts.eml with 1 correction(s).');
  });

  await step('the job page shows the timeline, the NCB reference and who approved', async () => {
    await page.goto(`${BASE}/ui/#/jobs/${encodeURIComponent(target.id)}`);
    await viewReady(page, `#/jobs/${encodeURIComponent(target.id)}`);
    await page.getByRole('heading', { name: 'Timeline' }).waitFor();
    const job = await apiGet(`/api/v1/jobs/${target.id}`);
    assert.equal(await page.locator('[data-ref="NCB claim reference"]').textContent(), job.references.ncb_claim_reference);
    // The approval continues the job's timeline: the steps before the review queue stay.
    for (const stage of ['received', 'attachments', 'OCR', 'claims', 'routed', 'review queue', 'approve by alice', 'submitted to NCB']) {
      assert.ok(await page.locator(`ol.timeline li[data-stage="${stage}"]`).count() > 0, `no '${stage}' in the timeline`);
    }
    const audit = page.locator('ol.audit li[data-action="approve"]');
    assert.match(await audit.textContent(), /approve by alice — Total amount: .* → 481\.10/);
    assert.match(await page.locator('ol.timeline li[data-stage="approve by alice"]').textContent(), /approve by alice \(review UI\)/);
    await shot(page, '05-job-detail');
    // A job still in review shows its whole way so far.
    const xss = byFile('xss-provider.eml');
    await page.goto(`${BASE}/ui/#/jobs/${encodeURIComponent(xss.id)}`);
    await viewReady(page, `#/jobs/${encodeURIComponent(xss.id)}`);
    await page.getByRole('heading', { name: 'Timeline' }).waitFor();
    for (const stage of ['received', 'attachments', 'pages', 'page clean-up', 'OCR', 'claims', 'routed', 'review queue']) {
      assert.ok(await page.locator(`ol.timeline li[data-stage="${stage}"]`).count() > 0, `no '${stage}' in the timeline`);
    }
  });

  await step('reject with a reason', async () => {
    const other = byFile('03-html-forwarded.eml');
    await page.goto(`${BASE}/ui/#/review/${encodeURIComponent(other.id)}`);
    await page.getByRole('button', { name: 'Reject… (r)' }).click();
    const dialog = page.getByRole('dialog', { name: 'Reject this claim' });
    await dialog.waitFor();
    await dialog.getByRole('button', { name: 'Reject' }).click();
    await dialog.getByText('Say why the claim is rejected.').waitFor();
    await dialog.getByLabel('Reason (recorded on the job)').fill('Member is not on this policy');
    await shot(page, '06-reject-dialog');
    await dialog.getByRole('button', { name: 'Reject' }).click();
    const job = await poll('the rejection', async () => {
      const j = await apiGet(`/api/v1/jobs/${other.id}`);
      return j.status === 'rejected' ? j : null;
    }, 10000);
    assert.equal(job.last_error, 'Member is not on this policy');
    await movedOn(page, `#/review/${encodeURIComponent(other.id)}`, 'Rejected 03-html-forwarded.eml.');
    const audit = await apiGet(`/api/v1/jobs/${other.id}/audit`);
    assert.equal(audit[0].action, 'reject');
    assert.equal(audit[0].reason, 'Member is not on this policy');
    assert.equal(audit[0].by, 'alice');
  });

  await step('a dead letter shows its reason and a retry button', async () => {
    const broken = byFile('99-garbage.eml');
    assert.equal(broken.status, 'failed');
    await page.goto(`${BASE}/ui/#/jobs/${encodeURIComponent(broken.id)}`);
    await viewReady(page, `#/jobs/${encodeURIComponent(broken.id)}`);
    await page.getByRole('heading', { name: 'Dead letter' }).waitFor();
    assert.equal(await page.locator('.dead-letter .reason').textContent(), broken.last_error);
    await page.getByRole('button', { name: 'Retry from the dead letter' }).click();
    await page.locator('p.message:not(:empty)').waitFor();
    await shot(page, '07-dead-letter');
  });

  await step('jobs search', async () => {
    await page.goto(`${BASE}/ui/#/jobs`);
    await page.getByRole('searchbox', { name: 'Search' }).fill('approve-me');
    await page.getByRole('button', { name: 'Search' }).click();
    await poll('one result', async () => (await page.locator('table.jobs tbody tr').count()) === 1, 10000);
    assert.equal(await page.locator('table.jobs tbody tr').getAttribute('data-id'), target.id);
    await shot(page, '08-jobs');
  });

  await step('keyboard only: sign in, open the queue, j/k, e, reject', async () => {
    const kb = await context.newPage();
    kb.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
    kb.on('dialog', (d) => { dialogs.push(d.message()); d.dismiss().catch(() => {}); });
    await kb.goto(`${BASE}/ui/`);
    await kb.keyboard.type(KEY_BOB); // the key field has focus
    await kb.keyboard.press('Enter');
    await viewReady(kb, '#/dashboard');
    assert.equal(await kb.locator('#who').textContent(), 'Signed in as bob');
    for (let i = 0; i < 12; i++) {
      await kb.keyboard.press('Tab');
      if ((await kb.evaluate(() => document.activeElement.textContent)) === 'Review queue') break;
    }
    assert.equal(await kb.evaluate(() => document.activeElement.textContent), 'Review queue', 'Tab never reached the Review queue link');
    await kb.keyboard.press('Enter');
    await viewReady(kb, '#/review');
    const ids = await kb.locator('table.queue tbody tr').evaluateAll((rows) => rows.map((r) => r.dataset.id));
    assert.ok(ids.length >= 2, `the queue has ${ids.length} claims; the keyboard test needs 2`);
    await kb.keyboard.press('j');
    assert.equal(await kb.evaluate(() => document.activeElement.closest('tr').dataset.id), ids[0]);
    await kb.keyboard.press('Enter');
    await viewReady(kb, `#/review/${encodeURIComponent(ids[0])}`);
    await kb.keyboard.press('j');
    await viewReady(kb, `#/review/${encodeURIComponent(ids[1])}`);
    await kb.keyboard.press('k');
    await viewReady(kb, `#/review/${encodeURIComponent(ids[0])}`);
    await kb.keyboard.press('e');
    const editing = await kb.evaluate(() => document.activeElement.id);
    assert.match(editing, /^edit-/, `'e' did not open a field editor (focus on ${editing})`);
    await kb.keyboard.press('Escape');
    assert.match(await kb.evaluate(() => document.activeElement.getAttribute('aria-label') || ''), /^Edit /, 'Escape did not return to the Edit button');
    assert.equal(await kb.locator('.editor:not([hidden])').count(), 0, 'Escape did not close the field editor');
    await kb.keyboard.press('r');
    await kb.getByRole('dialog', { name: 'Reject this claim' }).waitFor();
    assert.equal(await kb.evaluate(() => document.activeElement.id), 'reject-reason');
    assert.equal(await kb.evaluate(() => document.querySelector('dialog[open]').matches(':modal')), true, 'the reject dialog is not modal');
    await kb.keyboard.type('Receipt unreadable; asked the member for a new scan');
    await kb.keyboard.press('Tab');
    const onButton = await kb.evaluate(() => document.activeElement.textContent);
    assert.equal(onButton, 'Reject', `Tab from the reason went to '${onButton}'`);
    await kb.keyboard.press('Enter');
    await shot(kb, '09-keyboard-rejected');
    const job = await poll('the keyboard rejection', async () => {
      const j = await apiGet(`/api/v1/jobs/${ids[0]}`);
      return j.status === 'rejected' ? j : null;
    }, 10000);
    assert.equal(job.last_error, 'Receipt unreadable; asked the member for a new scan');
    const audit = await apiGet(`/api/v1/jobs/${ids[0]}/audit`);
    assert.equal(audit[audit.length - 1].by, 'bob', 'the action is not attributed to the key that did it');
    await movedOn(kb, `#/review/${encodeURIComponent(ids[0])}`, `Rejected ${jobs.find((j) => j.id === ids[0]).filename}.`);
    await shot(kb, '09-after-keyboard-reject');
    await kb.close();
  });

  await step('tablet layout: one column, no sideways scrolling', async () => {
    const tab = await browser.newContext({ viewport: { width: 820, height: 1180 }, hasTouch: true });
    const p = await tab.newPage();
    await p.goto(`${BASE}/ui/`);
    await p.getByLabel('Admin key').fill(KEY_ALICE);
    await p.getByRole('button', { name: 'Sign in' }).click();
    await p.getByRole('heading', { name: 'Dashboard' }).waitFor();
    const remaining = await apiGet('/api/v1/exceptions?limit=1');
    await p.goto(`${BASE}/ui/#/review/${encodeURIComponent(remaining[0].id)}`);
    await p.locator('tr[data-field]').first().waitFor();
    const [scroll, inner] = await p.evaluate(() => [document.documentElement.scrollWidth, window.innerWidth]);
    assert.ok(scroll <= inner, `the page scrolls sideways on a tablet (${scroll} > ${inner})`);
    const pageBox = await p.locator('.pages').boundingBox();
    const fieldsBox = await p.locator('.fields').boundingBox();
    assert.ok(fieldsBox.y >= pageBox.y + pageBox.height - 1, 'the fields are not below the page on a narrow screen');
    await p.screenshot({ path: path.join(ARTIFACTS, '10-tablet-review-item.png'), fullPage: true });
    await tab.close();
  });

  await step('a decision answered after the reviewer left does not pull them back', async () => {
    const [item] = await apiGet('/api/v1/exceptions?limit=1');
    assert.ok(item, 'no claim left in review for this step');
    const hash = `#/review/${encodeURIComponent(item.id)}`;
    await page.goto(`${BASE}/ui/${hash}`);
    await viewReady(page, hash);
    // The server's answer reaches the browser a second late (a slow link), by when the
    // reviewer has opened another page.
    let delivered;
    const answered = new Promise((resolve) => { delivered = resolve; });
    await page.route('**/reject', async (route) => {
      const response = await route.fetch();
      await new Promise((resolve) => setTimeout(resolve, 1000));
      await route.fulfill({ response });
      delivered();
    });
    await page.getByRole('button', { name: 'Reject… (r)' }).click();
    const dialog = page.getByRole('dialog', { name: 'Reject this claim' });
    await dialog.getByLabel('Reason (recorded on the job)').fill('Duplicate of an earlier claim');
    await dialog.getByRole('button', { name: 'Reject' }).click();
    await poll('the rejection', async () => (await apiGet(`/api/v1/jobs/${item.id}`)).status === 'rejected', 10000);
    await page.goto(`${BASE}/ui/#/jobs`);
    await viewReady(page, '#/jobs');
    await answered;
    // The late answer is handled (it announces the rejection) and leaves the page alone.
    await page.locator('#status').filter({ hasText: 'Rejected' }).waitFor();
    await page.unroute('**/reject');
    assert.equal(await page.evaluate(() => location.hash), '#/jobs', 'a late answer moved the reviewer off the page they had opened');
    assert.equal(await page.locator('#main > .view').getAttribute('data-route'), '#/jobs');
  });

  await step('sign out forgets the key', async () => {
    await page.goto(`${BASE}/ui/#/dashboard`);
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.getByLabel('Admin key').waitFor();
    assert.equal(await page.evaluate(() => sessionStorage.getItem('docpipe.adminKey')), null);
  });

  await step('no script errors, CSP violations, alerts or keys in URLs', async () => {
    assert.deepEqual(problems, []);
    assert.deepEqual(dialogs, []);
  });
  await browser.close();
  console.log(`${passed} passed, 0 failed`);
}

main().catch((e) => {
  console.error(`FAIL: ${e.message}`);
  console.log(`${passed} passed, 1 failed`);
  process.exit(1);
});
