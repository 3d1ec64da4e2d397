//! Subcommand implementations: parse arguments into core calls, print results.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use clap::Args;
use secure_model_core::config::{load_key_providers, load_trusted_keys, parse_digest_pin};
use secure_model_core::crypto::streaming::StreamParams;
use secure_model_core::crypto::Kek;
use secure_model_core::format::{KeysFile, Limits, KEYS_OBJECT, MANIFEST_OBJECT};
use secure_model_core::keys::{provider_from_spec, KeyProvider};
use secure_model_core::loader::{filesystem_kind, FsKind, LoadOptions, Loader, Progress};
use secure_model_core::package::{self, PackOptions};
use secure_model_core::storage::open_location;
use secure_model_core::verify::{parse_unverified, SigningKey};

use crate::progress::Bar;
use crate::{Failure, Output};

type Res = Result<(), Failure>;

fn print_json<T: serde::Serialize>(v: &T) -> Res {
    let s = serde_json::to_string_pretty(v)
        .map_err(|e| Failure::internal(format!("cannot serialise output: {e}")))?;
    println!("{s}");
    Ok(())
}

pub(crate) fn write_new(path: &Path, data: &[u8], mode: u32) -> Res {
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .map_err(|e| {
            Failure::config(format!(
                "cannot create {} (refusing to overwrite existing files): {e}",
                path.display()
            ))
        })?;
    f.write_all(data)
        .and_then(|_| f.sync_all())
        .map_err(|e| Failure::internal(format!("cannot write {}: {e}", path.display())))
}

// ---------------------------------------------------------------- keygen

/// Arguments of `keygen`.
#[derive(Debug, Args)]
pub(crate) struct KeygenArgs {
    /// Directory to write `kek.bin`, `signing-key.pem` and `signing-key.pub.pem` into
    /// (created if missing; existing files are never overwritten).
    #[arg(long)]
    out: PathBuf,
    #[command(flatten)]
    output: Output,
}

#[derive(serde::Serialize)]
struct KeygenReport {
    kek: PathBuf,
    kek_recipient: String,
    signing_key: PathBuf,
    public_key: PathBuf,
    public_key_hint: String,
}

fn keygen_into(dir: &Path) -> Result<KeygenReport, Failure> {
    std::fs::create_dir_all(dir)
        .map_err(|e| Failure::config(format!("cannot create {}: {e}", dir.display())))?;
    let kek = Kek::generate().map_err(|e| Failure::internal(e.to_string()))?;
    let (sk, pem) = SigningKey::generate()?;
    let vk = sk.verifying_key();
    let kek_path = dir.join("kek.bin");
    let sk_path = dir.join("signing-key.pem");
    let pk_path = dir.join("signing-key.pub.pem");
    for p in [&kek_path, &sk_path, &pk_path] {
        if p.exists() {
            return Err(Failure::config(format!(
                "{} already exists; refusing to overwrite a key",
                p.display()
            )));
        }
    }
    write_new(&kek_path, kek.expose_secret(), 0o600)?;
    write_new(&sk_path, pem.as_bytes(), 0o600)?;
    write_new(&pk_path, vk.to_pem().as_bytes(), 0o644)?;
    let recipient = secure_model_core::keys::LocalKeyProvider::new(kek)
        .recipient()
        .to_string();
    Ok(KeygenReport {
        kek: kek_path,
        kek_recipient: recipient,
        signing_key: sk_path,
        public_key: pk_path,
        public_key_hint: vk.hint(),
    })
}

pub(crate) fn keygen(a: KeygenArgs) -> Res {
    let r = keygen_into(&a.out)?;
    if a.output.json {
        return print_json(&r);
    }
    println!(
        "wrote {} (local KEK, recipient {}, mode 0600)",
        r.kek.display(),
        r.kek_recipient
    );
    println!(
        "wrote {} (ECDSA P-256 PKCS#8 signing key, mode 0600)",
        r.signing_key.display()
    );
    println!(
        "wrote {} (public key, hint {})",
        r.public_key.display(),
        r.public_key_hint
    );
    Ok(())
}

// ---------------------------------------------------------------- pack

