// The venue tablet page in Debian's headless Chromium, driven by Playwright (scripts/browser-test):
// set up a device from a provisioning link, record a dose with the on-screen keypad, see the
// server's refusals (wrong date of birth, a misread check digit), then lose the connection,
// record into the offline queue, and watch it being sent when the connection is back.
// Everything runs against a real `openvrs serve` on a throw-away SQLite data directory.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import assert from 'node:assert/strict';
import { launch, run, serve, setup } from './lib/harness.mjs';

const t = setup('venue');
const { shots, work, cli } = t;

// ---- a town with synthetic residents and one venue device --------------------------------
cli('init');
cli('municipality', 'add', '--code', '472131', '--name', 'うるま市');
cli('gen', 'residents', '--municipality', '472131', '--count', '60', '--seed', '11', '--out', join(work, 't.csv'));
cli('import', 'targets', join(work, 't.csv'), '--municipality', '472131');
const token = cli('user', 'add', '--id', 'tablet-1', '--role', 'venue', '--municipality', '472131',
  '--venue', 'うるま市民体育館').split('\n').find((l) => l.includes('shown once')).trim().split(/\s+/).pop();

// Papers of living residents: the OCR line of the first voucher and the date of birth as the
// keypad takes it (8 digits, or the era number and 6 digits).
const ERAS = { 明治: 1, 大正: 2, 昭和: 3, 平成: 4, 令和: 5 };
const papers = readFileSync(join(work, 't.csv'), 'utf8').trim().split(/\r?\n/).slice(1)
  .map((l) => l.split(','))
  .filter((c) => c[4] === '1' && c[12] === '' && c[11] === '')
  .map((c) => {
    let birth = null;
    let m;
    if ((m = c[7].match(/^(\d{4})-(\d{2})-(\d{2})$/))) birth = m[1] + m[2] + m[3];
    else if ((m = c[7].match(/^(明治|大正|昭和|平成|令和)(\d+)年(\d+)月(\d+)日$/))) {
      birth = `${ERAS[m[1]]}${[m[2], m[3], m[4]].map((n) => n.padStart(2, '0')).join('')}`;
    }
    return { ocr: `1${c[4]}472131${c[2]}`, birth, name: c[5], kana: c[6] };
  })
  .filter((p) => p.birth);
const iso = papers.find((p) => p.birth.length === 8);
const era = papers.find((p) => p.birth.length === 7);
const [other, offline] = papers.filter((p) => p !== iso && p !== era);
assert.ok(iso && era && other && offline, 'the generator made the papers this test needs');

