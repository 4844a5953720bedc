// The reference resident app: reads the simulated My Number card with its PIN (Argon2id and
// AES-GCM, as the card file was sealed), has the card's key sign the application, seals it to
// the system's intake key (HPKE, RFC 9180) with a fresh key for the answer, and shows the
// certificates that come back. Nothing is stored; the only thing offered to save is the card's
// own state after a wrong PIN, as the chip would keep it.
import { Aes256Gcm, CipherSuite, DhkemP256HkdfSha256, HkdfSha256 } from '/app/hpke.js';

const $ = (id) => document.getElementById(id);
const TRIES = 3;
const TO_SYSTEM = new TextEncoder().encode('openvrs resident app: application v1');
const TO_APP = new TextEncoder().encode('openvrs resident app: answer v1');
const suite = new CipherSuite({
  kem: new DhkemP256HkdfSha256(), kdf: new HkdfSha256(), aead: new Aes256Gcm(),
});

class Refusal extends Error {}

const b64 = {
  decode: (s) => Uint8Array.from(atob(s), (c) => c.charCodeAt(0)),
  encode: (bytes) => btoa(String.fromCharCode(...new Uint8Array(bytes))),
};
const b64url = {
  decode: (s) => b64.decode(s.replace(/-/g, '+').replace(/_/g, '/').padEnd(Math.ceil(s.length / 4) * 4, '=')),
  encode: (bytes) => b64.encode(bytes).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, ''),
};

// RFC 8785: keys sorted by UTF-16 code units, values as JSON.stringify writes them.
function canonical(v) {
  if (v === null || typeof v !== 'object') return JSON.stringify(v);
  if (Array.isArray(v)) return `[${v.map(canonical).join(',')}]`;
  return `{${Object.keys(v).sort().map((k) => `${JSON.stringify(k)}:${canonical(v[k])}`).join(',')}}`;
}

// Opens the card with the PIN; a wrong PIN counts on the card, three lock it.
async function openCard(card, pin) {
  if (card.kind !== 'openvrs-simulated-my-number-card') throw new Refusal('カードのファイルではありません / not a card file');
  if (card.failures >= TRIES) throw new Refusal('暗証番号の誤りが続いたためロックされています / locked after too many wrong PINs');
  if (!/^[0-9]{4}$/.test(pin)) throw new Refusal('暗証番号は数字4桁です / the PIN is 4 digits');
  const raw = await window.hashwasm.argon2id({
    password: pin, salt: b64.decode(card.salt), parallelism: 1, iterations: 2,
    memorySize: 19456, hashLength: 32, outputType: 'binary',
  });
  const key = await crypto.subtle.importKey('raw', raw, 'AES-GCM', false, ['decrypt']);
  try {
    const chip = await crypto.subtle.decrypt({ name: 'AES-GCM', iv: b64.decode(card.nonce) }, key, b64.decode(card.sealed));
    card.failures = 0;
    return JSON.parse(new TextDecoder().decode(chip));
  } catch {
    card.failures += 1;
    const left = TRIES - card.failures;
    throw new Refusal(left > 0
      ? `暗証番号が違います(あと ${left} 回でロック) / wrong PIN (${left} tries left before the card locks)`
      : '暗証番号の誤りが続いたためロックされています / locked after too many wrong PINs');
  }
}

function offerCard(card, name) {
  const blob = new Blob([JSON.stringify(card, null, 2)], { type: 'application/json' });
  $('card-link').href = URL.createObjectURL(blob);
  $('card-link').download = name;
  $('card-save').hidden = false;
}

function request() {
  const overseas = document.querySelector('input[name=kind]:checked').value === 'overseas';
  const nonce = crypto.getRandomValues(new Uint8Array(16));
  return {
    municipality: $('municipality').value.trim(),
    kind: overseas ? 'overseas' : 'domestic',
    passport: overseas ? {
      name: $('passport-name').value.trim().toUpperCase(),
      nationality: $('nationality').value.trim().toUpperCase(),
      number: $('passport-number').value.trim().toUpperCase(),
    } : null,
    nonce: b64url.encode(nonce),
    time: Math.floor(Date.now() / 1000),
  };
}

