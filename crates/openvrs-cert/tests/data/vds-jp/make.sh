#!/usr/bin/env bash
# Makes the certificates of tests/it/vds.rs that have what Japan's real VDS-NC chain has and
# our own rcgen-made ones do not: a CSCA whose P-256 key is written with explicit EC domain
# parameters (`-param_enc explicit`, not the named-curve OID), and a document signer whose
# signature algorithm (ecdsa-with-SHA256) carries explicit NULL parameters. OpenSSL makes both
# and OpenSSL checks the signer's signature. Run once; the outputs are committed:
#   csca.der       the CSCA (explicit parameters), self-signed, valid 20 years from when it was made
#   signer.der     the document signer, signed by the CSCA, NULL in both AlgorithmIdentifiers
#   signer.pk8     the signer's private key (PKCS#8 DER), test data only
# Needs openssl and python3 (standard library only).
set -euo pipefail
cd "$(dirname "$0")"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

openssl ecparam -name prime256v1 -param_enc explicit -genkey -noout -out "$work/csca.key"
openssl req -x509 -new -key "$work/csca.key" -sha256 -subj "/C=JP/O=openvrs test/CN=Explicit Parameters CSCA" \
  -days 7300 -set_serial 1 \
  -addext "basicConstraints=critical,CA:TRUE,pathlen:0" -addext "keyUsage=critical,keyCertSign,cRLSign" \
  -out "$work/csca.pem"
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$work/signer.key"
openssl pkcs8 -topk8 -nocrypt -in "$work/signer.key" -outform DER -out signer.pk8
openssl req -new -key "$work/signer.key" -subj "/C=JP/O=openvrs test/CN=NULL Parameters Signer" -out "$work/signer.csr"
cat > "$work/ext" <<'EXT'
keyUsage=critical,digitalSignature
extendedKeyUsage=2.23.136.1.1.14.2
EXT
openssl x509 -req -in "$work/signer.csr" -CA "$work/csca.pem" -CAkey "$work/csca.key" -sha256 \
  -days 3650 -set_serial 2 -extfile "$work/ext" \
  -outform DER -out "$work/signer-plain.der"
openssl x509 -in "$work/csca.pem" -outform DER -out csca.der

# The signer again, with NULL parameters in its signature AlgorithmIdentifiers, re-signed by the CSCA.
cat > "$work/der.py" <<'PY'
"""DER pieces for make.sh: a TLV, and the signer certificate taken apart and put together."""
import sys

PLAIN = bytes.fromhex('300a06082a8648ce3d040302')  # ecdsa-with-SHA256, no parameters
NULL = bytes.fromhex('300c06082a8648ce3d0403020500')  # the same with explicit NULL

def tlv(tag, body):
    n = len(body)
    if n < 0x80:
        size = bytes([n])
    else:
        b = n.to_bytes((n.bit_length() + 7) // 8, 'big')
        size = bytes([0x80 | len(b)]) + b
    return bytes([tag]) + size + body

def read(buf, at):
    tag, n = buf[at], buf[at + 1]
    at += 2
    if n & 0x80:
        k = n & 0x7f
        n = int.from_bytes(buf[at:at + k], 'big')
        at += k
    return tag, buf[at:at + n], at + n

if sys.argv[1] == 'tbs':  # CERT OUT: the TBS with NULL parameters
    _, body, _ = read(open(sys.argv[2], 'rb').read(), 0)
    _, tbs, _ = read(body, 0)
    assert tbs.count(PLAIN) == 1, 'the TBS names its signature algorithm once'
    open(sys.argv[3], 'wb').write(tlv(0x30, tbs.replace(PLAIN, NULL)))
else:  # TBS SIG OUT: the certificate
    tbs, sig = open(sys.argv[2], 'rb').read(), open(sys.argv[3], 'rb').read()
    open(sys.argv[4], 'wb').write(tlv(0x30, tbs + NULL + tlv(0x03, b'\0' + sig)))
PY
python3 "$work/der.py" tbs "$work/signer-plain.der" "$work/tbs.der"
openssl dgst -sha256 -sign "$work/csca.key" -out "$work/sig.der" "$work/tbs.der"
python3 "$work/der.py" cert "$work/tbs.der" "$work/sig.der" signer.der
# The CSCA's signature over the new TBS verifies (OpenSSL 3.0's `verify` refuses explicit
# parameters by its own policy, error 94, so the signature is checked directly).
openssl x509 -in "$work/csca.pem" -pubkey -noout > "$work/csca.pub"
openssl dgst -sha256 -verify "$work/csca.pub" -signature "$work/sig.der" "$work/tbs.der"
openssl x509 -inform DER -in signer.der -noout
openssl x509 -inform DER -in csca.der -noout -text | grep -q 'Field Type: prime-field'
openssl asn1parse -inform DER -in signer.der | grep -A1 'ecdsa-with-SHA256' | grep -q NULL
echo "made csca.der (explicit parameters) and signer.der (NULL parameters)"
