// The README's picture of the dashboard, driven by TestScreenshot in
// e2e_test.go against an example server whose simulated scrapers and
// workflow fill it: once the table, the charts and the activity feed hold
// enough to show, it saves one screenshot of the window.
//
// Env: DASHBOARD_URL (the server's "dashboard:" link, with #token=...),
// CHROMIUM (the browser binary), SCREENSHOT (the PNG file to write).
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { chromium } from 'playwright-core';

const need = (name) => {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set`);
  return v;
};
const dashboardURL = need('DASHBOARD_URL');
const out = need('SCREENSHOT');
mkdirSync(dirname(out), { recursive: true });

/** count returns how many elements match selector. */
const count = (page, selector) => page.locator(selector).count();

const browser = await chromium.launch({
  executablePath: need('CHROMIUM'),
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--no-first-run'],
});
try {
  // The page's full width (it stops growing at 1400 px): the cards, both
  // charts, the processing analytics, and the top of the table with the
  // live activity beside it.
  const page = await browser.newPage({ viewport: { width: 1400, height: 1400 }, locale: 'en-US' });
  const errors = [];
  page.on('pageerror', (err) => errors.push(err));
  await page.goto(dashboardURL);
  await page.waitForSelector('[data-testid=connection-state][data-state=connected]', { timeout: 20_000 });
  await page.waitForSelector('[data-testid=dashboard][data-mode=live]', { timeout: 10_000 });

  // Enough leads for a full table and several statuses and sources in the
  // charts, while some workflows are still running.
  const state = async () => ({
    rows: await count(page, '[data-testid=leads-table] tbody tr[data-testid^=lead-row-]'),
    total: Number((await page.textContent('[data-testid=metric-totalLeads-value]')).replace(/\D/g, '')),
    activity: await count(page, '[data-testid=activity] li'),
    statuses: await count(page, '[data-testid=chart-status] .bar'),
    analytics: await count(page, '[data-testid=analytics] canvas'),
  });
  // Created, processed and the funnel drawn (failures too, usually, at the
  // simulation's failure rate).
  const full = (s) => s.rows >= 16 && s.activity >= 12 && s.statuses >= 4 && s.analytics >= 3;
  let s = await state();
  for (const deadline = Date.now() + 90_000; !full(s); s = await state()) {
    if (Date.now() > deadline) throw new Error(`the simulation did not fill the dashboard within 90 s: ${JSON.stringify(s)}`);
    await page.waitForTimeout(250);
  }
  // The metrics are coalesced, so they may lag the table a moment: give
  // them a few seconds to agree with it, for a picture that adds up.
  for (const deadline = Date.now() + 10_000; s.total !== s.rows && Date.now() < deadline; s = await state()) {
    await page.waitForTimeout(100);
  }
  console.log(`dashboard: ${JSON.stringify(s)}`);

  await page.screenshot({ path: out, animations: 'disabled' });
  if (errors.length > 0) throw new Error(`${errors.length} uncaught page error(s), first: ${errors[0].message}`);
  console.log(`screenshot: ${out}`);
  console.log('PASS');
} catch (err) {
  console.log(`FAIL ${err.stack ?? err}`);
  process.exitCode = 1;
} finally {
  await browser.close().catch((err) => console.log(`closing the browser: ${err.message}`));
}
