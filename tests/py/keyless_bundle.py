"""A test-made Sigstore instance and a keyless bundle signed on it, offline (TEST-ONLY keys).

Usage: keyless_bundle.py OUTDIR PAYLOAD IDENTITY ISSUER

Makes a Fulcio-like CA, a CT log key, a Rekor key; issues a 10-minute leaf for IDENTITY (email
SAN, Fulcio issuer extensions .1.1 and .1.8, codeSigning) with an embedded precertificate SCT;
signs PAYLOAD (an in-toto statement) as a DSSE envelope; logs it as a Rekor v1 `dsse` 0.0.1
entry in a one-leaf tree (inclusion proof, signed checkpoint, signed entry timestamp). Writes:

  trusted_root.json      the instance's trusted root (CA, Rekor log, CT log)
  trust_config.json      the same as a ClientTrustConfig (for model_signing --trust_config)
  bundle.sigstore.json   the v0.3 bundle
"""
import base64
import datetime as dt
import hashlib
import json
import struct
import sys
import time
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID, ObjectIdentifier

OUT, PAYLOAD, IDENTITY, ISSUER = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3], sys.argv[4]
OUT.mkdir(parents=True, exist_ok=True)
b64 = lambda b: base64.b64encode(b).decode()
sha256 = lambda b: hashlib.sha256(b).digest()
NOW = int(time.time())
UTC = dt.timezone.utc
START = "2019-01-01T00:00:00Z"


def spki(key):
    return key.public_key().public_bytes(serialization.Encoding.DER,
                                         serialization.PublicFormat.SubjectPublicKeyInfo)


def der_len(n):
    if n < 0x80:
        return bytes([n])
    b = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(b)]) + b


def der(tag, body):
    return bytes([tag]) + der_len(len(body)) + body


def canonical(obj):
    return json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()


# --- the instance: CA, CT log, Rekor ---
ca_key = ec.generate_private_key(ec.SECP384R1())
ca_name = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "secure-model test"),
                     x509.NameAttribute(NameOID.COMMON_NAME, "Test Fulcio CA")])
ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
      .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
      .not_valid_before(dt.datetime(2019, 1, 1, tzinfo=UTC))
      .not_valid_after(dt.datetime(2039, 1, 1, tzinfo=UTC))
      .add_extension(x509.BasicConstraints(ca=True, path_length=1), critical=True)
      .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False),
                     critical=True)
      .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
      .sign(ca_key, hashes.SHA384()))
ct_key = ec.generate_private_key(ec.SECP256R1())
rekor_key = ec.generate_private_key(ec.SECP256R1())
ct_id, rekor_id = sha256(spki(ct_key)), sha256(spki(rekor_key))

# --- the leaf, with an embedded precertificate SCT ---
leaf_key = ec.generate_private_key(ec.SECP256R1())
nb = dt.datetime.fromtimestamp(NOW - 60, UTC)
na = dt.datetime.fromtimestamp(NOW + 600, UTC)
builder = (x509.CertificateBuilder().subject_name(x509.Name([])).issuer_name(ca_name)
           .public_key(leaf_key.public_key()).serial_number(x509.random_serial_number())
           .not_valid_before(nb).not_valid_after(na)
           .add_extension(x509.KeyUsage(True, False, False, False, False, False, False, False, False),
                          critical=True)
           .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CODE_SIGNING]), critical=False)
           .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                          critical=False)
           .add_extension(x509.SubjectAlternativeName([x509.RFC822Name(IDENTITY)]), critical=True)
           .add_extension(x509.UnrecognizedExtension(ObjectIdentifier("1.3.6.1.4.1.57264.1.1"),
                                                     ISSUER.encode()), critical=False)
           .add_extension(x509.UnrecognizedExtension(ObjectIdentifier("1.3.6.1.4.1.57264.1.8"),
                                                     der(0x0C, ISSUER.encode())), critical=False))
tbs_precert = builder.sign(ca_key, hashes.SHA384()).tbs_certificate_bytes
sct_time = (NOW - 50) * 1000
signed = (struct.pack(">BBQH", 0, 0, sct_time, 1) + sha256(spki(ca_key))
          + len(tbs_precert).to_bytes(3, "big") + tbs_precert + struct.pack(">H", 0))
sct_sig = ct_key.sign(signed, ec.ECDSA(hashes.SHA256()))
sct = (struct.pack(">B", 0) + ct_id + struct.pack(">QH", sct_time, 0) + struct.pack(">BB", 4, 3)
       + struct.pack(">H", len(sct_sig)) + sct_sig)
