// The verifier page: sends the pasted text or the chosen PNG to POST /api/verify and shows
// one line per check. No inline script (CSP); nothing is kept in the browser.
"use strict";

const $ = (id) => document.getElementById(id);

function cell(row, text, cls) {
  const td = document.createElement("td");
  td.textContent = text;
  if (cls) td.className = cls;
  row.appendChild(td);
}

// What each check is called, for the person reading the page.
const CHECKS = {
  decode: "読み取り / Decoded",
  signature: "署名 / Signature",
  trust: "発行者(CSCA) / Issuer (CSCA)",
  schema: "形式 / Schema",
  key_usage: "鍵の用途 / Key usage",
  expiry: "有効期間 / Validity",
  revocation: "失効 / Revocation",
  input: "入力 / Input",
  request: "送信 / Request",
};

function show(report) {
  $("result").hidden = false;
  $("verdict").textContent = report.passed
    ? "有効です / Valid: every check passed"
    : "検証できませんでした / Not valid: see the checks below";
  $("verdict").className = report.passed ? "ok" : "ng";
  const body = $("checks").querySelector("tbody");
  body.replaceChildren();
  for (const c of report.checks || []) {
    const row = document.createElement("tr");
    cell(row, CHECKS[c.check] || c.check);
    cell(row, c.ok ? "OK" : "NG", c.ok ? "ok" : "ng");
    cell(row, c.detail);
    body.appendChild(row);
  }
  const list = $("certificates");
  list.replaceChildren();
  for (const cert of report.certificates || []) {
    if (!cert) continue;
    const h = document.createElement("h3");
    const holder = cert.holder || {};
    h.textContent = `${cert.kind.toUpperCase()} ・ ${cert.issuer || ""} ・ ${holder.name || ""} (${holder.birth_year || ""})`;
    list.appendChild(h);
    const ul = document.createElement("ul");
    for (const d of cert.doses || []) {
      const li = document.createElement("li");
      // A dose number only where the format has one (SMART Health Cards have none: null).
      // An EU DCC says "2/2": the second of two.
      let dose = "";
      if (d.dose !== undefined && d.dose !== null) {
        const [n, of] = String(d.dose).split("/");
        dose = of ? `${n}/${of}回目 / dose ${n} of ${of}` : `${n}回目 / dose ${n}`;
      }
      li.textContent = [d.date, d.product, dose, d.lot || "", d.by || ""]
        .filter(Boolean).join("  ");
      ul.appendChild(li);
    }
    list.appendChild(ul);
  }
}

async function submit(event) {
  event.preventDefault();
  const file = $("image").files[0];
  const body = file ? file : $("payload").value.trim();
  if (!body) {
    show({ passed: false, checks: [{ check: "input", ok: false, detail: "内容か画像を指定してください / give a content or an image" }] });
    return;
  }
  $("check").disabled = true;
  try {
    const res = await fetch("/api/verify", {
      method: "POST",
      headers: { "content-type": file ? (file.type || "application/octet-stream") : "text/plain; charset=utf-8" },
      body,
    });
    const json = await res.json();
    show(res.ok ? json : { passed: false, checks: [{ check: "request", ok: false, detail: json.message || res.statusText }] });
  } catch (e) {
    show({ passed: false, checks: [{ check: "request", ok: false, detail: "送信できません / cannot send: " + e }] });
  } finally {
    $("check").disabled = false;
  }
}

document.addEventListener("DOMContentLoaded", () => $("form").addEventListener("submit", submit));
