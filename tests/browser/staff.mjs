// The staff pages in Debian's headless Chromium, driven by Playwright (scripts/browser-test): a
// clerk opens the LGWAN site, is sent to sign in, signs in, sees the town's counts, imports a
// file with wrong rows (every one listed, nothing written) and then the right one, finds a
// resident by My Number (which never appears in the address bar), reads their page with the
// number masked, corrects a dose with a reason, issues the paper certificate and revokes it,
// asks the town the resident moved from and
// attaches what comes back, switches to English with the keyboard, and signs out.
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import assert from 'node:assert/strict';
import { launch, run, serve, setup } from './lib/harness.mjs';

const t = setup('staff');
const { bin, env, shots, work, cli } = t;

cli('init');
cli('municipality', 'add', '--code', '472131', '--name', 'うるま市');
for (const [what, file] of [['residents', 't.csv'], ['ledger', 'l.csv']]) {
  cli('gen', what, '--municipality', '472131', '--count', '20', '--seed', '9', '--out', join(work, file));
}
cli('import', 'targets', join(work, 't.csv'), '--municipality', '472131');
cli('import', 'ledger', join(work, 'l.csv'), '--municipality', '472131');
// A second town, where one of our residents lived before.
cli('municipality', 'add', '--code', '472018', '--name', '那覇市');
for (const [what, file] of [['residents', 'n.csv'], ['ledger', 'nl.csv']]) {
  cli('gen', what, '--municipality', '472018', '--count', '20', '--seed', '3', '--out', join(work, file));
}
cli('import', 'targets', join(work, 'n.csv'), '--municipality', '472018');
cli('import', 'ledger', join(work, 'nl.csv'), '--municipality', '472018');
const vaccinatedThere = new Set(readFileSync(join(work, 'nl.csv'), 'utf8').split(/\r?\n/).slice(1).map((l) => l.split(',')[0]));
const movedIn = readFileSync(join(work, 'n.csv'), 'utf8').split(/\r?\n/).slice(1).map((l) => l.split(','))
  .find((c) => c[9] && c[9].length === 12 && vaccinatedThere.has(c[1]) && !c[11] && !c[12]);
cli('keys', 'init');
const password = 'correct horse battery staple';
execFileSync(bin, ['user', 'add', '--id', 'clerk-1', '--role', 'staff', '--municipality', '472131',
  '--password-stdin'], { env, input: password, stdio: ['pipe', 'ignore', 'pipe'] });
const rows = readFileSync(join(work, 't.csv'), 'utf8').split(/\r?\n/).slice(1).map((l) => l.split(','));
const person = rows.find((c) => c[9] && c[9].length === 12);
const [address, name, myNumber] = [person[1], person[5], person[9]];
const vaccinatedHere = new Set(readFileSync(join(work, 'l.csv'), 'utf8').split(/\r?\n/).slice(1).map((l) => l.split(',')[0]));
const newcomers = [...new Set(rows.filter((c) => !vaccinatedHere.has(c[1]) && !c[11] && !c[12]).map((c) => c[1]))];
const newcomer = newcomers[0];