/// Arguments of `pack`.
#[derive(Debug, Args)]
pub(crate) struct PackArgs {
    /// Model directory to encrypt (regular files only; `.git*` at the top level is skipped).
    model_dir: PathBuf,
    /// Package destination: a directory or `file://` URI.
    dest: String,
    /// PKCS#8 PEM ECDSA P-256 private key that signs the manifest.
    #[arg(long, env = "SECURE_MODEL_SIGNING_KEY")]
    signing_key: PathBuf,
    /// Recipient that can unwrap the data key, `TYPE:ARG` (e.g. `local:keys/kek.bin`).
    /// Repeat for several.
    #[arg(long = "recipient", required = true)]
    recipients: Vec<String>,
    /// Model name written in the manifest (default: the directory name).
    #[arg(long)]
    name: Option<String>,
    /// Ciphertext segment size in bytes (default 1048576, Tink AES256_GCM_HKDF_1MB).
    #[arg(long, default_value_t = 1 << 20)]
    segment_size: u32,
    #[command(flatten)]
    output: Output,
}

fn read_signing_key(path: &Path) -> Result<SigningKey, Failure> {
    let text = zeroize::Zeroizing::new(std::fs::read_to_string(path).map_err(|e| {
        Failure::config(format!("cannot read signing key {}: {e}", path.display()))
    })?);
    SigningKey::from_pem(&text)
        .map_err(|e| Failure::config(format!("signing key {}: {e}", path.display())))
}

pub(crate) async fn pack(a: PackArgs) -> Res {
    let signer = read_signing_key(&a.signing_key)?;
    let recipients = load_key_providers(&a.recipients)?;
    let params = StreamParams::new(a.segment_size)
        .map_err(|e| Failure::config(format!("--segment-size: {e}")))?;
    let store = open_location(&a.dest, true)?;
    let bar: Arc<dyn Progress> = Arc::new(Bar::new("packing", a.output.json));
    let mut opts = PackOptions::default()
        .with_params(params)
        .with_progress(bar);
    if let Some(n) = a.name {
        opts = opts.with_model_name(n);
    }
    let r = package::pack(&a.model_dir, store.as_ref(), &signer, &recipients, &opts).await?;
    if a.output.json {
        return print_json(&r);
    }
    println!(
        "packed {} files ({} bytes) of model {:?} into {}",
        r.files,
        r.plaintext_bytes,
        r.model_name,
        store.location()
    );
    println!("model_id        {}", r.model_id);
    println!(
        "manifest sha256 {}  (pin it with --manifest-digest to refuse rollbacks)",
        r.manifest_digest
    );
    for rc in &r.recipients {
        println!("recipient       {rc}");
    }
    Ok(())
}

// ---------------------------------------------------------------- verify

/// The loader `verify` and `pull` share: trusted keys, key providers, optional digest pin.
fn build_loader(
    trusted_keys: &[PathBuf],
    keys: &[String],
    manifest_digest: Option<&str>,
    mut opts: LoadOptions,
    bar: Bar,
) -> Result<Loader, Failure> {
    let trusted = load_trusted_keys(trusted_keys)?;
    let providers = load_key_providers(keys)?;
    if let Some(d) = manifest_digest {
        opts = opts.pin_manifest_digest(parse_digest_pin(d)?);
    }
    Ok(Loader::new(trusted, providers)
        .with_options(opts)
        .with_progress(Arc::new(bar)))
}

/// Arguments of `verify`.
#[derive(Debug, Args)]
pub(crate) struct VerifyArgs {
    /// Package location (directory or `file://` URI).
    pkg: String,
    /// Trusted signer public key (SPKI PEM). Repeat for several.
    #[arg(
        long = "trusted-key",
        required = true,
        env = "SECURE_MODEL_TRUSTED_KEYS",
        value_delimiter = ','
    )]
    trusted_keys: Vec<PathBuf>,
    /// Also decrypt with this key (`TYPE:ARG`) and check every plaintext SHA-256 (nothing is
    /// written).
    #[arg(long = "key")]
    keys: Vec<String>,
    /// Require the manifest to have this SHA-256 (hex).
    #[arg(long)]
    manifest_digest: Option<String>,
    #[command(flatten)]
    output: Output,
}

