// Headless browser test of the admin report page (GET /), driven by playwright-core with
// Debian's chromium:
//   node page_test.mjs URL TOKEN SCREENSHOT [EXPECT_JSON]
// URL is the admin server ("http://127.0.0.1:PORT"); EXPECT_JSON optionally holds what the
// page must show: {"totals": {"1.0": 3, "1.2": 2, ...}, "tls10_client": "127.0.0.31"}
// (versions not named must be 0). The test loads URL/#token=TOKEN, waits for the chart, checks
// the totals against the API and the chart, clicks the TLS 1.0 bar segment and the TLS 1.0
// legend entry, checks the message and client lists, exports the messages as CSV, and saves a
// full-page screenshot to SCREENSHOT. It prints one JSON line {"ok": ..., ...} and exits 0 only
// when every check passed.
import { mkdirSync, readFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { chromium } from 'playwright-core';

const [url, token, screenshot, expectArg] = process.argv.slice(2);
if (!url || !token || !screenshot) {
  console.error('usage: node page_test.mjs URL TOKEN SCREENSHOT [EXPECT_JSON]');
  process.exit(2);
}
const expected = expectArg ? JSON.parse(expectArg) : null;
const VERSIONS = ['none', '1.0', '1.1', '1.2', '1.3'];
const STEP_MS = 30000;
const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';

const result = { ok: false, steps: [], screenshot };
const pageErrors = [];

function check(cond, message) {
  if (!cond) throw new Error('check failed: ' + message);
}
const int = (text) => parseInt(String(text).replace(/[^0-9-]/g, ''), 10);

// One step: bounded in time, recorded in the result.
async function step(name, fn) {
  const started = Date.now();
  let timer;
  try {
    const value = await Promise.race([
      fn(),
      new Promise((_, reject) => { timer = setTimeout(() => reject(new Error(`step "${name}" timed out`)), STEP_MS); }),
    ]);
    result.steps.push({ name, ms: Date.now() - started });
    return value;
  } finally {
    clearTimeout(timer);
  }
}

// RFC 4180 records (quoted fields may hold commas, quotes and line breaks).
function parseCsv(text) {
  const rows = [];
  let row = [], field = '', quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') { field += '"'; i++; }
      else if (c === '"') quoted = false;
      else field += c;
    } else if (c === '"') quoted = true;
    else if (c === ',') { row.push(field); field = ''; }
    else if (c === '\n' || c === '\r') {
      if (c === '\r' && text[i + 1] === '\n') i++;
      row.push(field); rows.push(row); row = []; field = '';
    } else field += c;
  }
  if (field !== '' || row.length) { row.push(field); rows.push(row); }
  return rows;
}

async function api(path) {
  const res = await fetch(new URL(path, url), { headers: { Authorization: 'Bearer ' + token } });
  check(res.ok, `${path}: HTTP ${res.status}`);
  return res.json();
}

