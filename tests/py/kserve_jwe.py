#!/usr/bin/env python3
"""Live interop with KServe's confidential mode for secure-model's tests.

  make --key-hex HEX --out DIR
      Writes fresh JWE files made by jwcrypto (the library KServe uses) with the 32-byte key:
      good-a256kw.jwe, good-dir.jwe (plaintext in *.pt), and files our reader must refuse:
      rsa-oaep.jwe, a128kw.jwe (other alg), a128gcm.jwe (other enc), zip.jwe (zip DEF),
      crit.jwe (crit header), json.jwe (JSON serialization).
  kserve-decrypt --key-file FILE --dir DIR
      Runs KServe's own kserve_storage.confidential.JWEDecryptor.decrypt_directory on DIR with a
      resolver returning FILE's bytes (as the CDH would), printing the decrypted paths as JSON.
"""
import argparse, json, os, sys

from jwcrypto import jwe, jwk
from jwcrypto.common import base64url_encode, json_encode


def make(key_hex, out):
    key_bytes = bytes.fromhex(key_hex)
    key = jwk.JWK(kty="oct", k=base64url_encode(key_bytes))
    os.makedirs(out, exist_ok=True)
    pt = os.urandom(3000) + b"secure-model interop"

    def write(name, header, k, compact=True, payload=pt):
        tok = jwe.JWE(payload, json_encode(header))
        tok.add_recipient(k)
        with open(os.path.join(out, name), "w") as f:
            f.write(tok.serialize(compact=compact))

    write("good-a256kw.jwe", {"alg": "A256KW", "enc": "A256GCM"}, key)
    write("good-dir.jwe", {"alg": "dir", "enc": "A256GCM"}, key)
    with open(os.path.join(out, "good.pt"), "wb") as f:
        f.write(pt)
    rsa = jwk.JWK.generate(kty="RSA", size=2048)
    write("rsa-oaep.jwe", {"alg": "RSA-OAEP", "enc": "A256GCM"}, rsa)
    write("a128kw.jwe", {"alg": "A128KW", "enc": "A256GCM"},
          jwk.JWK(kty="oct", k=base64url_encode(key_bytes[:16])))
    write("a128gcm.jwe", {"alg": "A256KW", "enc": "A128GCM"}, key)
    write("zip.jwe", {"alg": "A256KW", "enc": "A256GCM", "zip": "DEF"}, key)
    write("crit.jwe", {"alg": "A256KW", "enc": "A256GCM", "crit": ["exp"], "exp": 1}, key)
    write("json.jwe", {"alg": "A256KW", "enc": "A256GCM"}, key, compact=False)


def kserve_decrypt(key_file, directory):
    from kserve_storage.confidential.jwe_decryptor import JWEDecryptor
    from kserve_storage.confidential.secret_resolver import SecretResolver

    class FileResolver(SecretResolver):
        def resolve_key(self, resource_id):
            with open(key_file, "rb") as f:
                return f.read()

    out = JWEDecryptor(FileResolver(), resource_id="kbs:///default/key/test").decrypt_directory(directory)
    print(json.dumps(sorted(str(p) for p in out)))


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    m = sub.add_parser("make")
    m.add_argument("--key-hex", required=True)
    m.add_argument("--out", required=True)
    d = sub.add_parser("kserve-decrypt")
    d.add_argument("--key-file", required=True)
    d.add_argument("--dir", required=True)
    a = ap.parse_args()
    if a.cmd == "make":
        make(a.key_hex, a.out)
    else:
        kserve_decrypt(a.key_file, a.dir)


if __name__ == "__main__":
    sys.exit(main())
