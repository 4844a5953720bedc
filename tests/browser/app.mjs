// The reference resident app page in Debian's headless Chromium, driven by Playwright
// (scripts/browser-test): a resident with a simulated My Number card applies for their own
// certificate. A wrong PIN is refused and counted on the card; with the right PIN the page shows
// the SMART Health Card's QR and offers the file, which verifies; what crossed the internet
// listener was ciphertext only (no My Number, name or birth date in any request or answer).
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import assert from 'node:assert/strict';
import { launch, run, serve, setup } from './lib/harness.mjs';

const t = setup('app');
const { shots, work, cli } = t;

cli('init');
cli('municipality', 'add', '--code', '472131', '--name', 'うるま市');
for (const [what, file] of [['residents', 't.csv'], ['ledger', 'l.csv']]) {
  cli('gen', what, '--municipality', '472131', '--count', '40', '--seed', '5', '--out', join(work, file));
}
cli('import', 'targets', join(work, 't.csv'), '--municipality', '472131');
cli('import', 'ledger', join(work, 'l.csv'), '--municipality', '472131');
cli('keys', 'init');
cli('card', 'issuer-init');
const vaccinated = readFileSync(join(work, 'l.csv'), 'utf8').split(/\r?\n/).slice(1).map((l) => l.split(',')[0]);
const person = readFileSync(join(work, 't.csv'), 'utf8').split(/\r?\n/).slice(1).map((l) => l.split(','))
  .find((c) => c.length > 12 && vaccinated.includes(c[1]) && c[9] && !c[11] && !c[12]);
assert.ok(person, 'a vaccinated resident with a My Number');
const [myNumber, name, birth] = [person[9], person[5], person[7]];
const cardFile = join(work, 'card.json');
cli('card', 'new', '--my-number', myNumber, '--name', name, '--birth-date', birth, '--pin', '1234', '--out', cardFile);
writeFileSync(join(work, 'jwks.json'), cli('keys', 'jwks'));

const { server, base } = await serve(t);
const browser = await launch();
await run(t, server, browser, async () => {
  const page = await (await browser.newContext({ locale: 'ja-JP', acceptDownloads: true })).newPage();
  page.on('pageerror', (e) => { throw e; });
  const crossed = [];
  page.on('request', (r) => crossed.push(r.postData() || ''));
  page.on('response', async (r) => { crossed.push(await r.text().catch(() => '')); });
  await page.goto(`${base}/app/`);
  assert.ok((await page.locator('h1').innerText()).includes('接種証明書アプリ'));

  // A wrong PIN: refused, counted, and the card's new state offered to keep.
  await page.setInputFiles('#card', cardFile);
  await page.fill('#pin', '0000');
  await page.fill('#municipality', '472131');
  await page.click('#apply');
  await page.locator('#error:not([hidden])').waitFor();
  assert.ok((await page.locator('#error').innerText()).includes('2 tries left'));
  const [saved] = await Promise.all([page.waitForEvent('download'), page.click('#card-link')]);
  const counted = JSON.parse(readFileSync(await saved.path(), 'utf8'));
  assert.equal(counted.failures, 1);

  // The right PIN: the certificate's QR and file.
  await page.fill('#pin', '1234');
  await page.click('#apply');
  await page.locator('#result:not([hidden]) .certificate img').waitFor();
  await page.screenshot({ path: join(shots, 'app-certificate.png'), fullPage: true });
  const [download] = await Promise.all([page.waitForEvent('download'), page.click('.certificate a.download')]);
  const shc = join(work, 'mine.smart-health-card');
  writeFileSync(shc, readFileSync(await download.path()));
  const report = JSON.parse(cli('verify', shc, '--jwks', join(work, 'jwks.json'), '--json'));
  assert.equal(report.passed, true, JSON.stringify(report));

  // Another municipality has no record of this resident: a clear refusal.
  await page.fill('#pin', '1234');
  await page.fill('#municipality', '472018');
  await page.click('#apply');
  await page.locator('#error:not([hidden])').waitFor();
  const refusal = await page.locator('#error').innerText();
  assert.ok(refusal.includes(' / '), refusal);

  for (const text of crossed) {
    for (const value of [myNumber, name, name.split('\u3000')[0], birth]) {
      assert.ok(!text.includes(value), `a personal value crossed the internet listener: ${text.slice(0, 200)}`);
    }
  }
  console.log('resident app page: ok');
});