pub(crate) async fn verify(a: VerifyArgs) -> Res {
    let decrypt = !a.keys.is_empty();
    let loader = build_loader(
        &a.trusted_keys,
        &a.keys,
        a.manifest_digest.as_deref(),
        LoadOptions::default(),
        Bar::new("verifying", a.output.json),
    )?;
    let store = open_location(&a.pkg, false)?;
    let r = loader.verify_package(store, decrypt).await?;
    if a.output.json {
        return print_json(&r);
    }
    println!(
        "OK: signature by trusted key {} over model {:?} ({})",
        r.signer, r.model_name, r.model_id
    );
    println!(
        "OK: {} ciphertext objects match their signed sizes and SHA-256",
        r.files
    );
    match &r.decrypted_with {
        Some(rc) => println!(
            "OK: decrypted with {rc}; {} plaintext bytes match their signed SHA-256",
            r.plaintext_bytes
        ),
        None => println!("(no --key given: plaintext not checked)"),
    }
    Ok(())
}

// ---------------------------------------------------------------- inspect

/// Arguments of `inspect`.
#[derive(Debug, Args)]
pub(crate) struct InspectArgs {
    /// Package location (directory or `file://` URI).
    pkg: String,
    #[command(flatten)]
    output: Output,
}

#[derive(serde::Serialize)]
struct InspectFile {
    path: String,
    object: String,
    plaintext_size: u64,
    ciphertext_size: u64,
    plaintext_sha256: String,
}

#[derive(serde::Serialize)]
struct InspectReport {
    format: String,
    signature_verified: bool,
    model_name: String,
    model_id: String,
    manifest_digest: String,
    signer_key_hint: String,
    segment_size: u32,
    files: Vec<InspectFile>,
    recipients: Vec<String>,
    plaintext_bytes: u64,
    ciphertext_bytes: u64,
}

pub(crate) async fn inspect(a: InspectArgs) -> Res {
    let store = open_location(&a.pkg, false)?;
    let limits = Limits::default();
    let bytes = store
        .get(MANIFEST_OBJECT, limits.max_manifest_bytes)
        .await?;
    let m = parse_unverified(&bytes, &limits)?;
    let keys = store.get(KEYS_OBJECT, limits.max_keys_file_bytes).await?;
    let kf = KeysFile::parse(&keys, &limits)?;
    let r = InspectReport {
        format: secure_model_core::format::ENCRYPTION_FORMAT.into(),
        signature_verified: false,
        model_name: m.model_name().into(),
        model_id: m.model_id().into(),
        manifest_digest: hex::encode(m.digest()),
        signer_key_hint: m.signer_hint().into(),
        segment_size: m.params().segment_size(),
        files: m
            .files()
            .iter()
            .map(|f| InspectFile {
                path: f.path().into(),
                object: f.object().into(),
                plaintext_size: f.plaintext_size(),
                ciphertext_size: f.ciphertext_size(),
                plaintext_sha256: hex::encode(f.plaintext_sha256()),
            })
            .collect(),
        recipients: kf
            .recipients
            .iter()
            .map(|e| format!("{}:{}", e.provider, e.key_ref))
            .collect(),
        plaintext_bytes: m.total_plaintext(),
        ciphertext_bytes: m.total_ciphertext(),
    };
    if a.output.json {
        return print_json(&r);
    }
    println!("package     {}", store.location());
    println!("format      {} (segment size {})", r.format, r.segment_size);
    println!("model       {:?}  id {}", r.model_name, r.model_id);
    println!("manifest    sha256 {}", r.manifest_digest);
    println!(
        "signer hint {}  (NOT verified here; run `secure-model verify`)",
        r.signer_key_hint
    );
    println!("recipients  {}", r.recipients.join(", "));
    println!(
        "files       {} ({} bytes plaintext, {} bytes ciphertext)",
        r.files.len(),
        r.plaintext_bytes,
        r.ciphertext_bytes
    );
    for f in &r.files {
        println!("  {:>12}  {}  {}", f.plaintext_size, f.object, f.path);
    }
    Ok(())
}

// ---------------------------------------------------------------- pull

