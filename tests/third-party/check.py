"""Checks certificates issued by openvrs with third-party tools only (none of openvrs' code):

- SMART Health Card: PyPI `healthcards` decodes the QR text and verifies the JWS against the
  JWKS it fetches from the running issuer (`<iss>/.well-known/jwks.json`, TLS with the
  deployment's development CA); `jwcrypto` verifies it again, ES256 only; the payload is checked
  against the data-minimisation rules of the spec.
- EU DCC: `base45`, `zlib`, `cbor2` and `pycose` decode and verify the COSE_Sign1 with the
  signer certificate's key (kid = first 8 bytes of its SHA-256); `jsonschema` validates the DCC
  against ../shared/vectors/dcc/schema/DCC.combined-schema.json.
- ICAO VDS-NC: `cryptography` checks the signer certificate against our CSCA and the signature
  over the RFC 8785 canonical JSON (`rfc8785`) of `data`.
- QR images: `zxing-cpp` decodes each PNG back to the exact payload.
- Paper certificate: Poppler's `pdftoppm` renders the PDF (page.png, made by the calling script)
  and `zxing-cpp` reads both of its QR codes, which verify as above; `pdftotext` finds its
  Japanese and English headings.

Usage: check.py DIR SCHEMA, where DIR holds card.smart-health-card, card.png, seal.json,
seal.png, dcc.txt, dcc.png, page-1.png and page.txt (the PDF rendered and its text), jwks.json,
csca.pem and dcc-signer.pem. Exits non-zero on the first failure.
"""

import base64
import hashlib
import json
import sys
import zlib
from pathlib import Path

import base45
import cbor2
from healthcards import parser
import jsonschema
import rfc8785
import zxingcpp
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, utils
from jwcrypto import jwk, jws
from PIL import Image
from pycose.headers import KID
from pycose.keys import EC2Key
from pycose.messages import CoseMessage

d = Path(sys.argv[1])
schema = json.loads(Path(sys.argv[2]).read_text())
checked = []


def ok(what):
    checked.append(what)
    print(f"  ok  {what}")


def b64url(text):
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def qr(png):
    results = zxingcpp.read_barcodes(Image.open(png))
    assert len(results) == 1, f"{png}: {len(results)} codes"
    return results[0].text


# SMART Health Card
jws_text = json.loads((d / "card.smart-health-card").read_text())["verifiableCredential"][0]
qr_text = qr(d / "card.png")
assert parser.decode_qr_to_jws(qr_text) == jws_text, "QR text does not give the file's JWS"
ok("zxing-cpp reads the SHC QR; healthcards turns it into the file's JWS")
card = parser.JWS(jws_text)
assert card.verified, "healthcards: signature"
ok(f"healthcards verifies the SHC with the JWKS fetched from {card.issuer}")
header = json.loads(b64url(jws_text.split(".")[0]))
assert header == {"zip": "DEF", "alg": "ES256", "kid": header["kid"]}, header
keys = jwk.JWKSet.from_json((d / "jwks.json").read_text())
token = jws.JWS()
token.deserialize(jws_text)
token.verify(keys.get_key(header["kid"]), alg="ES256")
ok("jwcrypto verifies it ES256 with the JWK named by its thumbprint kid")
thumb = keys.get_key(header["kid"]).thumbprint()
assert thumb == header["kid"], "kid is the RFC 7638 thumbprint"
payload = card.payload
assert payload["iss"].startswith("https://") and not payload["iss"].endswith("/")
bundle = payload["vc"]["credentialSubject"]["fhirBundle"]
forbidden = {"id", "meta", "text", "identifier", "manufacturer", "site", "route",
             "doseQuantity", "protocolApplied"}


def walk(v, path="bundle"):
    if isinstance(v, dict):
        for k, x in v.items():
            assert k not in forbidden or (k == "meta" and set(x) == {"security"}), f"{path}.{k} is not minimised"
            assert not (k == "display" and "coding" in path), f"{path}.{k}: no Coding.display"
            walk(x, f"{path}.{k}")
    elif isinstance(v, list):
        for i, x in enumerate(v):
            walk(x, f"{path}[{i}]")


walk(bundle)
assert [e["fullUrl"] for e in bundle["entry"]] == [f"resource:{i}" for i in range(len(bundle["entry"]))]
assert len(jws_text) <= 1195, "fits one version-22 QR"
ok("the payload is data-minimised (no id, meta, text, Coding.display, identifier, protocolApplied)")

