// The public verifier page in Debian's headless Chromium, driven by Playwright
// (scripts/browser-test): a throw-away deployment issues a SMART Health Card and its QR image;
// pasting the card, and uploading the image, both show "valid" with every check passing and only
// the holder's initials; after staff revoke it the page says why it is no longer valid.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import assert from 'node:assert/strict';
import { launch, run, serve, setup } from './lib/harness.mjs';

const t = setup('verify');
const { shots, work, cli } = t;

cli('init');
cli('municipality', 'add', '--code', '472131', '--name', 'うるま市');
for (const [what, file] of [['residents', 't.csv'], ['ledger', 'l.csv']]) {
  cli('gen', what, '--municipality', '472131', '--count', '20', '--seed', '5', '--out', join(work, file));
}
cli('import', 'targets', join(work, 't.csv'), '--municipality', '472131');
cli('import', 'ledger', join(work, 'l.csv'), '--municipality', '472131');
cli('keys', 'init');
const address = readFileSync(join(work, 'l.csv'), 'utf8').split(/\r?\n/)[1].split(',')[0];
const person = readFileSync(join(work, 't.csv'), 'utf8').split(/\r?\n/).map((l) => l.split(','))
  .find((c) => c[1] === address);
const issued = cli('certificate', 'issue', '--municipality', '472131', '--address-number', address,
  '--kind', 'domestic', '--format', 'shc', '--out', join(work, 'card.smart-health-card'),
  '--qr-png', join(work, 'card.png'));
const id = issued.split(/\s+/)[4];

const { server, base } = await serve(t);
const browser = await launch();
await run(t, server, browser, async () => {
  const page = await (await browser.newContext({ locale: 'ja-JP' })).newPage();
  page.on('pageerror', (e) => { throw e; });
  await page.goto(`${base}/verify/`);
  assert.equal(await page.locator('h1').innerText().then((t) => t.includes('接種証明書の検証')), true);

  // Pasted: the .smart-health-card file's content.
  await page.fill('#payload', readFileSync(join(work, 'card.smart-health-card'), 'utf8'));
  await page.click('#check');
  await page.locator('#verdict.ok').waitFor();
  const rows = await page.locator('#checks tbody tr').allInnerTexts();
  assert.ok(rows.length >= 4 && rows.every((r) => r.includes('OK')), rows.join('\n'));
  // Each check named in Japanese, as a person reads it.
  for (const check of ['読み取り', '署名', '有効期間', '失効']) {
    assert.ok(rows.some((r) => r.startsWith(check) && r.includes('OK')), `${check}: ${rows.join('\n')}`);
  }
  const shown = await page.locator('#result').innerText();
  // Every dose by its vaccine's name, and never a "null" where a SMART Health Card has no
  // dose number.
  const doses = await page.locator('#certificates li').allInnerTexts();
  assert.ok(doses.length >= 1, shown);
  for (const d of doses) {
    assert.ok(/^\d{4}-\d{2}-\d{2}\s+(コミナティ|スパイクバックス|バキスゼブリア|ヌバキソビッド|ジェコビデン)/.test(d), d);
    assert.ok(!/null|undefined|NaN/.test(d), d);
  }
  const [name, birth] = [person[5], person[7]];
  assert.ok(!shown.includes(name) && !shown.includes(name.split('\u3000')[0]), 'no name on the page');
  assert.ok(!shown.includes(birth), 'no date of birth on the page');
  await page.screenshot({ path: join(shots, 'verify-valid.png'), fullPage: true });

  // Uploaded: the QR image.
  await page.fill('#payload', '');
  await page.setInputFiles('#image', join(work, 'card.png'));
  await page.click('#check');
  await page.locator('#verdict.ok').waitFor();

  // Revoked by staff: the same image is no longer valid, and the page says why.
  cli('certificate', 'revoke', '--municipality', '472131', '--id', id, '--reason', '再発行');
  await page.click('#check');
  await page.locator('#verdict.ng').waitFor();
  const revoked = await page.locator('#checks tbody').innerText();
  assert.ok(/失効 \/ Revocation\s+NG/.test(revoked), revoked);
  await page.screenshot({ path: join(shots, 'verify-revoked.png'), fullPage: true });

  // Garbage is a clear "not valid", not an error page.
  await page.setInputFiles('#image', []);
  await page.fill('#payload', 'not a certificate');
  await page.click('#check');
  await page.locator('#verdict.ng').waitFor();
  console.log('verify page: ok');
});