let browser;
try {
  browser = await step('launch', () => chromium.launch({
    executablePath: CHROMIUM, headless: true, args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'],
    timeout: STEP_MS,
  }));
  const context = await browser.newContext({ acceptDownloads: true, viewport: { width: 1360, height: 900 } });
  const page = await context.newPage();
  page.setDefaultTimeout(STEP_MS);
  page.on('pageerror', (e) => pageErrors.push(String(e)));
  page.on('console', (m) => { if (m.type() === 'error') pageErrors.push('console: ' + m.text() + ' ' + (m.location()?.url || '')); });

  // Unauthenticated first: the token form, not the report.
  await step('token form without a token', async () => {
    await page.goto(new URL('/', url).href);
    await page.waitForSelector('#token-form', { state: 'visible' });
    check(await page.locator('#main').isHidden(), 'the report is hidden without a token');
    pageErrors.splice(0);  // the expected 401 is logged as a console error
  });

  await step('load with #token', async () => {
    await page.goto(new URL('/#token=' + encodeURIComponent(token), url).href);
    await page.waitForSelector('[data-testid="chart"][data-ready="true"]');
    await page.waitForSelector('body[data-state="ready"]');
    check(!page.url().includes(token), 'the token is removed from the address bar: ' + page.url());
    const stored = await page.evaluate(() => sessionStorage.getItem('smtpgate.adminToken'));
    check(stored === token, 'the token is kept in sessionStorage');
  });

  const totals = await step('totals', async () => {
    const t = {};
    const percent = {};
    for (const v of VERSIONS) {
      t[v] = int(await page.getByTestId('total-' + v).textContent());
      percent[v] = parseFloat(await page.getByTestId('percent-' + v).textContent());
    }
    t.all = int(await page.getByTestId('total-all').textContent());
    const report = await api('/api/v1/report?since=30d&by=day&format=json');
    for (const v of [...VERSIONS, 'all']) {
      check(t[v] === report.totals[v], `page total ${v} = ${t[v]}, API says ${report.totals[v]}`);
    }
    for (const v of VERSIONS) {
      const p = report.totals.percent?.[v] ?? 0;
      check(Math.abs(percent[v] - p) < 0.051, `page percent ${v} = ${percent[v]}, API says ${p}`);
    }
    check(VERSIONS.reduce((s, v) => s + t[v], 0) === t.all, 'the versions add up to all');
    if (expected?.totals) {
      for (const v of VERSIONS) {
        const want = expected.totals[v] || 0;
        check(t[v] === want, `total ${v}: page shows ${t[v]}, expected ${want}`);
      }
    }
    result.totals = t;
    result.percent = percent;
    return t;
  });

  await step('chart', async () => {
    // The stacked segments carry their counts: per version they add up to the totals.
    const segs = await page.$$eval('[data-testid="chart"] rect.segment', (rs) => rs.map((r) => ({
      version: r.dataset.version, date: r.dataset.date, count: Number(r.dataset.count),
      fill: getComputedStyle(r).fill, height: Number(r.getAttribute('height')),
    })));
    check(segs.length > 0, 'the chart has bar segments');
    const sums = Object.fromEntries(VERSIONS.map((v) => [v, 0]));
    for (const s of segs) sums[s.version] += s.count;
    for (const v of VERSIONS) check(sums[v] === totals[v], `chart ${v} adds up to ${sums[v]}, totals say ${totals[v]}`);
    const colours = {};
    for (const s of segs) {
      check(!colours[s.version] || colours[s.version] === s.fill, `one colour per version (${s.version})`);
      colours[s.version] = s.fill;
      check(s.height > 0, 'segments have a height');
    }
    check(new Set(Object.values(colours)).size === Object.keys(colours).length, 'distinct colours per version');
    // The table view holds the same numbers.
    const foot = await page.$$eval('#days-table tfoot td', (tds) => tds.map((td) => td.firstChild.textContent));
    check(foot.length === VERSIONS.length + 1, 'table footer has one cell per version and all');
    VERSIONS.forEach((v, i) => check(int(foot[i]) === totals[v], `table total ${v}`));
    result.chart = { segments: segs.length, days: int(await page.getByTestId('chart').getAttribute('data-days')), colours };
  });

  const listsOf = async (selection) => {
    await page.waitForSelector(`#drill[data-loaded="${selection}"]`);
    const messagesTotal = int(await page.getByTestId('messages-total').getAttribute('data-value'));
    const rows = await page.$$eval('[data-testid="message-row"]', (trs) => trs.map((tr) => tr.dataset.tls));
    const clients = await page.$$eval('[data-testid="client-row"]', (trs) => trs.map((tr) => ({
      ip: tr.dataset.ip, text: tr.textContent,
    })));
    return { messagesTotal, rows, clients };
  };

  await step('click the TLS 1.0 bar segment', async () => {
    check(totals['1.0'] > 0, 'there are TLS 1.0 messages to click');
    const seg = page.locator('[data-testid="chart"] rect.segment[data-version="1.0"]').last();
    const date = await seg.getAttribute('data-date');
    const count = Number(await seg.getAttribute('data-count'));
    await seg.click();
    const l = await listsOf('1.0|' + date);
    check(l.messagesTotal === count, `segment ${date}: ${count} messages, list says ${l.messagesTotal}`);
    check(l.rows.length === Math.min(count, 50), `the list shows ${l.rows.length} rows for ${count} messages`);
    check(l.rows.every((v) => v === '1.0'), 'only TLS 1.0 messages: ' + l.rows.join(','));
    check((await page.getByTestId('drill-heading').textContent()).includes('TLS 1.0'), 'the heading names TLS 1.0');
    result.segment = { date, count, listed: l.rows.length };
  });

  await step('click the TLS 1.0 legend entry', async () => {
    await page.getByTestId('legend-1.0').click();
    const l = await listsOf('1.0|');
    check(await page.getByTestId('legend-1.0').getAttribute('aria-pressed') === 'true', 'the legend entry is pressed');
    check(l.messagesTotal === totals['1.0'], `TLS 1.0 list total ${l.messagesTotal}, totals say ${totals['1.0']}`);
    check(l.rows.every((v) => v === '1.0'), 'only TLS 1.0 messages: ' + l.rows.join(','));
    check(l.rows.length === Math.min(totals['1.0'], 50), 'rows shown');
    check(l.clients.length > 0, 'the client list names the TLS 1.0 clients');
    check(l.clients.every((c) => c.text.includes('1.0')), 'every listed client has TLS 1.0 sessions');
    if (expected?.tls10_client) {
      check(l.clients.some((c) => c.ip === expected.tls10_client), `client ${expected.tls10_client} is listed: ` +
        JSON.stringify(l.clients.map((c) => c.ip)));
    }
    result.tls10 = { messages: l.messagesTotal, rows: l.rows.length, clients: l.clients.map((c) => c.ip) };
  });

  await step('export the TLS 1.0 messages as CSV', async () => {
    const [download] = await Promise.all([
      page.waitForEvent('download', { timeout: STEP_MS }),
      page.getByTestId('export-messages').click(),
    ]);
    const file = await download.path();
    const records = parseCsv(readFileSync(file, 'utf8')).filter((r) => r.length > 1 || r[0] !== '');
    check(records.length >= 1, 'the CSV has a header');
    const header = records[0];
    const tlsCol = header.indexOf('tls_version');
    check(tlsCol >= 0, 'the CSV header names tls_version: ' + header.join(','));
    const body = records.slice(1);
    check(body.length === totals['1.0'], `the CSV holds ${body.length} messages, expected ${totals['1.0']}`);
    check(body.every((r) => r[tlsCol] === '1.0'), 'the CSV holds only TLS 1.0 messages');
    check(download.suggestedFilename().endsWith('.csv'), 'a .csv file name: ' + download.suggestedFilename());
    result.csv = { file: download.suggestedFilename(), rows: body.length };
  });

  await step('audit trail section', async () => {
    await page.waitForSelector('#audit-table tbody tr');
    result.auditRows = await page.locator('[data-testid="audit-row"]').count();
  });

  await step('screenshot', async () => {
    // Back to the TLS 1.0 segment view for the picture, then the whole page.
    await page.mouse.move(0, 0);
    mkdirSync(dirname(screenshot), { recursive: true });
    await page.screenshot({ path: screenshot, fullPage: true });
  });

  check(pageErrors.length === 0, 'no script errors: ' + pageErrors.join(' | '));
  result.ok = true;
} catch (e) {
  result.error = String(e?.message || e);
  result.pageErrors = pageErrors;
} finally {
  if (browser) await browser.close().catch(() => {});
}
console.log(JSON.stringify(result));
process.exit(result.ok ? 0 : 1);
