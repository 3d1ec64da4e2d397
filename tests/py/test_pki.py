"""Test-only X.509 PKI for the certificate-chain trust tests (secure-model-core/tests/trust_chain.rs).

Usage: test_pki.py OUTDIR. Writes PEM certificates and PKCS#8 keys, freshly generated each run:

  root          P-384 self-signed CA (2019..2039), "Test Root CA"
  inter         P-384 CA under root, pathlen 0, no EKU
  leaf-p256 / leaf-p384 / leaf-p521   KU digitalSignature, EKU codeSigning, SAN email
  leaf-noeku    KU digitalSignature only
  leaf-nosign   KU keyAgreement, EKU serverAuth (upstream refuses it)
  leaf-serverauth  KU digitalSignature, EKU serverAuth (upstream accepts it; we refuse it)
  leaf-keyenc   KU keyEncipherment (no digitalSignature), EKU codeSigning (we refuse it)
  leaf-ca       KU digitalSignature, EKU codeSigning, but basic constraints CA:TRUE (we refuse it)
  leaf-expired  valid 2020-01-01..02 under inter
  other-root    an unrelated CA ("Other Root CA")
  fake-root     a CA with root's name and another key
  inter2        a CA under inter (violates inter's pathlen 0); leaf-deep under it
  inter-sha1    a CA under root signed with SHA-1; leaf-sha1 under it
"""
import datetime as dt
import sys
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

OUT = Path(sys.argv[1])
OUT.mkdir(parents=True, exist_ok=True)
UTC = dt.timezone.utc
NOW = dt.datetime.now(UTC)
OLD = dt.datetime(2019, 1, 1, tzinfo=UTC)
FAR = dt.datetime(2039, 1, 1, tzinfo=UTC)


def name(cn):
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "secure-model test"),
                      x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def ku(sign=False, agree=False, ca=False, encipher=False):
    return x509.KeyUsage(sign, False, encipher, False, agree, ca, ca, False, False)


def save(stem, cert, key):
    (OUT / f"{stem}.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (OUT / f"{stem}.key").write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))


def issue(subject, key, issuer_name, issuer_key, *, ca, pathlen=None, usage=None, eku=None,
          san=None, nb=OLD, na=FAR, h=hashes.SHA384()):
    b = (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer_name)
         .public_key(key.public_key()).serial_number(x509.random_serial_number())
         .not_valid_before(nb).not_valid_after(na)
         .add_extension(x509.BasicConstraints(ca=ca, path_length=pathlen), critical=True))
    if usage is not None:
        b = b.add_extension(usage, critical=True)
    if eku is not None:
        b = b.add_extension(x509.ExtendedKeyUsage(eku), critical=False)
    if san is not None:
        b = b.add_extension(x509.SubjectAlternativeName([x509.RFC822Name(san)]), critical=False)
    return b.sign(issuer_key, h)


def ca(stem, cn, issuer=None, pathlen=None, h=hashes.SHA384()):
    key = ec.generate_private_key(ec.SECP384R1())
    subj = name(cn)
    iname, ikey = (subj, key) if issuer is None else (issuer[0].subject, issuer[1])
    cert = issue(subj, key, iname, ikey, ca=True, pathlen=pathlen, usage=ku(ca=True), h=h)
    save(stem, cert, key)
    return cert, key


def leaf(stem, issuer, curve=ec.SECP256R1(), usage=ku(sign=True),
         eku=(ExtendedKeyUsageOID.CODE_SIGNING,), nb=None, na=None, is_ca=False):
    key = ec.generate_private_key(curve)
    cert = issue(name(stem), key, issuer[0].subject, issuer[1], ca=is_ca, usage=usage,
                 eku=list(eku) if eku else None, san="model-signer@example.com",
                 nb=nb or NOW - dt.timedelta(hours=1), na=na or NOW + dt.timedelta(days=30))
    save(stem, cert, key)


root = ca("root", "Test Root CA", pathlen=1)
inter = ca("inter", "Test Intermediate CA", issuer=root, pathlen=0)
leaf("leaf-p256", inter)
leaf("leaf-p384", inter, curve=ec.SECP384R1())
leaf("leaf-p521", inter, curve=ec.SECP521R1())
leaf("leaf-noeku", inter, eku=None)
leaf("leaf-nosign", inter, usage=ku(agree=True), eku=(ExtendedKeyUsageOID.SERVER_AUTH,))
leaf("leaf-serverauth", inter, eku=(ExtendedKeyUsageOID.SERVER_AUTH,))
leaf("leaf-keyenc", inter, usage=ku(encipher=True))
leaf("leaf-ca", inter, is_ca=True)
leaf("leaf-expired", inter, nb=dt.datetime(2020, 1, 1, tzinfo=UTC), na=dt.datetime(2020, 1, 2, tzinfo=UTC))
ca("other-root", "Other Root CA")
ca("fake-root", "Test Root CA")
inter2 = ca("inter2", "Test Second-level CA", issuer=inter)
leaf("leaf-deep", inter2)


def sha1_ca():
    """cryptography refuses SHA-1 signatures; the openssl CLI still makes them."""
    import subprocess
    key = ec.generate_private_key(ec.SECP384R1())
    save("inter-sha1", issue(name("Test SHA-1 CA"), key, name("Test SHA-1 CA"), key, ca=True), key)
    csr = (x509.CertificateSigningRequestBuilder().subject_name(name("Test SHA-1 CA"))
           .sign(key, hashes.SHA256()))
    (OUT / "inter-sha1.csr").write_bytes(csr.public_bytes(serialization.Encoding.PEM))
    (OUT / "ext.cnf").write_text("[ca]\nbasicConstraints=critical,CA:true,pathlen:0\n"
                                 "keyUsage=critical,keyCertSign,cRLSign\n")
    subprocess.run(["openssl", "x509", "-req", "-in", OUT / "inter-sha1.csr", "-CA", OUT / "root.pem",
                    "-CAkey", OUT / "root.key", "-set_serial", "7", "-days", "365", "-sha1",
                    "-extfile", OUT / "ext.cnf", "-extensions", "ca", "-out", OUT / "inter-sha1.pem"],
                   check=True, capture_output=True)
    cert = x509.load_pem_x509_certificate((OUT / "inter-sha1.pem").read_bytes())
    leaf("leaf-sha1", (cert, key))


try:
    sha1_ca()
except Exception as e:  # no openssl CLI: the SHA-1 case is skipped (the test says so)
    (OUT / "inter-sha1.pem").unlink(missing_ok=True)
    print(f"no SHA-1 CA: {e}", file=sys.stderr)