/// Arguments of `pull`.
#[derive(Debug, Args)]
pub(crate) struct PullArgs {
    /// Package location (directory or `file://` URI).
    pkg: String,
    /// Destination directory (must be tmpfs/ramfs unless --allow-disk-plaintext).
    dest: PathBuf,
    /// Trusted signer public key (SPKI PEM). Repeat for several.
    #[arg(
        long = "trusted-key",
        required = true,
        env = "SECURE_MODEL_TRUSTED_KEYS",
        value_delimiter = ','
    )]
    trusted_keys: Vec<PathBuf>,
    /// Key to unlock with (`TYPE:ARG`, e.g. `local:kek.bin`). Repeat to try several.
    #[arg(
        long = "key",
        required = true,
        env = "SECURE_MODEL_KEYS",
        value_delimiter = ','
    )]
    keys: Vec<String>,
    /// Allow plaintext on a disk-backed destination (unsafe in Kata pods: shared with the host).
    #[arg(long)]
    allow_disk_plaintext: bool,
    /// Require the manifest to have this SHA-256 (hex): refuses rollbacks.
    #[arg(long)]
    manifest_digest: Option<String>,
    #[command(flatten)]
    tuning: PullTuning,
    #[command(flatten)]
    output: Output,
}

/// Pipeline knobs of `pull` (defaults: the library's `LoadOptions`). In-flight memory is about
/// `file-concurrency × read-ahead × range-segments` segments.
#[derive(Debug, Args)]
pub(crate) struct PullTuning {
    /// Ciphertext segments per ranged GET (MiB with the default 1 MiB segment size).
    #[arg(long, visible_alias = "range-mib", value_parser = clap::value_parser!(u32).range(1..=1024))]
    range_segments: Option<u32>,
    /// Ranged GETs in flight per file.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=256))]
    read_ahead: Option<u64>,
    /// Files fetched and decrypted concurrently.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=256))]
    file_concurrency: Option<u64>,
}

impl PullTuning {
    fn apply(&self, opts: LoadOptions) -> LoadOptions {
        let mut opts = opts;
        if let Some(n) = self.range_segments {
            opts = opts.range_segments(n);
        }
        let files = self
            .file_concurrency
            .map_or(opts.file_concurrency, |n| n as usize);
        let ahead = self.read_ahead.map_or(opts.read_ahead, |n| n as usize);
        opts.concurrency(files, ahead)
    }
}

pub(crate) async fn pull(a: PullArgs) -> Res {
    let loader = build_loader(
        &a.trusted_keys,
        &a.keys,
        a.manifest_digest.as_deref(),
        a.tuning
            .apply(LoadOptions::default().allow_disk_plaintext(a.allow_disk_plaintext)),
        Bar::new("pulling", a.output.json),
    )?;
    let store = open_location(&a.pkg, false)?;
    let r = loader.pull(store, &a.dest).await?;
    if a.output.json {
        return print_json(&r);
    }
    println!(
        "pulled {} files ({} bytes) of model {:?} into {} ({:?}) in {:.2}s via {}",
        r.files,
        r.plaintext_bytes,
        r.model_name,
        r.destination.display(),
        r.destination_fs,
        r.seconds,
        r.recipient
    );
    Ok(())
}

// ---------------------------------------------------------------- rewrap

/// Arguments of `rewrap`.
#[derive(Debug, Args)]
pub(crate) struct RewrapArgs {
    /// Package location (directory or `file://` URI).
    pkg: String,
    /// A current recipient's key (`TYPE:ARG`) used to unwrap the data key.
    #[arg(long)]
    key: String,
    /// Recipient to add (`TYPE:ARG`). Repeatable.
    #[arg(long = "add")]
    add: Vec<String>,
    /// Recipient to remove (`TYPE:ARG` key spec, or `provider:key_ref` as shown by inspect).
    /// Repeatable.
    #[arg(long = "remove")]
    remove: Vec<String>,
    /// Verify the manifest signature with this public key first (recommended).
    #[arg(long = "trusted-key")]
    trusted_keys: Vec<PathBuf>,
    #[command(flatten)]
    output: Output,
}