// ---- the server ------------------------------------------------------------------------
const { server, base } = await serve(t);
const browser = await launch();
await run(t, server, browser, async () => {
  const context = await browser.newContext({ locale: 'ja-JP', viewport: { width: 1024, height: 1366 } });
  const page = await context.newPage();
  const urls = [];
  page.on('request', (r) => urls.push(r.url()));
  page.on('pageerror', (e) => { throw e; });
  const visible = (id) => page.locator(`section#${id}`).waitFor({ state: 'visible' });
  const keypad = async (id, digits) => {
    for (const d of digits) await page.locator(`.keypad[data-for="${id}"] button`, { hasText: new RegExp(`^${d}$`) }).click();
  };
  const record = async (paper, { typed = false } = {}) => {
    await visible('voucher');
    if (typed) await page.fill('#ocr', paper.ocr); else await keypad('ocr', paper.ocr);
    await page.click('#voucher [data-next]');
    await visible('birth');
    await page.fill('#birth-date', '');
    await keypad('birth-date', paper.birth);
    await page.click('#birth [data-next]');
    await visible('lot');
    await page.click('#lot-choices button');
    await page.click('#lot [data-next]');
    await visible('confirm');
    await page.click('#record');
  };

  // Provisioning link: the token is taken from the fragment and leaves the address bar.
  await page.goto(`${base}/venue/#token=${token}`);
  await visible('setup');
  assert.equal(new URL(page.url()).hash, '');
  await page.locator('#device').filter({ hasText: 'うるま市民体育館' }).waitFor();
  await page.selectOption('#lot-product', 'comirnaty');
  await page.fill('#lot-number', 'fa1234');
  await page.click('#lot-form button[type=submit]');
  await page.locator('#lot-list').filter({ hasText: 'FA1234' }).waitFor();
  await page.screenshot({ path: join(shots, 'venue-setup.png') });
  await page.click('#start');

  // A short OCR line does not pass the first step.
  await visible('voucher');
  await keypad('ocr', '12345');
  await page.click('#voucher [data-next]');
  await page.locator('#voucher-error').filter({ hasText: '18桁' }).waitFor();
  await page.click('.keypad[data-for="ocr"] button[aria-label="全消去"]');

  // Recorded: the dose number and a masked name, nothing more.
  await record(iso);
  await visible('result');
  await page.locator('#result-title').filter({ hasText: '記録しました' }).waitFor();
  const result = await page.locator('#result').innerText();
  assert.match(result, /1 回目/);
  assert.match(result, /\*\*/);
  assert.ok(!result.includes(iso.name.replace('　', ' ')) && !result.includes(iso.kana), 'no full name on screen');
  await page.screenshot({ path: join(shots, 'venue-recorded.png') });

  // The era form of a date of birth, typed on the keypad.
  await page.click('#next-person');
  await record(era);
  await page.locator('#result-title').filter({ hasText: '記録しました' }).waitFor();

  // The wrong date of birth: refused, said on the confirm screen, nothing queued.
  await page.click('#next-person');
  await record({ ...other, birth: '19000101' }, { typed: true });
  await page.locator('#confirm-error').filter({ hasText: '生年月日が一致しません' }).waitFor();
  await page.screenshot({ path: join(shots, 'venue-refused.png') });
  assert.ok(await page.locator('#pending').isHidden(), 'a refused record is not queued');

  // A misread municipality check digit (position 8): refused before any lookup.
  const misread = other.ocr.slice(0, 7) + String((Number(other.ocr[7]) + 1) % 10) + other.ocr.slice(8);
  await page.click('#confirm [data-go="lot"]');
  await page.click('#lot [data-go="birth"]');
  await page.click('#birth [data-go="voucher"]');
  await page.fill('#ocr', '');
  await record({ ...other, ocr: misread }, { typed: true });
  await page.locator('#confirm-error').filter({ hasText: '検査数字' }).waitFor();

  // Offline: the page opens from the service worker, the record waits in the outbox...
  await page.evaluate(() => navigator.serviceWorker.ready);
  await page.reload();
  await page.waitForFunction(() => navigator.serviceWorker.controller !== null);
  await context.setOffline(true);
  await page.reload();
  await visible('voucher');
  await page.locator('#network').filter({ hasText: 'オフライン' }).waitFor();
  await record(offline);
  await page.locator('#result-title').filter({ hasText: '未送信' }).waitFor();
  await page.locator('#pending[data-pending="1"]').waitFor();
  await page.click('#pending');
  await visible('queue');
  await page.locator('#queue-rows tr').filter({ hasText: offline.ocr.slice(8) }).waitFor();
  await page.screenshot({ path: join(shots, 'venue-offline-queue.png') });
  // ...and is sent, with its idempotency key, as soon as the connection is back.
  await context.setOffline(false);
  await page.locator('#pending').waitFor({ state: 'hidden' });
  assert.equal((await page.locator('#queue-rows tr').count()), 0);

  // The queued record reached the server: the same paper again is "already recorded".
  await page.click('#queue [data-go="voucher"]');
  await record(offline, { typed: true });
  await page.locator('#result-title').filter({ hasText: '記録済み' }).waitFor();

  // No personal data ever went into a URL.
  for (const u of urls) {
    for (const p of [iso, era, other, offline]) {
      assert.ok(!u.includes(p.ocr) && !u.includes(p.ocr.slice(8)) && !u.includes(p.birth), `personal data in ${u}`);
    }
  }
  console.log(`venue page: ok (${urls.length} requests, screenshots in ${shots})`);
});
