// The venue tablet page: one screen per step (voucher, date of birth, vaccine and lot,
// confirm), then the server's answer. Every record goes into a local outbox (IndexedDB) with its
// idempotency key before it is sent, so a lost answer, a closed page or a dead connection never
// loses nor doubles a record: the outbox is sent again until the server has answered.
// Personal data shown here is only what the operator typed and the masked name the server
// returns; nothing from the page is ever put into a URL.
'use strict';

const TOKEN = 'openvrs.venue.token';
const LOTS = 'openvrs.venue.lots';
const PRODUCTS = 'openvrs.venue.products';
const RETRY_MS = 10000;

const $ = (id) => document.getElementById(id);
const el = (tag, text, attrs = {}) => {
  const e = document.createElement(tag);
  if (text !== undefined) e.textContent = text;
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  return e;
};
const load = (key, fallback) => {
  try { return JSON.parse(localStorage.getItem(key)) ?? fallback; } catch { return fallback; }
};
const save = (key, value) => localStorage.setItem(key, JSON.stringify(value));
const digits = (s) => s.normalize('NFKC').replace(/[^0-9]/g, '');

const state = { token: localStorage.getItem(TOKEN) || '', lots: load(LOTS, []), lot: null };

// ---- screens -------------------------------------------------------------------------------

function show(id) {
  for (const s of document.querySelectorAll('main > section')) s.hidden = s.id !== id;
  const first = $(id).querySelector('input, .choices button, button.primary');
  if (first) first.focus();
  if (id === 'lot') renderLotChoices();
  if (id === 'confirm') renderSummary();
  if (id === 'queue') renderQueue();
  if (id === 'setup') renderSetup();
}

function fail(id, message) { $(id).textContent = message || ''; }

// ---- the server ----------------------------------------------------------------------------

class Offline extends Error {}

