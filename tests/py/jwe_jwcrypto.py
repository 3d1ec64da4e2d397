"""JWE interop helper for secure-model-core/tests/jwe_interop.rs, using jwcrypto (an
implementation we did not write).

encrypt: --alg ALG --key KEY --in PLAIN --out JWE [--flattened]
decrypt: --key KEY --in JWE --out PLAIN
KEY is a PKCS#8 PEM file (EC P-256 or RSA; for encrypt its public half is used) or, for
A256KW/dir, a file with the 32 raw key bytes (--oct).
"""
import argparse
import base64
import json
import sys

from jwcrypto import jwe, jwk


def load_key(path, oct_key):
    data = open(path, "rb").read()
    if oct_key:
        return jwk.JWK(kty="oct", k=base64.urlsafe_b64encode(data).rstrip(b"=").decode())
    return jwk.JWK.from_pem(data)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("op", choices=["encrypt", "decrypt"])
    p.add_argument("--alg")
    p.add_argument("--key", required=True)
    p.add_argument("--oct", action="store_true")
    p.add_argument("--flattened", action="store_true")
    p.add_argument("--in", dest="inp", required=True)
    p.add_argument("--out", required=True)
    a = p.parse_args()
    key = load_key(a.key, a.oct)
    data = open(a.inp, "rb").read()
    if a.op == "encrypt":
        if not a.oct:
            key = jwk.JWK.from_json(key.export_public())
        token = jwe.JWE(data, protected=json.dumps({"alg": a.alg, "enc": "A256GCM"}))
        token.add_recipient(key)
        out = token.serialize(compact=True)
        if a.flattened:
            # jwcrypto's own flattened form puts `epk` in the unprotected per-recipient
            # `header`, which our strict subset refuses; rewrap its compact output (all
            # parameters protected, as a Trustee KBS sends them) as flattened JSON.
            h, k, iv, ct, tag = out.split(".")
            out = json.dumps({"protected": h, "encrypted_key": k, "iv": iv,
                              "ciphertext": ct, "tag": tag})
        open(a.out, "w").write(out)
    else:
        token = jwe.JWE()
        # jwcrypto refuses some algorithms by default; allow exactly ours.
        token.allowed_algs = ["ECDH-ES+A256KW", "RSA-OAEP-256", "A256KW", "dir", "A256GCM"]
        token.deserialize(data.decode(), key=key)
        open(a.out, "wb").write(token.payload)
    return 0


if __name__ == "__main__":
    sys.exit(main())
