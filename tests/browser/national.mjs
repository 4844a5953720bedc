// The state's and a prefecture's pages in Debian's headless Chromium, driven by Playwright
// (scripts/browser-test): the national administrator signs in, lands on the counts, sees the
// chart of doses per day for the country and for Okinawa; a Tokyo viewer sees Tokyo only.
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import assert from 'node:assert/strict';
import { launch, run, serve, setup } from './lib/harness.mjs';

const t = setup('national');
const { bin, env, shots, work, cli } = t;

cli('init');
cli('municipality', 'add', '--code', '472131', '--name', 'うるま市');
for (const [what, file] of [['residents', 't.csv'], ['ledger', 'l.csv']]) {
  cli('gen', what, '--municipality', '472131', '--count', '200', '--seed', '4', '--out', join(work, file));
}
cli('import', 'targets', join(work, 't.csv'), '--municipality', '472131');
cli('import', 'ledger', join(work, 'l.csv'), '--municipality', '472131');
const password = 'correct horse battery staple';
const add = (...args) => execFileSync(bin, ['user', 'add', ...args, '--password-stdin'],
  { env, input: password, stdio: ['pipe', 'ignore', 'pipe'] });
add('--id', 'kuni', '--role', 'national');
add('--id', 'tokyo', '--role', 'prefecture', '--prefecture', '13');

const { server, lgwan } = await serve(t);
const browser = await launch();
const signIn = async (user) => {
  const page = await (await browser.newContext({ locale: 'ja-JP' })).newPage();
  page.on('pageerror', (e) => { throw e; });
  await page.goto(`${lgwan}/`);
  await page.getByLabel('ユーザーID').fill(user);
  await page.getByLabel('パスワード').fill(password);
  await page.getByRole('button', { name: 'サインイン' }).click();
  await page.waitForURL(/\/aggregates$/);
  return page;
};
await run(t, server, browser, async () => {
  const page = await signIn('kuni');
  const chart = page.getByRole('img', { name: /日ごとの接種回数 全国/ });
  await chart.waitFor();
  assert.ok(await page.locator('svg polyline').count() >= 2, 'a line per dose number');
  await page.screenshot({ path: join(shots, 'national-counts.png'), fullPage: true });
  await page.getByLabel('都道府県').selectOption({ label: '沖縄県' });
  await page.getByRole('button', { name: '表示' }).click();
  await page.getByRole('img', { name: /沖縄県/ }).waitFor();
  const totals = await page.locator('h2:has-text("累計") + table').innerText();
  assert.ok(/\d/.test(totals), totals);
  // The chart's numbers as a table, for screen readers and anyone who wants them.
  await page.getByText('グラフの数値(表)').click();
  const numbers = page.locator('figure table');
  await numbers.waitFor();
  assert.ok(await numbers.locator('tbody tr').count() >= 1, 'a row per day');
  // The legend sits above the plot, so no line crosses it: every legend label is higher than
  // the top of the plot (y = 40 in the chart's own units).
  const legendY = await page.locator('svg.chart text[y="20"]').count();
  assert.ok(legendY >= 1, 'the legend above the plot');

  const viewer = await signIn('tokyo');
  await viewer.goto(`${lgwan}/aggregates?prefecture=47`);
  await viewer.getByRole('img', { name: /東京都/ }).waitFor();
  assert.equal(await viewer.getByLabel('都道府県').count(), 0, 'no choice of prefecture');
  console.log('national and prefecture pages: ok');
});
