#!/usr/bin/env python3
"""Tink Streaming AEAD (AES-GCM-HKDF) reference CLI for secure-model interop tests.

Encrypts / decrypts a file with Python Tink's AesGcmHkdfStreaming primitive
(HKDF-SHA256, derived key size 32, RAW output prefix) built around a KNOWN raw
32-byte key value, so the Rust implementation can be checked against Tink in
both directions.

  tink_stream.py encrypt --key-hex HEX --segment-size N --ad-hex HEX \
      --in PLAINTEXT_FILE --out CIPHERTEXT_FILE
  tink_stream.py decrypt --key-hex HEX --segment-size N --ad-hex HEX \
      --in CIPHERTEXT_FILE --out PLAINTEXT_FILE

--ad-hex may be the empty string.  Data is streamed in chunks.  The output is
written to a temporary file next to --out and renamed into place only on
success; on failure (e.g. tampered ciphertext, wrong key/AD) nothing is left
at --out, a message goes to stderr and the exit status is 1 (2 for usage
errors).

Keyset construction mirrors /work/shared/vectors/tink/gen_tink_vectors.py.
Requires: pip install tink (tested with tink 1.16.1); see
scripts/setup-python.sh.
"""

import argparse
import os
import sys
import tempfile

import tink
from tink import streaming_aead
from tink.proto import aes_gcm_hkdf_streaming_pb2
from tink.proto import common_pb2
from tink.proto import tink_pb2

TYPE_URL = "type.googleapis.com/google.crypto.tink.AesGcmHkdfStreamingKey"
KEY_SIZE = 32
DERIVED_KEY_SIZE = 32
KEY_ID = 0x12345678  # arbitrary; RAW prefix => never appears in ciphertext
CHUNK = 1 << 20  # 1 MiB I/O chunks


class CliError(Exception):
  pass


def make_keyset(key: bytes, segment_size: int) -> tink_pb2.Keyset:
  key_proto = aes_gcm_hkdf_streaming_pb2.AesGcmHkdfStreamingKey(
      version=0,
      params=aes_gcm_hkdf_streaming_pb2.AesGcmHkdfStreamingParams(
          ciphertext_segment_size=segment_size,
          derived_key_size=DERIVED_KEY_SIZE,
          hkdf_hash_type=common_pb2.HashType.SHA256,
      ),
      key_value=key,
  )
  return tink_pb2.Keyset(
      primary_key_id=KEY_ID,
      key=[
          tink_pb2.Keyset.Key(
              key_data=tink_pb2.KeyData(
                  type_url=TYPE_URL,
                  value=key_proto.SerializeToString(),
                  key_material_type=tink_pb2.KeyData.SYMMETRIC,
              ),
              status=tink_pb2.ENABLED,
              key_id=KEY_ID,
              output_prefix_type=tink_pb2.RAW,
          )
      ],
  )


def handle_from_keyset(ks: tink_pb2.Keyset) -> "tink.KeysetHandle":
  """Loads a cleartext keyset with whichever API this tink version offers."""
  if hasattr(tink, "proto_keyset_format"):  # tink >= 1.9
    from tink import secret_key_access
    return tink.proto_keyset_format.parse(ks.SerializeToString(),
                                          secret_key_access.TOKEN)
  from tink import cleartext_keyset_handle  # older releases
  return cleartext_keyset_handle.from_keyset(ks)


def primitive(key: bytes, segment_size: int):
  streaming_aead.register()
  handle = handle_from_keyset(make_keyset(key, segment_size))
  return handle.primitive(streaming_aead.StreamingAead)


def parse_hex(name: str, value: str) -> bytes:
  try:
    return bytes.fromhex(value)
  except ValueError as e:
    raise CliError(f"{name}: invalid hex: {e}") from None


def _tmp_next_to(path: str):
  d = os.path.dirname(os.path.abspath(path))
  fd, tmp = tempfile.mkstemp(prefix=".tink_stream.", suffix=".tmp", dir=d)
  umask = os.umask(0)
  os.umask(umask)
  os.chmod(tmp, 0o666 & ~umask)  # mkstemp uses 0600; mimic open()
  return os.fdopen(fd, "wb"), tmp


def do_encrypt(saead, ad: bytes, src: str, dst: str) -> None:
  out, tmp = _tmp_next_to(dst)
  try:
    with open(src, "rb") as fin:
      # The encrypting stream closes `out` when it is closed.
      with saead.new_encrypting_stream(out, ad) as enc:
        while True:
          buf = fin.read(CHUNK)
          if not buf:
            break
          view = memoryview(buf)
          while view:
            n = enc.write(view)
            if n is None:
              n = 0
            view = view[n:]
    os.replace(tmp, dst)
  except BaseException:
    out.close()
    _unlink_quiet(tmp)
    raise


def do_decrypt(saead, ad: bytes, src: str, dst: str) -> None:
  out, tmp = _tmp_next_to(dst)
  try:
    with out:
      fin = open(src, "rb")  # closed by the decrypting stream
      with saead.new_decrypting_stream(fin, ad) as dec:
        while True:
          buf = dec.read(CHUNK)
          if not buf:
            break
          out.write(buf)
    os.replace(tmp, dst)
  except BaseException:
    _unlink_quiet(tmp)
    raise


def _unlink_quiet(path: str) -> None:
  try:
    os.unlink(path)
  except OSError:
    pass


def main(argv=None) -> int:
  p = argparse.ArgumentParser(
      description="Tink AesGcmHkdfStreaming (HKDF-SHA256, 32-byte derived "
      "key, RAW prefix) with a known raw key.")
  p.add_argument("op", choices=("encrypt", "decrypt"))
  p.add_argument("--key-hex", required=True,
                 help="raw key value, %d bytes in hex" % KEY_SIZE)
  p.add_argument("--segment-size", required=True, type=int,
                 help="ciphertext segment size in bytes")
  p.add_argument("--ad-hex", required=True,
                 help="associated data in hex (may be empty)")
  p.add_argument("--in", dest="src", required=True)
  p.add_argument("--out", dest="dst", required=True)
  args = p.parse_args(argv)

  prog = "tink_stream.py " + args.op
  try:
    key = parse_hex("--key-hex", args.key_hex)
    if len(key) != KEY_SIZE:
      raise CliError(f"--key-hex: expected {KEY_SIZE} bytes, got {len(key)}")
    ad = parse_hex("--ad-hex", args.ad_hex)
    if args.segment_size <= 0:
      raise CliError("--segment-size must be positive")
    try:
      saead = primitive(key, args.segment_size)
    except tink.TinkError as e:
      raise CliError(f"invalid key/parameters: {e}") from None
    if args.op == "encrypt":
      do_encrypt(saead, ad, args.src, args.dst)
    else:
      do_decrypt(saead, ad, args.src, args.dst)
  except CliError as e:
    print(f"{prog}: error: {e}", file=sys.stderr)
    return 2
  except tink.TinkError as e:
    print(f"{prog}: error: {args.op}ion failed: {e}", file=sys.stderr)
    return 1
  except OSError as e:
    print(f"{prog}: error: {e}", file=sys.stderr)
    return 1
  return 0


if __name__ == "__main__":
  sys.exit(main())
