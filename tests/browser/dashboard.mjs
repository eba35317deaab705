// Drives the pgpulse dashboard in headless Chromium (Debian's /usr/bin/chromium)
// with playwright-core. Run by crates/pgpulse-api/tests/browser.rs:
//   node dashboard.mjs <base url> <admin api key> <screenshot dir>
// (PGPULSE_READ_KEY, when set, is a valid non-admin key: the page must say 403.)
// Prints `RESULT {json}` for the Rust side and exits non-zero on any failure.
import { chromium } from 'playwright-core';
import path from 'node:path';

const [url, key, shots] = process.argv.slice(2);
if (!url || !key || !shots) {
  console.error('usage: node dashboard.mjs <url> <key> <screenshot dir>');
  process.exit(2);
}

const t0 = Date.now();
function check(cond, what) {
  if (!cond) throw new Error('check failed: ' + what);
  console.log(`ok - ${what} (${((Date.now() - t0) / 1000).toFixed(1)} s)`);
}

const shot = (page, name, fullPage = true) => page.screenshot({ path: path.join(shots, `dashboard-${name}.png`), fullPage });

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'],
});
let failed = false;
try {
  const context = await browser.newContext({ viewport: { width: 1440, height: 900 } });
  const page = await context.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  page.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });
  page.setDefaultTimeout(20000);

  // `/` redirects to the page, which asks for a key.
  await page.goto(url + '/');
  check(page.url() === url + '/dashboard/', 'GET / redirects to /dashboard/');
  await page.waitForSelector('#login-form', { state: 'visible' });

  // A valid key without the admin role is refused with its own message.
  if (process.env.PGPULSE_READ_KEY) {
    await page.fill('#api-key', process.env.PGPULSE_READ_KEY);
    await page.click('#login-submit');
    await page.waitForFunction(() => /403/.test(document.querySelector('#login-error').textContent));
    check(/admin/.test(await page.textContent('#login-error')), 'a read-only key shows the 403 message');
  }

  // A wrong key is refused with a clear message.
  await page.fill('#api-key', 'pgp_not-a-real-key');
  await page.click('#login-submit');
  await page.waitForSelector('#login-error', { state: 'visible' });
  const refused = await page.textContent('#login-error');
  check(/401/.test(refused) && /not accepted/.test(refused), 'a wrong key shows the 401 message: ' + refused);
  await shot(page, 'login');

  // The real key opens the dashboard.
  await page.fill('#api-key', key);
  await page.click('#login-submit');
  await page.waitForSelector('#app-view', { state: 'visible' });
  await page.waitForSelector('#kpi-qps .value');
  check(await page.evaluate(() => sessionStorage.getItem('pgpulse.apiKey') !== null), 'the key is kept in sessionStorage');

  // Throughput moves under the workload the Rust side keeps recording.
  const qps = async () => (await page.textContent('#kpi-qps .value')).trim();
  const seen = [await qps()];
  const first = seen[0];
  await page.waitForFunction((v) => document.querySelector('#kpi-qps .value').textContent.trim() !== v, first, { timeout: 30000 });
  seen.push(await qps());
  check(seen[0] !== seen[1], `the throughput tile changes (${seen[0]} -> ${seen[1]})`);
  const parse = (s) => Number(s.replace(/[^0-9.]/g, ''));
  await page.waitForSelector('#chart-throughput canvas');
  await page.waitForSelector('#chart-latency canvas');
  await page.waitForSelector('#chart-cache canvas');
  await page.waitForSelector('#chart-pools canvas');
  check(true, 'the four charts are drawn');
  const causes = await page.textContent('#cache-tables [data-role=miss-causes]');
  check(/misses: [0-9,]+ cold · [0-9,]+ invalidated · [0-9,]+ expired · [0-9,]+ suspended/.test(causes), `the cache panel shows misses by cause (${causes})`);

  // A 429 (as the API's limiter answers it) pauses polling with a message,
  // which clears once a poll succeeds again.
  await page.route('**/api/performance/dashboard?only=live', (route) => route.fulfill({
    status: 429, contentType: 'application/json', headers: { 'Retry-After': '2' },
    body: JSON.stringify({ error: { code: 'rate_limited', message: 'rate limit exceeded, retry in 2 s', request_id: 'test' } }),
  }), { times: 1 });
  await page.waitForFunction(() => /429/.test(document.querySelector('#banner').textContent) && !document.querySelector('#banner').hidden);
  check(/retrying in 2 s/.test(await page.textContent('#banner')), 'a 429 pauses polling with a clear message');
  await page.waitForSelector('#banner', { state: 'hidden', timeout: 15000 });
  check(true, 'the 429 message clears after the next successful poll');

  // Server text is text: the hostile alert title and query are shown, not run.
  const alertsText = await page.textContent('#alerts');
  check(alertsText.includes('<img src=x onerror='), 'markup in an alert title is shown as text');
  check(await page.evaluate(() => window.__xss === undefined && document.querySelectorAll('#app-view img').length === 0), 'no element was created from server text');
  await shot(page, 'overview');
  // A laptop screen: the charts follow the width.
  await page.setViewportSize({ width: 1366, height: 768 });
  await page.waitForTimeout(300);
  await shot(page, 'laptop', false);
  await page.setViewportSize({ width: 1440, height: 900 });

  // Acknowledge the first open alert with a comment.
  const item = page.locator('#alerts .item:not(.acked)').first();
  const alertId = Number(await item.getAttribute('data-alert-id'));
  const openBefore = Number((await page.textContent('#kpi-alerts .value')).trim());
  await item.locator('input').fill('looked at it from the dashboard');
  await item.locator('button', { hasText: 'Acknowledge' }).click();
  const acked = page.locator(`#alerts .item[data-alert-id="${alertId}"] [data-role=status]`);
  await acked.filter({ hasText: 'acknowledged' }).waitFor();
  const ackText = await page.textContent(`#alerts .item[data-alert-id="${alertId}"]`);
  await page.waitForFunction((n) => document.querySelector('#kpi-alerts .value').textContent.trim() === String(n), openBefore - 1);
  check(true, `the open-alerts tile drops to ${openBefore - 1}`);
  check(/Acknowledged by ops-admin/.test(ackText) && ackText.includes('looked at it from the dashboard'), 'the alert shows it was acknowledged, by whom, with the comment');

  // The plan of the slowest query, as a tree, with the normalized text.
  await page.locator('#slow-queries tr[data-log-id]', { hasText: 'appointments' }).first().click();
  await page.waitForSelector('#plan-viewer', { state: 'visible' });
  const planText = await page.textContent('#plan-viewer');
  check(!planText.includes('[object'), 'plan properties are rendered as text');
  check(planText.includes('Hash Join') && planText.includes('Seq Scan') && planText.includes('Index Scan'), 'the plan tree shows its nodes');
  check((await page.textContent('#plan-query')).includes('WHERE a.starts_at > $1'), 'the normalized query is shown');
  const nested = page.locator('#plan-viewer details details summary', { hasText: 'Seq Scan' });
  check(await nested.isVisible(), 'child nodes are nested and open');
  await page.locator('#plan-viewer').scrollIntoViewIfNeeded();
  await shot(page, 'plan');

  // Absent list parts are skipped, not printed as "null".
  const recPanel = await page.locator('#recommendations').evaluate((e) => e.parentElement.textContent);
  check(!/\bnull\b/.test(recPanel), 'no "null" shown in the recommendations panel');

  // A recommendation's dry run shows the statement, or the server's error.
  const rec = page.locator('#recommendations .item').first();
  await rec.locator('button', { hasText: 'Preview' }).click();
  const result = rec.locator('[data-role=result]');
  await result.waitFor({ state: 'visible' });
  const resultText = await result.textContent();
  check(/CREATE INDEX CONCURRENTLY/.test(resultText) && /would run/.test(resultText), 'the dry run shows the statement: ' + resultText);
  // Implement asks for a confirmation, then runs it on the server.
  await rec.locator('button', { hasText: 'Implement…' }).click();
  await rec.locator('button', { hasText: 'Confirm implement' }).click();
  await rec.locator('[data-role=result]', { hasText: /Implemented|applied/ }).waitFor({ timeout: 60000 });
  const implemented = await rec.locator('[data-role=result]').textContent();
  check(/applied/.test(implemented) && !/Failed/.test(implemented), 'implement applies the recommendation: ' + implemented);
  check(!/\bnull\b/.test(implemented), 'the outcome shows no "null": ' + implemented);
  await shot(page, 'implement');

  // A report opens from a blob URL fetched with the key.
  await page.locator('#reports tr', { hasText: 'Daily performance report' }).locator('button[data-report-id]').click();
  await page.waitForSelector('#report-modal', { state: 'visible' });
  const frame = page.frameLocator('#report-frame');
  await frame.locator('#marker').waitFor();
  check((await frame.locator('h1').textContent()) === 'Daily performance report', 'the report renders in the modal');
  check((await page.getAttribute('#report-frame', 'src')).startsWith('blob:'), 'the report is shown from a blob URL');
  await page.click('#report-close');

  // The real report pgpulse generated over the last hour (the newest).
  const title = process.env.PGPULSE_REPORT_TITLE;
  if (title) {
    await page.locator('#reports tr', { hasText: title }).locator('button[data-report-id]').click();
    await page.waitForFunction((t) => document.querySelector('#report-title').textContent === t, title);
    await frame.locator('svg').first().waitFor();
    const body = await frame.locator('body').textContent();
    check(body.length > 200, 'the generated report renders with its charts');
  }
  await shot(page, 'report', false);
  await page.click('#report-close');

  // Sign out forgets the key.
  await page.click('#logout');
  await page.waitForSelector('#login-form', { state: 'visible' });
  check(await page.evaluate(() => sessionStorage.getItem('pgpulse.apiKey') === null), 'signing out forgets the key');

  const unexpected = errors.filter((e) => !/\b(401|403|404|429)\b|Unauthorized|Forbidden|Not Found/.test(e));
  check(unexpected.length === 0, 'no script errors: ' + JSON.stringify(unexpected));
  console.log('RESULT ' + JSON.stringify({ acknowledged_alert: alertId, throughput_seen: seen.map(parse) }));
} catch (e) {
  failed = true;
  console.error(e && e.stack ? e.stack : String(e));
  try {
    const pages = browser.contexts().flatMap((c) => c.pages());
    if (pages[0]) await pages[0].screenshot({ path: path.join(shots, 'dashboard-failure.png'), fullPage: true });
  } catch (_) { /* best effort */ }
} finally {
  await browser.close();
}
process.exit(failed ? 1 : 0);
