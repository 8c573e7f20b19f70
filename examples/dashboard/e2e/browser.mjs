// The dashboard's end-to-end scenario in headless Chromium, driven by
// e2e_test.go, which owns the example server: this script asks it to stop
// and start the server by printing "@stop-server" / "@start-server" and
// waits for "ok" on stdin. Every other line it prints is a log line.
//
// Env: DASHBOARD_URL (the server's "dashboard:" link, with #token=...),
// CHROMIUM (the browser binary), SCREENSHOTS (directory for screenshots).
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import readline from 'node:readline';
import { chromium } from 'playwright-core';

const dashboardURL = need('DASHBOARD_URL');
const shots = need('SCREENSHOTS');
const origin = new URL(dashboardURL).origin;
const token = new URLSearchParams(new URL(dashboardURL).hash.slice(1)).get('token');
if (!token) throw new Error(`DASHBOARD_URL has no #token=: ${dashboardURL}`);
mkdirSync(shots, { recursive: true });

const stdin = readline.createInterface({ input: process.stdin })[Symbol.asyncIterator]();
const pageErrors = [];

function need(name) {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set`);
  return v;
}

function log(...args) {
  console.log(...args);
}

/** ask has the Go test do something to the server and waits until it is done. */
async function ask(what) {
  console.log(`@${what}`);
  const { value, done } = await stdin.next();
  if (done || value.trim() !== 'ok') throw new Error(`${what}: the test answered ${JSON.stringify(value)}`);
}

async function api(method, path, body) {
  const res = await fetch(origin + path, {
    method,
    headers: { Authorization: `Bearer ${token}`, ...(body ? { 'Content-Type': 'application/json' } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${text}`);
  return text ? JSON.parse(text) : undefined;
}

async function step(name, fn) {
  const t0 = Date.now();
  try {
    await fn();
  } catch (err) {
    throw new Error(`step "${name}": ${err.message}`, { cause: err });
  }
  log(`ok   ${name} (${Date.now() - t0} ms)`);
}

async function screenshot(page, name) {
  const path = join(shots, `${name}.png`);
  await page.screenshot({ path, fullPage: true });
  log(`screenshot: ${path}`);
}

/** waitText waits until the element of selector shows text (trimmed, exact). */
async function waitText(page, selector, text, timeout = 15_000) {
  try {
    await page.waitForFunction(
      ([s, t]) => document.querySelector(s)?.textContent?.trim() === t,
      [selector, text],
      { timeout, polling: 100 },
    );
  } catch (err) {
    const got = await page.locator(selector).first().textContent({ timeout: 1000 }).catch(() => '(missing)');
    throw new Error(`${selector}: want ${JSON.stringify(text)}, got ${JSON.stringify(got?.trim())}: ${err.message}`);
  }
}

async function waitState(page, state, timeout) {
  await page.waitForSelector(`[data-testid=connection-state][data-state=${state}]`, { timeout });
}