# EU DCC
text = (d / "dcc.txt").read_text().strip()
assert qr(d / "dcc.png") == text
ok("zxing-cpp reads the DCC QR back to the exact HC1: text")
assert text.startswith("HC1:")
cose = zlib.decompress(base45.b45decode(text[4:]))
signer = x509.load_pem_x509_certificate((d / "dcc-signer.pem").read_bytes())
der = signer.public_bytes(serialization.Encoding.DER)
kid = hashlib.sha256(der).digest()[:8]
msg = CoseMessage.decode(cose)
assert msg.phdr.get(KID) == kid, "kid in the protected header"
numbers = signer.public_key().public_numbers()
msg.key = EC2Key(crv="P_256", x=numbers.x.to_bytes(32, "big"), y=numbers.y.to_bytes(32, "big"))
assert msg.verify_signature(), "pycose: signature"
ok("pycose verifies the COSE_Sign1 with the signer certificate's key, kid in the protected header")
claims = cbor2.loads(msg.payload)
assert set(claims) >= {1, 4, 6, -260} and claims[4] > claims[6]
dcc = claims[-260][1]
jsonschema.validate(dcc, schema, cls=jsonschema.Draft202012Validator)
ok("jsonschema: the DCC conforms to the EU DCC schema 1.3.3")
uvci = dcc["v"][0]["ci"]
alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789/:"
base, check = uvci.split("#")
factor, total = 2, 0
for c in reversed(base):
    addend = factor * alphabet.index(c)
    factor = 1 if factor == 2 else 2
    total += addend // len(alphabet) + addend % len(alphabet)
assert alphabet[(len(alphabet) - total % len(alphabet)) % len(alphabet)] == check
ok("the UVCI's Luhn mod N check character is right")

# ICAO VDS-NC
seal_text = (d / "seal.json").read_text()
assert qr(d / "seal.png") == seal_text
ok("zxing-cpp reads the VDS-NC QR back to the exact JSON")
csca = x509.load_pem_x509_certificate((d / "csca.pem").read_bytes())


def check_vds(text):
    seal = json.loads(text)
    assert seal["data"]["hdr"] == {"t": "icao.vacc", "v": 1, "is": "JPN"}
    bsc = x509.load_der_x509_certificate(b64url(seal["sig"]["cer"]))
    csca.public_key().verify(bsc.signature, bsc.tbs_certificate_bytes, ec.ECDSA(bsc.signature_hash_algorithm))
    assert bsc.issuer == csca.subject
    raw = b64url(seal["sig"]["sigvl"])
    signature = utils.encode_dss_signature(int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big"))
    bsc.public_key().verify(signature, rfc8785.dumps(seal["data"]), ec.ECDSA(hashes.SHA256()))


check_vds(seal_text)
ok("cryptography: the embedded signer certificate was issued by our CSCA")
ok("cryptography + rfc8785: ES256 over the canonical JSON of data verifies")

# The paper certificate
# QR codes only: in the rendered text, a run of glyphs can pass for a 1D barcode now and then.
found = zxingcpp.read_barcodes(Image.open(d / "page-1.png"), formats=zxingcpp.BarcodeFormat.QRCode)
codes = sorted({r.text for r in found})
assert len(codes) == 2, f"the PDF shows {len(codes)} readable QR codes: {[(r.format, r.text[:20]) for r in found]}"
shc_code = next(c for c in codes if c.startswith("shc:/"))
printed_jws = parser.decode_qr_to_jws(shc_code)
printed = jws.JWS()
printed.deserialize(printed_jws)
printed.verify(keys.get_key(json.loads(b64url(printed_jws.split(".")[0]))["kid"]), alg="ES256")
check_vds(next(c for c in codes if c.startswith("{")))
ok("pdftoppm renders the PDF; zxing-cpp reads its SHC and VDS-NC codes, which verify")
page_text = (d / "page.txt").read_text()
for heading in ["新型コロナウイルス感染症予防接種証明書", "Vaccination Certificate for COVID-19", "TR1234567"]:
    assert heading in page_text, heading
ok("pdftotext finds the Japanese and English headings (the embedded font maps back to Unicode)")

print(f"third-party checks: {len(checked)} passed")
