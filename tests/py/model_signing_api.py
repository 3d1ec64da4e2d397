"""Signs or verifies a model with the upstream OpenSSF `model_signing` Python API (1.1.x).

  model_signing_api.py sign MODEL SIG PRIVATE_PEM HASH METHOD [SHARD_SIZE]
  model_signing_api.py verify MODEL SIG PUBLIC_PEM [HASH METHOD [SHARD_SIZE]]

HASH is sha256, blake2 or blake3 (upstream's names); METHOD is files or shards. `verify` reads
the hashing configuration from the signature unless one is given (the upstream CLI's `verify
key` always re-hashes with sha256 files, so non-default hashings are verified through the
API). Upstream 1.1.1 cannot read back two things it writes itself: `hash_type` `blake2b` (its
configuration only knows the name `blake2`) and a float `shard_size` (`1048576.0`); for those
its own signatures verify only with the configuration given explicitly. Exits 1 with the
reason on stderr when verification fails.
"""

import sys

from model_signing import hashing, signing, verifying


def hashing_config(hash_name, method, shard_size=None):
    cfg = hashing.Config()
    if method == "files":
        return cfg.use_file_serialization(hashing_algorithm=hash_name)
    return cfg.use_shard_serialization(hashing_algorithm=hash_name, shard_size=int(shard_size))


def sign(model, sig, key, hash_name, method, shard_size=None):
    cfg = hashing_config(hash_name, method, shard_size)
    signing.Config().use_elliptic_key_signer(private_key=key).set_hashing_config(cfg).sign(
        model, sig
    )


def verify(model, sig, key, *config):
    try:
        v = verifying.Config().use_elliptic_key_verifier(public_key=key)
        if config:
            v.set_hashing_config(hashing_config(*config))
        v.verify(model, sig)
    except Exception as e:  # upstream raises ValueError and others; any is a refusal
        print(f"verification failed: {e}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    op, args = sys.argv[1], sys.argv[2:]
    if op == "sign":
        sign(*args)
    elif op == "verify":
        verify(*args)
    else:
        sys.exit(f"unknown operation {op}")