const browser = await chromium.launch({
  executablePath: need('CHROMIUM'),
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--no-first-run'],
});
try {
  const page = await browser.newPage({ viewport: { width: 1400, height: 1000 }, locale: 'en-US' });
  page.on('pageerror', (err) => {
    pageErrors.push(err);
    log(`[page error] ${err.message}`);
  });
  page.on('console', (m) => {
    if (m.type() === 'error' || m.type() === 'warning') log(`[browser ${m.type()}] ${m.text()}`);
  });

  await step('loads with the token and removes it from the address bar', async () => {
    await page.goto(dashboardURL);
    await page.waitForFunction(() => !location.hash.includes('token='), null, { timeout: 10_000 });
    const stored = await page.evaluate(() => sessionStorage.getItem('leadupdates.token'));
    if (stored !== token) throw new Error('the token is not in sessionStorage');
  });

  await step('connects and shows live data', async () => {
    await waitState(page, 'connected', 20_000);
    await page.waitForSelector('[data-testid=dashboard][data-mode=live]', { timeout: 10_000 });
  });

  await step('the analytics show their empty state on an empty database', async () => {
    for (const id of ['chart-created', 'chart-processed', 'chart-failures', 'chart-funnel']) {
      await page.waitForSelector(`[data-testid=${id}][data-total="0"] .empty`, { timeout: 15_000 });
    }
    await page.waitForSelector('[data-testid=processing-percentiles][data-count="0"]', { timeout: 5_000 });
  });

  // A marker that a reload would wipe.
  await page.evaluate(() => {
    window.__e2eNoReload = true;
  });
  const total0 = Number((await page.textContent('[data-testid=metric-totalLeads-value]')).replace(/\D/g, ''));

  let lead;
  await step('a lead created through the API appears in the table', async () => {
    lead = await api('POST', '/api/leads', {
      name: 'E2E Ada Lovelace',
      company: 'Analytical Engines',
      email: 'ada@example.com',
      source: 'LinkedIn',
    });
    await page.waitForSelector(`[data-testid=lead-row-${lead.id}]`, { timeout: 15_000 });
    await waitText(page, `[data-testid=lead-row-${lead.id}] [data-testid=lead-status]`, 'New');
    const row = await page.textContent(`[data-testid=lead-row-${lead.id}]`);
    if (!row.includes('E2E Ada Lovelace') || !row.includes('LinkedIn')) throw new Error(`row: ${row}`);
  });

  await step('the metric cards change', async () => {
    await waitText(page, '[data-testid=metric-totalLeads-value]', (total0 + 1).toLocaleString('en-US'));
    await page.waitForFunction(() => document.querySelector('[data-testid=chart-source]')?.textContent?.includes('LinkedIn'), null, {
      timeout: 15_000,
    });
  });

  await step('the analytics charts draw the new lead', async () => {
    await page.waitForSelector('[data-testid=chart-created][data-total="1"] canvas', { timeout: 15_000 });
    await page.waitForSelector('[data-testid=chart-funnel][data-total="1"] canvas', { timeout: 15_000 });
    const legend = await page.textContent('[data-testid=chart-created]');
    if (!legend.includes('LinkedIn')) throw new Error(`created chart without LinkedIn: ${legend}`);
    // Marks the funnel's canvas: live updates must reuse it, not rebuild it.
    await page.evaluate(() => {
      document.querySelector('[data-testid=chart-funnel] canvas').__e2eKept = true;
    });
  });

  await step('a status change updates the row', async () => {
    await api('PATCH', `/api/leads/${lead.id}`, { status: 'Enriching' });
    await waitText(page, `[data-testid=lead-row-${lead.id}] [data-testid=lead-status]`, 'Enriching');
    await page.waitForFunction(() => document.querySelector('[data-testid=chart-status]')?.textContent?.includes('Enriching'), null, {
      timeout: 15_000,
    });
  });

  await step('the detail view follows the lead', async () => {
    await page.click(`[data-testid=lead-row-${lead.id}]`);
    await page.waitForSelector('[data-testid=lead-group][data-status=joined]', { timeout: 10_000 });
    await waitText(page, '[data-testid=lead-group]', `Following Lead_${lead.id}`);
    await api('PATCH', `/api/leads/${lead.id}`, { score: 42 });
    await waitText(page, `[data-testid=lead-row-${lead.id}] [data-testid=lead-score]`, '42.0');
  });

  let third;
  await step('a processed lead shows its workflow start and end', async () => {
    third = await api('POST', '/api/leads', { name: 'E2E Alan Turing', source: 'Google' });
    await page.waitForSelector(`[data-testid=lead-row-${third.id}]`, { timeout: 15_000 });
    await api('POST', `/api/leads/${third.id}/process`);
    await page.waitForSelector(`[data-testid=activity] li[data-type=WORKFLOW_STARTED][data-lead="${third.id}"]`, { timeout: 15_000 });
    await page.waitForSelector(
      `[data-testid=activity] li[data-lead="${third.id}"]:is([data-type=WORKFLOW_COMPLETED], [data-type=WORKFLOW_FAILED])`,
      { timeout: 30_000 },
    );
    const status = (await page.textContent(`[data-testid=lead-row-${third.id}] [data-testid=lead-status]`)).trim();
    if (!['Synced to CRM', 'Disqualified', 'Failed'].includes(status)) throw new Error(`status after the workflow: ${status}`);
    log(`     workflow ended with ${status}`);
  });

  await step('the analytics charts move with the workflow, in place', async () => {
    await page.waitForSelector('[data-testid=chart-created][data-total="2"] canvas', { timeout: 15_000 });
    await page.waitForSelector('[data-testid=chart-funnel][data-total="2"] canvas', { timeout: 15_000 });
    // Synced or disqualified: processed, with a processing time; failed: a failure.
    await page.waitForSelector(
      ':is([data-testid=chart-processed][data-total="1"], [data-testid=chart-failures][data-total="1"]) canvas',
      { timeout: 15_000 },
    );
    const kept = await page.evaluate(() => document.querySelector('[data-testid=chart-funnel] canvas').__e2eKept === true);
    if (!kept) throw new Error('the funnel chart was rebuilt instead of updated');
    log(`     funnel: ${await page.textContent('[data-testid=chart-funnel] .funnel-steps')}`);
  });

  await step("the processed lead's history replays its processing step by step", async () => {
    const id = third.id;
    await page.click(`[data-testid=lead-row-${id}]`);
    await page.waitForSelector('[data-testid=lead-history][data-status=ready]', { timeout: 15_000 });
    const steps = async () => Number(await page.getAttribute('[data-testid=lead-history]', 'data-steps'));
    const index = async () => Number(await page.getAttribute('[data-testid=lead-history]', 'data-index'));
    const types = await page.$$eval('[data-testid=history-timeline] li', (lis) => lis.map((li) => li.dataset.type));
    log(`     timeline: ${types.join(' ')}`);
    if (types[0] !== 'NEW_LEAD' || !types.includes('WORKFLOW_STARTED') || !types.includes('SCORE_UPDATE')) {
      throw new Error(`timeline: ${types}`);
    }
    if (!['WORKFLOW_COMPLETED', 'WORKFLOW_FAILED'].includes(types.at(-1))) throw new Error(`last event: ${types.at(-1)}`);
    const n = await steps();
    if (n !== types.length || (await index()) !== n - 1) throw new Error(`opens on step ${await index()} of ${n}`);
    const final = (await page.textContent('[data-testid=history-status]')).trim();
    const row = (await page.textContent(`[data-testid=lead-row-${id}] [data-testid=lead-status]`)).trim();
    if (final !== row) throw new Error(`the last step shows ${final}, the row ${row}`);

    // From the first step, one step at a time: the lead as of each.
    await page.click('[data-testid=history-timeline] li:first-child');
    await waitText(page, '[data-testid=history-status]', 'New');
    await waitText(page, '[data-testid=history-score]', '—');
    await waitText(page, '[data-testid=history-enrichment]', '—');
    const seen = [];
    for (let i = 1; i < n; i++) {
      await page.click('[data-testid=history-step]');
      await page.waitForSelector(`[data-testid=lead-history][data-index="${i}"]`, { timeout: 5_000 });
      seen.push([
        types[i],
        (await page.textContent('[data-testid=history-status]')).trim(),
        (await page.textContent('[data-testid=history-score]')).trim(),
      ]);
    }
    log(`     replayed: ${seen.map((s) => s.join(' ')).join(' | ')}`);
    const status = (t) => seen.find(([, s]) => s === t);
    if (!status('Enriching') || !status('Enriched') || !status('Scored')) throw new Error('the replay skipped a status');
    const scored = seen.findIndex(([t]) => t === 'SCORE_UPDATE');
    if (seen[scored - 1]?.[2] !== '—' || seen[scored][2] === '—') throw new Error('the score does not appear at its step');
    if ((await page.textContent('[data-testid=history-enrichment]')).trim() === '—') throw new Error('no enrichment at the end');

    await page.click('[data-testid=history-back]');
    await page.waitForSelector(`[data-testid=lead-history][data-index="${n - 2}"]`, { timeout: 5_000 });

    // Play runs to the end on its own.
    await page.click('[data-testid=history-step]');
    await page.click('[data-testid=history-play]');
    await page.waitForSelector('[data-testid=history-pause]', { timeout: 5_000 });
    await page.waitForSelector(`[data-testid=lead-history][data-index="${n - 1}"] [data-testid=history-play]`, { timeout: 30_000 });
    await waitText(page, '[data-testid=history-status]', final);

    // A new event of the lead joins the timeline, and the player follows it.
    await api('PATCH', `/api/leads/${id}`, { score: 12 });
    await page.waitForSelector(`[data-testid=lead-history][data-steps="${n + 1}"][data-index="${n}"]`, { timeout: 15_000 });
    await waitText(page, '[data-testid=history-score]', '12.0');
  });
  await screenshot(page, 'dashboard-history');

  if (!(await page.evaluate(() => window.__e2eNoReload === true))) throw new Error('the page reloaded');
  await screenshot(page, 'dashboard-connected');

  await step('a short restart: the dashboard catches up from its last position instead of reloading', async () => {
    const loads = [];
    const onRequest = (req) => {
      const u = new URL(req.url());
      if (req.method() === 'GET' && (u.pathname === '/api/leads' || u.pathname === '/api/metrics')) loads.push(u.pathname);
    };
    page.on('request', onRequest);
    // The browser cannot reconnect until the lead below was created: it must catch up to see it.
    const refuse = (route) => route.abort('connectionrefused');
    await page.route('**/leadupdates/negotiate*', refuse);
    await ask('stop-server');
    await waitState(page, 'reconnecting', 15_000);
    await ask('start-server');
    const missed = await api('POST', '/api/leads', { name: 'E2E Katherine Johnson', source: 'Facebook' });
    await api('PATCH', `/api/leads/${missed.id}`, { status: 'Enriching' });
    if (await page.$(`[data-testid=lead-row-${missed.id}]`)) throw new Error('the lead arrived while the browser was away');
    await page.unroute('**/leadupdates/negotiate*', refuse);
    await waitState(page, 'connected', 40_000);
    await waitText(page, `[data-testid=lead-row-${missed.id}] [data-testid=lead-status]`, 'Enriching');
    page.off('request', onRequest);
    if (loads.length > 0) throw new Error(`the dashboard reloaded (${loads.join(', ')}) instead of catching up`);
  });

  await ask('stop-server');
  await step('a stopped server shows "reconnecting"', async () => {
    await waitState(page, 'reconnecting', 15_000);
    await page.waitForSelector('[data-testid=reconnecting-banner]', { timeout: 5_000 });
  });
  await screenshot(page, 'dashboard-reconnecting');

  await step('after the retries (1+2+4+8+16 s) it shows labelled sample data', async () => {
    await page.waitForSelector('[data-testid=fallback-banner]', { timeout: 60_000 });
    await waitState(page, 'fallback', 5_000);
    await page.waitForSelector('[data-testid=dashboard][data-mode=fallback]', { timeout: 5_000 });
    const table = await page.textContent('[data-testid=leads-table]');
    if (!table.includes('Sample lead')) throw new Error(`the table does not show sample data: ${table}`);
    if (table.includes('E2E Ada Lovelace')) throw new Error('the table still shows live leads');
  });
  await screenshot(page, 'dashboard-fallback');

  await ask('start-server');
  await step('retry reconnects to the restarted server and reloads', async () => {
    // Fallback mode also probes every 30 s on its own: if that won the race
    // the button is gone, which is fine.
    await page.click('[data-testid=retry-button]', { timeout: 5_000 }).catch((err) => log(`     no retry button: ${err.message.split('\n')[0]}`));
    await waitState(page, 'connected', 30_000);
    await page.waitForSelector('[data-testid=dashboard][data-mode=live]', { timeout: 10_000 });
    await waitText(page, `[data-testid=lead-row-${lead.id}] [data-testid=lead-status]`, 'Enriching');
    // The detail view is still open: the service joined its group again.
    await page.waitForSelector('[data-testid=lead-group][data-status=joined]', { timeout: 10_000 });
  });

  await step('live updates resume', async () => {
    await api('PATCH', `/api/leads/${lead.id}`, { status: 'Enriched' });
    await waitText(page, `[data-testid=lead-row-${lead.id}] [data-testid=lead-status]`, 'Enriched');
    const second = await api('POST', '/api/leads', { name: 'E2E Grace Hopper', source: 'Google' });
    await page.waitForSelector(`[data-testid=lead-row-${second.id}]`, { timeout: 15_000 });
    await waitText(page, '[data-testid=metric-totalLeads-value]', (total0 + 4).toLocaleString('en-US'));
  });
  await screenshot(page, 'dashboard-reconnected');

  if (!(await page.evaluate(() => window.__e2eNoReload === true))) throw new Error('the page reloaded');
  if (pageErrors.length > 0) throw new Error(`${pageErrors.length} uncaught page error(s), first: ${pageErrors[0].message}`);
  log('PASS');
} catch (err) {
  log(`FAIL ${err.stack ?? err}`);
  process.exitCode = 1;
} finally {
  await browser.close().catch((err) => log(`closing the browser: ${err.message}`));
  // stdin (the test's answers) would keep the process alive.
  process.exit();
}