async function api(method, path, body) {
  let response;
  try {
    response = await fetch(path, {
      method,
      headers: { authorization: `Bearer ${state.token}`, 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
      cache: 'no-store',
    });
  } catch (e) {
    throw new Offline(String(e));
  }
  const data = await response.json().catch(() => ({}));
  // A server that cannot answer now (overloaded, restarting) is like no connection: retry.
  if (response.status >= 500 || response.status === 429) throw new Offline(`HTTP ${response.status}`);
  return { status: response.status, data };
}

async function identify() {
  if (!state.token) return false;
  try {
    const { status, data } = await api('GET', '/api/venue/me');
    if (status !== 200) return false;
    $('device').textContent = `${data.venue || ''} (${data.municipality || ''}) ${data.user}`;
    const products = await api('GET', '/api/venue/products');
    if (products.status === 200) save(PRODUCTS, products.data);
    return true;
  } catch (e) {
    if (!(e instanceof Offline)) throw e;
    $('device').textContent = 'オフライン: 前回の設定で記録します / offline: recording with the last set-up';
    return true;
  }
}

// ---- set-up: the device token and today's lots -------------------------------------------

function renderSetup() {
  $('token').value = state.token;
  const select = $('lot-product');
  select.replaceChildren(...load(PRODUCTS, []).map((p) => el('option', p.name, { value: p.code })));
  $('lot-list').replaceChildren(...state.lots.map((l, i) => {
    const li = el('li');
    li.append(el('span', `${l.name} ${l.lot}`));
    const remove = el('button', '削除 / remove', { type: 'button' });
    remove.addEventListener('click', () => {
      state.lots.splice(i, 1);
      save(LOTS, state.lots);
      renderSetup();
    });
    li.append(remove);
    return li;
  }));
}

$('token-form').addEventListener('submit', async (e) => {
  e.preventDefault();
  state.token = $('token').value.trim();
  if (!(await identify())) {
    fail('setup-error', '端末トークンが正しくありません / the device token is not valid');
    return;
  }
  localStorage.setItem(TOKEN, state.token);
  fail('setup-error');
  renderSetup();
});

$('lot-form').addEventListener('submit', (e) => {
  e.preventDefault();
  const code = $('lot-product').value;
  const product = load(PRODUCTS, []).find((p) => p.code === code);
  const lot = $('lot-number').value.normalize('NFKC').trim().toUpperCase();
  if (!product || !lot) return;
  if (product.lot_pattern && !new RegExp(`^(?:${product.lot_pattern})$`).test(lot)) {
    fail('setup-error', `ロット番号の書式が ${product.name} と合いません / the lot number does not look like one of ${product.code}`);
    return;
  }
  fail('setup-error');
  state.lots.push({ product: product.code, name: product.name, lot });
  save(LOTS, state.lots);
  $('lot-number').value = '';
  renderSetup();
});

$('start').addEventListener('click', () => {
  if (!state.token) return fail('setup-error', '端末トークンを登録してください / save the device token first');
  if (!state.lots.length) return fail('setup-error', 'ロットを追加してください / add today\'s lots first');
  fail('setup-error');
  show('voucher');
});

// ---- steps ---------------------------------------------------------------------------------

for (const pad of document.querySelectorAll('.keypad')) {
  const input = $(pad.dataset.for);
  for (const key of ['1', '2', '3', '4', '5', '6', '7', '8', '9', 'C', '0', '←']) {
    const label = key === 'C' ? '全消去' : key === '←' ? '1字消去' : key;
    const b = el('button', key === 'C' ? 'C' : key, { type: 'button', 'aria-label': label });
    b.addEventListener('click', () => {
      if (key === 'C') input.value = '';
      else if (key === '←') input.value = input.value.slice(0, -1);
      else input.value += key;
      input.focus();
    });
    pad.append(b);
  }
}

const checks = {
  voucher() {
    const n = digits($('ocr').value);
    return n.length === 18 ? null : `OCRラインは18桁です(いま ${n.length} 桁) / the OCR line has 18 digits (now ${n.length})`;
  },
  birth() {
    const n = digits($('birth-date').value);
    return n.length === 8 || n.length === 7 ? null
      : '生年月日は8桁(西暦)または7桁(元号)です / the date of birth is 8 digits, or 7 with the era number';
  },
  lot() { return state.lot ? null : 'ロットを選んでください / choose the lot'; },
};

for (const b of document.querySelectorAll('[data-next]')) {
  const from = b.closest('section').id;
  b.addEventListener('click', () => {
    const problem = checks[from]();
    fail(`${from}-error`, problem);
    if (!problem) show(b.dataset.next);
  });
}
for (const b of document.querySelectorAll('[data-go]')) b.addEventListener('click', () => show(b.dataset.go));
for (const [input, next] of [['ocr', 'birth'], ['birth-date', 'lot']]) {
  $(input).addEventListener('keydown', (e) => {
    if (e.key === 'Enter') $(input).closest('section').querySelector(`[data-next="${next}"]`).click();
  });
}

function renderLotChoices() {
  $('lot-choices').replaceChildren(...state.lots.map((l) => {
    const b = el('button', `${l.name}  ${l.lot}`, {
      type: 'button', role: 'radio', 'aria-checked': String(state.lot === l),
    });
    b.addEventListener('click', () => { state.lot = l; renderLotChoices(); });
    const li = el('li');
    li.append(b);
    return li;
  }));
  if (state.lots.length === 1) state.lot = state.lots[0];
}

function renderSummary() {
  const rows = [
    ['接種券 / Voucher', digits($('ocr').value)],
    ['生年月日 / Date of birth', digits($('birth-date').value)],
    ['ワクチン / Vaccine', state.lot.name],
    ['ロット / Lot', state.lot.lot],
  ];
  $('summary').replaceChildren(...rows.flatMap(([k, v]) => [el('dt', k), el('dd', v)]));
}

// ---- the QR code, where the browser can read one ----------------------------------------

if ('BarcodeDetector' in window && navigator.mediaDevices) {
  $('scan').hidden = false;
  $('scan').addEventListener('click', async () => {
    const video = $('camera');
    let stream;
    try {
      stream = await navigator.mediaDevices.getUserMedia({ video: { facingMode: 'environment' } });
    } catch {
      return fail('voucher-error', 'カメラを使えません / the camera is not available');
    }
    const detector = new BarcodeDetector({ formats: ['qr_code'] });
    video.srcObject = stream;
    video.hidden = false;
    await video.play();
    const stop = () => { stream.getTracks().forEach((t) => t.stop()); video.hidden = true; };
    const look = async () => {
      if (video.hidden) return;
      const found = (await detector.detect(video).catch(() => []))
        .map((c) => digits(c.rawValue)).find((d) => d.length === 18);
      if (found) { stop(); $('ocr').value = found; show('birth'); } else requestAnimationFrame(look);
    };
    look();
  });
}

// ---- the outbox ----------------------------------------------------------------------------

const db = new Promise((resolve, reject) => {
  const open = indexedDB.open('openvrs-venue', 1);
  open.onupgradeneeded = () => open.result.createObjectStore('outbox', { keyPath: 'key' });
  open.onsuccess = () => resolve(open.result);
  open.onerror = () => reject(open.error);
});

async function outbox(mode, f) {
  const tx = (await db).transaction('outbox', mode);
  const result = f(tx.objectStore('outbox'));
  await new Promise((resolve, reject) => { tx.oncomplete = resolve; tx.onerror = () => reject(tx.error); });
  return result.result;
}
const queued = () => outbox('readonly', (s) => s.getAll());
const enqueue = (item) => outbox('readwrite', (s) => s.put(item));
const dequeue = (key) => outbox('readwrite', (s) => s.delete(key));

function newKey() {
  if (crypto.randomUUID) return crypto.randomUUID();
  return Array.from(crypto.getRandomValues(new Uint8Array(16)), (b) => b.toString(16).padStart(2, '0')).join('');
}

function todayInJapan() {
  return new Intl.DateTimeFormat('sv-SE', { timeZone: 'Asia/Tokyo' }).format(new Date());
}

/** Sends one outbox item; returns the server's answer, or throws Offline (the item stays). */
async function send(item) {
  const answer = await api('POST', '/api/venue/doses', item.body);
  if (answer.status === 401) throw new Offline('unauthorised');
  if (answer.status < 300) {
    await dequeue(item.key);
  } else {
    // The server looked at it and said no (no such voucher, date of birth differs, ...): the
    // operator must see it; it is never sent again.
    await enqueue({ ...item, state: 'rejected', error: answer.data.message || `HTTP ${answer.status}` });
  }
  return answer;
}

let flushing = false;
async function flush() {
  if (flushing) return;
  flushing = true;
  try {
    for (const item of await queued()) {
      if (item.state !== 'pending') continue;
      await send(item);
    }
  } catch (e) {
    if (!(e instanceof Offline)) throw e;
  } finally {
    flushing = false;
    await renderPending();
  }
}

async function renderPending() {
  const items = await queued();
  const pending = items.filter((i) => i.state === 'pending').length;
  const rejected = items.length - pending;
  const b = $('pending');
  b.hidden = items.length === 0;
  b.textContent = `未送信 ${pending} 件` + (rejected ? ` ・ 要確認 ${rejected} 件` : '') +
    ` / ${pending} waiting` + (rejected ? `, ${rejected} to check` : '');
  b.dataset.pending = String(pending);
  if (!$('queue').hidden) renderQueue();
}

async function renderQueue() {
  const items = await queued();
  $('queue-rows').replaceChildren(...items.map((i) => {
    const tr = el('tr');
    // The voucher number identifies the paper; nothing else of the person is kept here.
    tr.append(el('td', i.body.ocr_line.slice(8)), el('td', new Date(i.queuedAt).toLocaleTimeString('ja-JP')));
    tr.append(el('td', i.state === 'pending' ? '送信待ち / waiting' : `要確認 / check: ${i.error}`));
    const td = el('td');
    if (i.state === 'rejected') {
      const b = el('button', '確認済み・削除 / checked, remove', { type: 'button' });
      b.addEventListener('click', async () => { await dequeue(i.key); renderPending(); });
      td.append(b);
    }
    tr.append(td);
    return tr;
  }));
}

$('pending').addEventListener('click', () => show('queue'));
$('send-now').addEventListener('click', flush);

$('record').addEventListener('click', async () => {
  const button = $('record');
  button.disabled = true;
  const item = {
    key: newKey(),
    state: 'pending',
    queuedAt: Date.now(),
    body: {
      ocr_line: digits($('ocr').value),
      birth_date: digits($('birth-date').value),
      product: state.lot.product,
      lot: state.lot.lot,
      date: todayInJapan(),
      idempotency_key: '',
    },
  };
  item.body.idempotency_key = item.key;
  try {
    await enqueue(item);
    let answer;
    try {
      answer = await send(item);
    } catch (e) {
      if (!(e instanceof Offline)) throw e;
    }
    if (answer && answer.status >= 300) {
      // Not recorded: say why on the confirm screen, and take it out of the outbox, since the
      // operator is looking at it now.
      await dequeue(item.key);
      fail('confirm-error', answer.data.message || `HTTP ${answer.status}`);
      return;
    }
    showResult(answer);
  } finally {
    button.disabled = false;
    renderPending();
  }
});

function showResult(answer) {
  const rows = [];
  const title = $('result-title');
  title.className = '';
  if (!answer) {
    title.textContent = '保存しました(未送信) / Saved, not sent yet';
    title.className = 'queued';
    rows.push(['状態 / State', '通信が戻ると送信します / it is sent when the connection is back']);
  } else {
    const d = answer.data;
    title.textContent = {
      recorded: '記録しました / Recorded',
      already_recorded: '記録済みです / Already recorded',
      conflict: '既存の記録と異なります: 自治体の確認待ち / Differs from the recorded dose: sent to the municipality',
    }[d.outcome] || d.outcome;
    title.className = d.outcome;
    rows.push(['接種回 / Dose', `${d.dose_number} 回目 / dose ${d.dose_number}`]);
    rows.push(['氏名 / Name', d.masked_name]);
  }
  $('result-details').replaceChildren(...rows.flatMap(([k, v]) => [el('dt', k), el('dd', v)]));
  const warnings = (answer && answer.data.warnings) || [];
  $('result-warnings').replaceChildren(...warnings.map((w) => el('li', w.message)));
  show('result');
}

$('next-person').addEventListener('click', () => {
  $('ocr').value = '';
  $('birth-date').value = '';
  fail('confirm-error');
  if (state.lots.length > 1) state.lot = null;
  show('voucher');
});

// ---- start ---------------------------------------------------------------------------------

function renderNetwork() {
  $('network').textContent = navigator.onLine ? '' : 'オフライン / offline';
}
window.addEventListener('online', () => { renderNetwork(); flush(); });
window.addEventListener('offline', renderNetwork);
setInterval(flush, RETRY_MS);

if ('serviceWorker' in navigator) navigator.serviceWorker.register('sw.js').catch(() => {});

(async () => {
  // A device can be set up from a link or QR code: /venue/#token=... (a fragment never reaches
  // a server or its logs); it is stored and taken out of the address bar at once.
  const fragment = new URLSearchParams(location.hash.slice(1));
  if (fragment.get('token')) {
    state.token = fragment.get('token');
    localStorage.setItem(TOKEN, state.token);
    history.replaceState(null, '', location.pathname);
  }
  renderNetwork();
  const ready = await identify();
  show(ready && state.lots.length ? 'voucher' : 'setup');
  flush();
})();