pub(crate) async fn rewrap(a: RewrapArgs) -> Res {
    if a.add.is_empty() && a.remove.is_empty() {
        return Err(Failure::config("nothing to do: give --add and/or --remove"));
    }
    let current = provider_from_spec(&a.key)?;
    let add = load_key_providers(&a.add)?;
    let mut remove = Vec::new();
    for spec in &a.remove {
        // A key spec that resolves (local:FILE) names its recipient; otherwise take it as the
        // `provider:key_ref` printed by `inspect`.
        match provider_from_spec(spec) {
            Ok(p) => remove.push(p.recipient().clone()),
            Err(_) => {
                let (p, r) = spec.split_once(':').ok_or_else(|| {
                    Failure::config(format!(
                        "--remove {spec:?}: expected TYPE:ARG or provider:key_ref"
                    ))
                })?;
                remove.push(secure_model_core::keys::Recipient::new(p, r));
            }
        }
    }
    let trusted = if a.trusted_keys.is_empty() {
        None
    } else {
        Some(load_trusted_keys(&a.trusted_keys)?)
    };
    let store = open_location(&a.pkg, false)?;
    let r = package::rewrap(
        store.as_ref(),
        current.as_ref(),
        &add,
        &remove,
        trusted.as_ref(),
    )
    .await?;
    if a.output.json {
        return print_json(&r);
    }
    for x in &r.added {
        println!("added   {x}");
    }
    for x in &r.removed {
        println!("removed {x}");
    }
    println!("recipients now: {}", r.recipients.join(", "));
    if !r.manifest_verified {
        println!("note: manifest signature not verified (pass --trusted-key)");
    }
    Ok(())
}

// ---------------------------------------------------------------- demo

/// Arguments of `attest`.
#[derive(Debug, Args)]
pub(crate) struct AttestArgs {
    /// Which TEE interface: auto, tdx, snp, cca, tsm, tsm:DIR, sev-guest, sev-guest:DEVICE,
    /// sample (see docs/attestation.md).
    #[arg(long, env = "SECURE_MODEL_ATTESTER", default_value = "auto")]
    attester: String,
    /// Allow the `sample` attester (no TEE; development only).
    #[arg(long, env = "SECURE_MODEL_ALLOW_SAMPLE_ATTESTER",
          value_parser = clap::builder::BoolishValueParser::new(), default_value_t = false,
          num_args = 0, default_missing_value = "true")]
    allow_sample: bool,
    /// Report data as hex, at most 64 bytes (zero-padded to 64 for TDX, SNP and CCA).
    /// Default: 48 random bytes, the size of the KBS binding hash.
    #[arg(long, value_name = "HEX")]
    report_data: Option<String>,
}

#[derive(serde::Serialize)]
struct AttestReport {
    tee: String,
    report_data: String,
    evidence: serde_json::Value,
}

pub(crate) async fn attest(a: AttestArgs) -> Res {
    use secure_model_core::attest::{AttesterChoice, MAX_REPORT_DATA};
    let report_data = match &a.report_data {
        Some(h) => {
            let b =
                hex::decode(h.trim()).map_err(|_| Failure::config("--report-data is not hex"))?;
            if b.len() > MAX_REPORT_DATA {
                return Err(Failure::config(format!(
                    "--report-data is {} bytes; at most {MAX_REPORT_DATA} are accepted",
                    b.len()
                )));
            }
            b
        }
        None => {
            let mut b = vec![0u8; 48];
            secure_model_core::crypto::random_fill(&mut b)
                .map_err(|_| Failure::internal("the system random number generator failed"))?;
            b
        }
    };
    let attester = AttesterChoice::parse(&a.attester)?.build(a.allow_sample)?;
    let evidence = attester.evidence(&report_data).await?;
    print_json(&AttestReport {
        tee: attester.tee().to_string(),
        report_data: hex::encode(&report_data),
        evidence,
    })
}

/// Arguments of `demo`.
#[derive(Debug, Args)]
pub(crate) struct DemoArgs {
    /// Model directory to use.
    #[arg(long, default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/tiny-model"))]
    model: PathBuf,
    /// Working directory for keys and the package (default: a new temporary directory, kept).
    #[arg(long)]
    workdir: Option<PathBuf>,
    /// Memory-backed directory to pull into (default: a new directory under /dev/shm).
    #[arg(long)]
    dest: Option<PathBuf>,
}

fn sha256_file(p: &Path) -> Result<[u8; 32], Failure> {
    let mut f =
        std::fs::File::open(p).map_err(|e| Failure::internal(format!("{}: {e}", p.display())))?;
    let mut h = secure_model_core::crypto::Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = std::io::Read::read(&mut f, &mut buf)
            .map_err(|e| Failure::internal(format!("{}: {e}", p.display())))?;
        if n == 0 {
            break;
        }
        h.update(buf.get(..n).unwrap_or_default());
    }
    Ok(h.finish())
}