async function sign(chip, req) {
  const key = await crypto.subtle.importKey('pkcs8', b64.decode(chip.key), { name: 'ECDSA', namedCurve: 'P-256' }, false, ['sign']);
  const message = new TextEncoder().encode(canonical({ card: chip.card, request: req }));
  const sig = await crypto.subtle.sign({ name: 'ECDSA', hash: 'SHA-256' }, key, message);
  return JSON.stringify({ card: chip.card, request: req, sig: b64url.encode(sig) });
}

async function call(url, init) {
  const res = await fetch(url, init);
  const body = await res.json().catch(() => ({}));
  if (!res.ok) throw new Refusal(body.message || `HTTP ${res.status}`);
  return body;
}

async function apply(application) {
  const intake = await call('/.well-known/openvrs-app-key.json');
  const recipient = await suite.kem.deserializePublicKey(b64url.decode(intake.key).buffer);
  const reply = await suite.kem.generateKeyPair();
  const inner = JSON.stringify({
    application, reply_key: b64url.encode(await suite.kem.serializePublicKey(reply.publicKey)),
  });
  const sealed = await suite.seal({ recipientPublicKey: recipient, info: TO_SYSTEM }, new TextEncoder().encode(inner));
  const answer = await call('/api/app/certificates', {
    method: 'POST', headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      kid: intake.kid,
      sealed: b64url.encode(new Uint8Array([...new Uint8Array(sealed.enc), ...new Uint8Array(sealed.ct)])),
    }),
  });
  const box = b64url.decode(answer.sealed);
  const plain = await suite.open({ recipientKey: reply, enc: box.slice(0, 65).buffer, info: TO_APP }, box.slice(65).buffer);
  return JSON.parse(new TextDecoder().decode(plain));
}

function show(answer) {
  const list = $('certificates');
  list.replaceChildren();
  for (const c of answer.certificates) {
    const div = document.createElement('div');
    div.className = 'certificate';
    const title = document.createElement('h3');
    title.textContent = c.format === 'shc' ? 'SMART Health Card' : 'ICAO VDS-NC';
    const img = document.createElement('img');
    img.src = `data:image/png;base64,${c.qr_png}`;
    img.alt = `${title.textContent} QR`;
    const link = document.createElement('a');
    const file = c.format === 'shc' ? `${c.id}.smart-health-card` : `${c.id}.vds.json`;
    link.href = URL.createObjectURL(new Blob([c.payload], { type: 'application/json' }));
    link.download = file;
    link.className = 'download';
    link.textContent = `保存 / save ${file}`;
    const id = document.createElement('p');
    id.textContent = `証明書ID / certificate id: ${c.id}`;
    div.append(title, img, id, link);
    list.append(div);
  }
  $('result').hidden = false;
}

document.querySelectorAll('input[name=kind]').forEach((r) => r.addEventListener('change', () => {
  $('passport').hidden = document.querySelector('input[name=kind]:checked').value !== 'overseas';
}));

$('form').addEventListener('submit', async (event) => {
  event.preventDefault();
  $('error').hidden = true;
  $('result').hidden = true;
  $('card-save').hidden = true;
  $('apply').disabled = true;
  $('status').textContent = '処理中… / working…';
  const file = $('card').files[0];
  let card;
  try {
    card = JSON.parse(await file.text());
    const before = card.failures;
    let chip;
    try {
      chip = await openCard(card, $('pin').value);
    } finally {
      if (card.failures !== before) offerCard(card, file.name);
    }
    show(await apply(await sign(chip, request())));
    $('status').textContent = '証明書を受け取りました / certificates received';
  } catch (e) {
    $('status').textContent = '';
    $('error').textContent = e instanceof Refusal ? e.message : `エラー / error: ${e.message}`;
    $('error').hidden = false;
  } finally {
    $('pin').value = '';
    $('apply').disabled = false;
  }
});