sct_list = struct.pack(">H", len(sct) + 2) + struct.pack(">H", len(sct)) + sct
leaf = builder.add_extension(
    x509.UnrecognizedExtension(ObjectIdentifier("1.3.6.1.4.1.11129.2.4.2"), der(0x04, sct_list)),
    critical=False).sign(ca_key, hashes.SHA384())
leaf_pem = leaf.public_bytes(serialization.Encoding.PEM)

# --- the DSSE envelope ---
payload = PAYLOAD.read_bytes()
ptype = b"application/vnd.in-toto+json"
pae = b"DSSEv1 %d %s %d %s" % (len(ptype), ptype, len(payload), payload)
sig = leaf_key.sign(pae, ec.ECDSA(hashes.SHA256()))
envelope = {"payload": b64(payload), "payloadType": ptype.decode(), "signatures": [{"sig": b64(sig)}]}

# --- the Rekor v1 entry: dsse 0.0.1 in a one-leaf tree ---
body = canonical({"apiVersion": "0.0.1", "kind": "dsse", "spec": {
    "envelopeHash": {"algorithm": "sha256", "value": hashlib.sha256(canonical(envelope)).hexdigest()},
    "payloadHash": {"algorithm": "sha256", "value": hashlib.sha256(payload).hexdigest()},
    "signatures": [{"signature": b64(sig), "verifier": b64(leaf_pem)}]}})
root_hash = sha256(b"\x00" + body)
note = f"rekor.test - 1\n1\n{b64(root_hash)}\n".encode()
note_sig = rekor_key.sign(note, ec.ECDSA(hashes.SHA256()))
checkpoint = note.decode() + f"\n\u2014 rekor.test {b64(rekor_id[:4] + note_sig)}\n"
integrated = NOW - 30
set_sig = rekor_key.sign(canonical({"body": b64(body), "integratedTime": integrated,
                                    "logID": rekor_id.hex(), "logIndex": 0}),
                         ec.ECDSA(hashes.SHA256()))
entry = {
    "logIndex": "0", "logId": {"keyId": b64(rekor_id)},
    "kindVersion": {"kind": "dsse", "version": "0.0.1"},
    "integratedTime": str(integrated),
    "inclusionPromise": {"signedEntryTimestamp": b64(set_sig)},
    "inclusionProof": {"logIndex": "0", "rootHash": b64(root_hash), "treeSize": "1", "hashes": [],
                       "checkpoint": {"envelope": checkpoint}},
    "canonicalizedBody": b64(body),
}
bundle = {"mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json",
          "verificationMaterial": {"certificate": {"rawBytes": b64(leaf.public_bytes(serialization.Encoding.DER))},
                                   "tlogEntries": [entry]},
          "dsseEnvelope": envelope}


def log(key, log_id, url):
    return {"baseUrl": url, "hashAlgorithm": "SHA2_256",
            "publicKey": {"rawBytes": b64(spki(key)), "keyDetails": "PKIX_ECDSA_P256_SHA_256",
                          "validFor": {"start": START}},
            "logId": {"keyId": b64(log_id)}}


root = {"mediaType": "application/vnd.dev.sigstore.trustedroot+json;version=0.1",
        "tlogs": [log(rekor_key, rekor_id, "https://rekor.test")],
        "certificateAuthorities": [{
            "subject": {"organization": "secure-model test", "commonName": "Test Fulcio CA"},
            "uri": "https://fulcio.test",
            "certChain": {"certificates": [{"rawBytes": b64(ca.public_bytes(serialization.Encoding.DER))}]},
            "validFor": {"start": START}}],
        "ctlogs": [log(ct_key, ct_id, "https://ct.test")],
        "timestampAuthorities": []}
signing_config = {"mediaType": "application/vnd.dev.sigstore.signingconfig.v0.2+json",
                  "caUrls": [{"url": "https://fulcio.test", "majorApiVersion": 1,
                              "validFor": {"start": START}, "operator": "test"}],
                  "oidcUrls": [], "rekorTlogUrls": [{"url": "https://rekor.test", "majorApiVersion": 1,
                                                      "validFor": {"start": START}, "operator": "test"}],
                  "rekorTlogConfig": {"selector": "ANY"}, "tsaUrls": [], "tsaConfig": {"selector": "ANY"}}
(OUT / "trusted_root.json").write_text(json.dumps(root, indent=2))
(OUT / "trust_config.json").write_text(json.dumps({
    "mediaType": "application/vnd.dev.sigstore.clienttrustconfig.v0.1+json",
    "trustedRoot": root, "signingConfig": signing_config}, indent=2))
(OUT / "bundle.sigstore.json").write_text(json.dumps(bundle))