pub(crate) async fn demo(a: DemoArgs) -> Res {
    let work = match a.workdir {
        Some(w) => w,
        None => tempfile::Builder::new()
            .prefix("secure-model-demo-")
            .tempdir()
            .map_err(|e| Failure::internal(format!("cannot create a temporary directory: {e}")))?
            .keep(),
    };
    let user_dest = a.dest.is_some();
    let dest = match a.dest {
        Some(d) => d,
        None => {
            let shm = Path::new("/dev/shm");
            if filesystem_kind(shm).ok() != Some(FsKind::Tmpfs) {
                return Err(Failure::config(
                    "/dev/shm is not a tmpfs here; pass --dest DIR on a memory-backed filesystem",
                ));
            }
            tempfile::Builder::new()
                .prefix("secure-model-demo-")
                .tempdir_in(shm)
                .map_err(|e| {
                    Failure::internal(format!("cannot create a directory in /dev/shm: {e}"))
                })?
                .keep()
                .join("model")
        }
    };
    println!("1. keygen   -> {}", work.join("keys").display());
    let k = keygen_into(&work.join("keys"))?;
    println!(
        "   KEK recipient {}; signer hint {}",
        k.kek_recipient, k.public_key_hint
    );

    let pkg = work.join("package");
    println!("2. pack     {} -> {}", a.model.display(), pkg.display());
    let signer = read_signing_key(&k.signing_key)?;
    let spec = format!("local:{}", k.kek.display());
    let recipients = load_key_providers(&[spec.as_str()])?;
    let store = open_location(pkg.to_str().unwrap_or_default(), true)?;
    let r = package::pack(
        &a.model,
        store.as_ref(),
        &signer,
        &recipients,
        &PackOptions::default(),
    )
    .await?;
    println!(
        "   {} files, {} bytes, model_id {}, manifest sha256 {}",
        r.files, r.plaintext_bytes, r.model_id, r.manifest_digest
    );

    println!("3. verify   signature + ciphertext digests (no key)");
    let trusted = load_trusted_keys(&[&k.public_key])?;
    let v = Loader::new(trusted.clone(), Vec::new())
        .verify_package(Arc::clone(&store), false)
        .await?;
    println!("   OK, signed by trusted key {}", v.signer);

    println!("4. pull     -> {} (memory-backed)", dest.display());
    let loader = Loader::new(trusted, recipients)
        .with_options(LoadOptions::default().allow_disk_plaintext(a_dest_is_disk(&dest)));
    let p = loader.pull(store, &dest).await?;
    println!(
        "   {} files, {} bytes in {:.3}s on {:?}",
        p.files, p.plaintext_bytes, p.seconds, p.destination_fs
    );

    println!("5. compare  pulled files with {}", a.model.display());
    let files = package::scan_model_dir(&a.model)?;
    for (rel, src) in &files {
        if sha256_file(src)? != sha256_file(&dest.join(rel))? {
            return Err(Failure::internal(format!(
                "{rel} differs after the round trip"
            )));
        }
    }
    println!("   all {} files identical", files.len());
    println!();
    println!(
        "done. keys and package: {}  plaintext: {}",
        work.display(),
        dest.display()
    );
    println!("try:  secure-model inspect {}", pkg.display());
    println!(
        "      secure-model verify {} --trusted-key {} --key {spec}",
        pkg.display(),
        k.public_key.display()
    );
    let plain_root = if user_dest {
        dest.as_path()
    } else {
        dest.parent().unwrap_or(&dest)
    };
    println!(
        "clean up with: rm -rf {} {}",
        work.display(),
        plain_root.display()
    );
    Ok(())
}

/// The demo allows disk plaintext only when the user chose a --dest that is not memory-backed;
/// it says so loudly.
fn a_dest_is_disk(dest: &Path) -> bool {
    let probe = dest
        .ancestors()
        .find(|p| p.exists())
        .unwrap_or(Path::new("/"));
    let disk = filesystem_kind(probe)
        .map(|k| k == FsKind::Other)
        .unwrap_or(false);
    if disk {
        eprintln!("warning: {} is not memory-backed; the demo writes plaintext there because you chose it", dest.display());
    }
    disk
}