const { server, lgwan } = await serve(t);
const browser = await launch();
await run(t, server, browser, async () => {
  const page = await (await browser.newContext({ locale: 'ja-JP' })).newPage();
  page.on('pageerror', (e) => { throw e; });
  const seen = [];
  page.on('request', (r) => seen.push(r.url()));

  await page.goto(`${lgwan}/`);
  assert.match(page.url(), /\/signin$/);
  await page.getByLabel('ユーザーID').fill('clerk-1');
  await page.getByLabel('パスワード').fill('wrong');
  await page.getByRole('button', { name: 'サインイン' }).click();
  await page.getByRole('alert').waitFor();
  await page.getByLabel('パスワード').fill(password);
  await page.getByRole('button', { name: 'サインイン' }).click();
  await page.waitForURL(/\/m\/472131\/$/);
  assert.ok((await page.locator('h1').innerText()).includes('うるま市'));
  await page.screenshot({ path: join(shots, 'staff-home.png'), fullPage: true });

  // Import a file with two wrong rows: both are listed with their row and column, nothing is
  // written; the corrected file imports.
  cli('gen', 'residents', '--municipality', '472131', '--count', '5', '--seed', '77', '--out', join(work, 'more.csv'));
  const more = readFileSync(join(work, 'more.csv'), 'utf8').split(/\r?\n/);
  const broken = more.map((line, i) => (i === 2 || i === 4 ? line.replace(/,\d{4}-\d{2}-\d{2},/, ',1999-02-30,') : line));
  writeFileSync(join(work, 'broken.csv'), broken.join('\n'));
  await page.getByRole('link', { name: '取込・出力' }).click();
  const targets = page.locator('form[data-kind=targets]');
  await targets.getByLabel('CSVファイル').setInputFiles(join(work, 'broken.csv'));
  await targets.getByRole('button', { name: '取り込む' }).click();
  await targets.locator('.rows li').nth(1).waitFor();
  const wrong = await targets.locator('.rows li').allInnerTexts();
  assert.equal(wrong.length, 2, wrong.join('\n'));
  assert.ok((await targets.getByRole('status').innerText()).includes('何も書き込まれていません'));
  await page.screenshot({ path: join(shots, 'staff-import-errors.png'), fullPage: true });
  await targets.getByLabel('CSVファイル').setInputFiles(join(work, 'more.csv'));
  await targets.getByRole('button', { name: '取り込む' }).click();
  await targets.getByText('取り込みました').waitFor();

  await page.getByRole('link', { name: '住民の検索' }).click();
  await page.getByLabel('検索方法').selectOption('my_number');
  await page.getByLabel('番号').fill(myNumber);
  await page.getByRole('button', { name: '検索' }).click();
  await page.waitForURL(new RegExp(`/m/472131/persons/${address}$`));
  const shown = await page.locator('main').innerText();
  assert.ok(shown.includes(name), 'the name is shown');
  assert.ok(!shown.includes(myNumber) && shown.includes(`********${myNumber.slice(8)}`), 'masked');
  assert.ok(seen.every((u) => !u.includes(myNumber)), 'the My Number is in no URL');
  await page.screenshot({ path: join(shots, 'staff-person.png'), fullPage: true });

  // Correct a dose: the form shows it as recorded, asks for the reason, and the previous
  // version stays in the history.
  await page.getByRole('link', { name: '訂正・削除' }).first().click();
  await page.getByLabel('ロット番号').fill('FK9999');
  await page.getByRole('button', { name: '保存' }).click();
  assert.ok(page.url().includes('/doses/'), 'a correction without a reason stays on the form');
  await page.getByLabel('訂正の理由(必須)').fill('予診票と照合');
  await page.getByRole('button', { name: '保存' }).click();
  await page.getByRole('status').waitFor();
  assert.ok((await page.getByRole('status').innerText()).includes('訂正しました'));
  const history = await page.locator('main').innerText();
  assert.ok(history.includes('FK9999') && history.includes('予診票と照合'), history);
  await page.screenshot({ path: join(shots, 'staff-corrected.png'), fullPage: true });

  // Issue the paper certificate at the counter (a PDF download), then revoke it with a reason.
  await page.getByLabel('形式', { exact: true }).selectOption('pdf');
  const [download] = await Promise.all([
    page.waitForEvent('download'),
    page.getByRole('button', { name: '発行', exact: true }).click(),
  ]);
  const pdf = readFileSync(await download.path());
  assert.equal(pdf.subarray(0, 5).toString(), '%PDF-');
  await page.reload();
  await page.getByLabel('失効の理由').first().fill('再発行のため');
  await page.getByRole('button', { name: '失効', exact: true }).first().click();
  await page.getByRole('status').waitFor();
  assert.ok((await page.getByRole('status').innerText()).includes('失効させました'));

  // Ask the town the resident moved from, and attach what comes back.
  await page.getByRole('link', { name: '照会' }).click();
  await page.getByLabel('照会先自治体コード(転出元)').fill('472018');
  await page.getByLabel('個人番号').fill(movedIn[9]);
  await page.getByLabel('自団体の宛名番号').fill(newcomer);
  await page.getByRole('button', { name: '照会', exact: true }).click();
  await page.getByRole('status').filter({ hasText: '照会しました' }).waitFor();
  assert.ok((await page.getByRole('status').filter({ hasText: '照会しました' }).innerText()).includes('該当あり'));
  assert.ok(seen.every((u) => !u.includes(movedIn[9])), 'the My Number is in no URL');
  await page.locator('input[name=inquiry_id]').first().check();
  await page.getByRole('button', { name: '選んだ結果を自団体の記録に取り込む' }).click();
  await page.getByRole('status').filter({ hasText: '取り込みました' }).waitFor();
  await page.screenshot({ path: join(shots, 'staff-inquiry.png'), fullPage: true });
  // The same as a bulk inquiry file, for another newcomer: it runs, and every found row attaches.
  writeFileSync(join(work, 'bulk.csv'), `照会先自治体コード,個人番号,宛名番号\n472018,${movedIn[9]},${newcomers[1]}\n472018,123456789018,${newcomers[1]}\n`);
  await page.getByLabel('CSVファイル').setInputFiles(join(work, 'bulk.csv'));
  await page.getByRole('button', { name: '一括照会' }).click();
  await page.getByText(/完了/).waitFor();
  assert.ok(await page.getByRole('link', { name: '結果CSVをダウンロード' }).isVisible());
  await page.getByRole('button', { name: '該当ありをすべて取り込む' }).click();
  await page.locator('#bulk-status', { hasText: '取り込みました: 1' }).waitFor();
  await page.goto(`${lgwan}/m/472131/persons/${address}`);

  // English, reached with the keyboard alone.
  const toEnglish = page.getByRole('link', { name: 'English' });
  await toEnglish.focus();
  await page.keyboard.press('Enter');
  await page.locator('dt', { hasText: 'Date of birth' }).waitFor();
  assert.equal(await page.getAttribute('html', 'lang'), 'en');
  assert.ok(page.url().endsWith(`/persons/${address}`), 'back on the same page');

  await page.getByRole('button', { name: 'Sign out' }).click();
  await page.waitForURL(/\/signin$/);
  await page.goto(`${lgwan}/m/472131/`);
  assert.match(page.url(), /\/signin$/, 'signed out');
  console.log('staff pages: ok');
});
