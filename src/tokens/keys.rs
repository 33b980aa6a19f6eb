//! Signing keys kept as PEM files in a folder (`keys_dir`).
//!
//! Every `*.pem` file in the folder is one private key. Each is parsed once
//! into an aws-lc-rs key pair held in memory, so minting a token costs one
//! signature and no key parsing. The newest key (by file modification time)
//! signs; every key is published in the JWKS so that tokens signed before a
//! rotation still verify. A key's `kid` is its RFC 7638 JWK thumbprint, so it
//! is stable across restarts and identical on every replica sharing the keys.
//!
//! Private keys never leave this module except as signatures.

use std::collections::{BTreeMap, HashSet};
use std::ffi::OsStr;
use std::fmt;
use std::fs;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_lc_rs::digest;
use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::KeySize;
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair, KeyPair as _, RSA_PKCS1_SHA256,
    RsaKeyPair,
};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::DecodingKey;
use serde_json::{Value, json};

/// Largest key file we read; real keys are a few KiB, so anything bigger is
/// not a key and is refused rather than read into memory.
const MAX_KEY_FILE_BYTES: u64 = 1024 * 1024;

/// JOSE algorithms claimset can sign with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum SigningAlg {
    /// RSASSA-PKCS1-v1_5 with SHA-256 over an RSA key (2048 bits when generated).
    RS256,
    /// ECDSA over P-256 with SHA-256; signatures are the fixed 64-byte `r || s`.
    ES256,
    /// Ed25519 signatures (RFC 8037).
    EdDSA,
}

impl SigningAlg {
    /// Every algorithm claimset can sign with, for error messages and config help.
    pub const ALL: [SigningAlg; 3] = [SigningAlg::RS256, SigningAlg::ES256, SigningAlg::EdDSA];

    /// The JOSE `alg` name, as written in JWT headers, JWKs and discovery.
    pub fn as_str(&self) -> &'static str {
        match self {
            SigningAlg::RS256 => "RS256",
            SigningAlg::ES256 => "ES256",
            SigningAlg::EdDSA => "EdDSA",
        }
    }

    /// The matching `jsonwebtoken` algorithm, used when verifying tokens.
    pub fn jwt_algorithm(&self) -> jsonwebtoken::Algorithm {
        match self {
            SigningAlg::RS256 => jsonwebtoken::Algorithm::RS256,
            SigningAlg::ES256 => jsonwebtoken::Algorithm::ES256,
            SigningAlg::EdDSA => jsonwebtoken::Algorithm::EdDSA,
        }
    }

    /// Lower-case name used in generated key file names.
    fn file_suffix(&self) -> &'static str {
        match self {
            SigningAlg::RS256 => "rs256",
            SigningAlg::ES256 => "es256",
            SigningAlg::EdDSA => "eddsa",
        }
    }
}

impl FromStr for SigningAlg {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        SigningAlg::ALL
            .into_iter()
            .find(|alg| alg.as_str() == s)
            .ok_or_else(|| {
                format!("unsupported signing algorithm {s:?}: expected one of RS256, ES256, EdDSA")
            })
    }
}

impl fmt::Display for SigningAlg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why loading, generating or using a signing key failed.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// Reading or writing a key file or the keys folder failed.
    #[error("I/O error on {}: {source}", .path.display())]
    Io {
        /// The file or folder involved.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// A `.pem` file is not a private key claimset can use.
    #[error("{}: not a usable signing key: {reason}", .path.display())]
    InvalidKey {
        /// The offending file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// The keys folder holds no `.pem` key at all.
    #[error("no signing keys (*.pem) in {}", .dir.display())]
    NoKeys {
        /// The folder that was searched.
        dir: PathBuf,
    },
    /// The crypto library could not generate a key.
    #[error("could not generate a new {alg} key")]
    Generate {
        /// The algorithm asked for.
        alg: SigningAlg,
    },
    /// The crypto library could not sign.
    #[error("signing with key {kid} failed")]
    Sign {
        /// The key that failed.
        kid: String,
    },
    /// A token could not be assembled (for example, claims that are not a JSON object).
    #[error("could not encode token: {0}")]
    Encode(String),
}

/// The parsed private key, kept only inside this module.
enum KeyMaterial {
    Rsa(RsaKeyPair),
    Ec(EcdsaKeyPair),
    Ed(Ed25519KeyPair),
}

impl KeyMaterial {
    fn alg(&self) -> SigningAlg {
        match self {
            KeyMaterial::Rsa(_) => SigningAlg::RS256,
            KeyMaterial::Ec(_) => SigningAlg::ES256,
            KeyMaterial::Ed(_) => SigningAlg::EdDSA,
        }
    }
}

/// One private key loaded from a PEM file, parsed once.
///
/// Signing uses the in-memory key pair; verification uses a
/// [`DecodingKey`] built once from the public components.
pub struct SigningKey {
    kid: String,
    alg: SigningAlg,
    path: PathBuf,
    modified: SystemTime,
    jwk: Value,
    decoding: DecodingKey,
    material: KeyMaterial,
    /// Base64url of this key's `{"alg","kid","typ":"JWT"}` header.
    jwt_header: String,
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The private key is deliberately left out.
        f.debug_struct("SigningKey")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .field("path", &self.path)
            .field("modified", &self.modified)
            .finish_non_exhaustive()
    }
}

impl SigningKey {
    /// The key id (RFC 7638 thumbprint) put in JWT headers and the JWKS.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The algorithm this key signs with.
    pub fn alg(&self) -> SigningAlg {
        self.alg
    }

    /// The PEM file the key came from, for logs and operator messages.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The file's modification time, which decides which key is newest.
    pub fn modified(&self) -> SystemTime {
        self.modified
    }

    /// The base64url JOSE header of the JWTs this key signs, encoded once
    /// when the key is loaded instead of on every token.
    pub(super) fn jwt_header(&self) -> &str {
        &self.jwt_header
    }

    /// The public JWK published in the JWKS:
    /// `{"kty","use":"sig","alg","kid", n/e | crv/x/y | crv/x}`.
    pub fn public_jwk(&self) -> &Value {
        &self.jwk
    }

    /// Signs `message` (a JWS signing input) and returns the raw JWS signature
    /// bytes (ES256: the fixed 64-byte `r || s`).
    pub fn sign(&self, message: &[u8]) -> Result<Vec<u8>, KeyError> {
        let failed = |_| KeyError::Sign {
            kid: self.kid.clone(),
        };
        let rng = SystemRandom::new();
        match &self.material {
            KeyMaterial::Rsa(pair) => {
                let mut signature = vec![0u8; pair.public_modulus_len()];
                pair.sign(&RSA_PKCS1_SHA256, &rng, message, &mut signature)
                    .map_err(failed)?;
                Ok(signature)
            }
            KeyMaterial::Ec(pair) => pair
                .sign(&rng, message)
                .map(|sig| sig.as_ref().to_vec())
                .map_err(failed),
            KeyMaterial::Ed(pair) => pair
                .try_sign(message)
                .map(|sig| sig.as_ref().to_vec())
                .map_err(failed),
        }
    }

    /// The public key in `jsonwebtoken` form, built once, for verifying tokens.
    pub fn decoding_key(&self) -> &DecodingKey {
        &self.decoding
    }

    /// Reads and parses one key file.
    fn from_file(path: &Path) -> Result<SigningKey, KeyError> {
        let io_err = |source| KeyError::Io {
            path: path.to_path_buf(),
            source,
        };
        let invalid = |reason: String| KeyError::InvalidKey {
            path: path.to_path_buf(),
            reason,
        };

        let file = fs::File::open(path).map_err(io_err)?;
        let modified = file
            .metadata()
            .and_then(|meta| meta.modified())
            .map_err(io_err)?;
        let mut bytes = Vec::new();
        file.take(MAX_KEY_FILE_BYTES + 1)
            .read_to_end(&mut bytes)
            .map_err(io_err)?;
        if bytes.len() as u64 > MAX_KEY_FILE_BYTES {
            return Err(invalid(format!(
                "file is larger than {MAX_KEY_FILE_BYTES} bytes"
            )));
        }

        let material = parse_pem(&bytes).map_err(invalid)?;
        let (jwk, kid, decoding) = public_parts(&material).map_err(invalid)?;
        let alg = material.alg();
        let jwt_header = super::jwt::encoded_jose_header(alg.as_str(), &kid, super::jwt::JWT_TYP)
            .map_err(|e| invalid(e.to_string()))?;
        Ok(SigningKey {
            kid,
            alg,
            path: path.to_path_buf(),
            modified,
            jwk,
            decoding,
            material,
            jwt_header,
        })
    }
}

/// PEM labels that hold a private key.
const PRIVATE_KEY_TAGS: [&str; 4] = [
    "PRIVATE KEY",
    "RSA PRIVATE KEY",
    "EC PRIVATE KEY",
    "ENCRYPTED PRIVATE KEY",
];

/// Finds the single private-key block in a PEM file and parses it. Other
/// blocks (such as the `EC PARAMETERS` that `openssl ecparam` writes) are ignored.
fn parse_pem(bytes: &[u8]) -> Result<KeyMaterial, String> {
    let blocks = pem::parse_many(bytes).map_err(|e| format!("malformed PEM: {e}"))?;
    let mut keys = blocks
        .iter()
        .filter(|block| PRIVATE_KEY_TAGS.contains(&block.tag()));
    let Some(block) = keys.next() else {
        let found: Vec<&str> = blocks.iter().map(|b| b.tag()).collect();
        return Err(if found.is_empty() {
            "no PEM block found".to_owned()
        } else {
            format!("no private key PEM block (found: {})", found.join(", "))
        });
    };
    if keys.next().is_some() {
        return Err("more than one private key in one file".to_owned());
    }
    parse_private_key(block.tag(), block.contents())
}

/// Parses DER key bytes according to their PEM label; the algorithm is
/// whichever one the bytes parse as.
fn parse_private_key(tag: &str, der: &[u8]) -> Result<KeyMaterial, String> {
    match tag {
        "PRIVATE KEY" => {
            if let Ok(pair) = Ed25519KeyPair::from_pkcs8(der) {
                Ok(KeyMaterial::Ed(pair))
            } else if let Ok(pair) = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, der)
            {
                Ok(KeyMaterial::Ec(pair))
            } else if let Ok(pair) = RsaKeyPair::from_pkcs8(der) {
                Ok(KeyMaterial::Rsa(pair))
            } else {
                Err(
                    "PKCS#8 key is not an RSA (2048-8192 bit), P-256 or Ed25519 private key"
                        .to_owned(),
                )
            }
        }
        "RSA PRIVATE KEY" => RsaKeyPair::from_der(der)
            .map(KeyMaterial::Rsa)
            .map_err(|e| format!("PKCS#1 RSA private key rejected: {e}")),
        "EC PRIVATE KEY" => {
            EcdsaKeyPair::from_private_key_der(&ECDSA_P256_SHA256_FIXED_SIGNING, der)
                .map(KeyMaterial::Ec)
                .map_err(|e| format!("SEC1 EC private key is not a usable P-256 key: {e}"))
        }
        "ENCRYPTED PRIVATE KEY" => Err("encrypted private keys are not supported".to_owned()),
        other => Err(format!("unsupported PEM label {other:?}")),
    }
}

/// Base64url without padding, as JOSE wants it.
fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Builds the public JWK, the kid and the verification key of a parsed key.
fn public_parts(material: &KeyMaterial) -> Result<(Value, String, DecodingKey), String> {
    let alg = material.alg();
    let bad_public = |e: jsonwebtoken::errors::Error| format!("unusable public key: {e}");
    let (mut jwk, kid, decoding) = match material {
        KeyMaterial::Rsa(pair) => {
            let public = pair.public_key();
            let n = b64(public.modulus().big_endian_without_leading_zero());
            let e = b64(public.exponent().big_endian_without_leading_zero());
            let kid = thumbprint(&[("e", &e), ("kty", "RSA"), ("n", &n)]);
            let decoding = DecodingKey::from_rsa_components(&n, &e).map_err(bad_public)?;
            (json!({"kty": "RSA", "n": n, "e": e}), kid, decoding)
        }
        KeyMaterial::Ec(pair) => {
            let point = pair.public_key().as_ref();
            let coordinates = match point {
                [0x04, rest @ ..] if rest.len() == 64 => rest,
                _ => return Err("P-256 public key is not an uncompressed point".to_owned()),
            };
            let (x, y) = coordinates.split_at(32);
            let (x, y) = (b64(x), b64(y));
            let kid = thumbprint(&[("crv", "P-256"), ("kty", "EC"), ("x", &x), ("y", &y)]);
            let decoding = DecodingKey::from_ec_components(&x, &y).map_err(bad_public)?;
            (
                json!({"kty": "EC", "crv": "P-256", "x": x, "y": y}),
                kid,
                decoding,
            )
        }
        KeyMaterial::Ed(pair) => {
            let x = b64(pair.public_key().as_ref());
            let kid = thumbprint(&[("crv", "Ed25519"), ("kty", "OKP"), ("x", &x)]);
            let decoding = DecodingKey::from_ed_components(&x).map_err(bad_public)?;
            (
                json!({"kty": "OKP", "crv": "Ed25519", "x": x}),
                kid,
                decoding,
            )
        }
    };
    if let Value::Object(members) = &mut jwk {
        members.insert("use".to_owned(), Value::from("sig"));
        members.insert("alg".to_owned(), Value::from(alg.as_str()));
        members.insert("kid".to_owned(), Value::from(kid.clone()));
    }
    Ok((jwk, kid, decoding))
}

/// RFC 7638 thumbprint (SHA-256, base64url) of the given required members.
fn thumbprint(members: &[(&str, &str)]) -> String {
    // A BTreeMap orders the names by code point (byte order of UTF-8), and
    // serde_json writes compact JSON with the minimal escaping RFC 7638 asks for.
    let canonical: BTreeMap<&str, &str> = members.iter().copied().collect();
    let mut object = serde_json::Map::new();
    for (name, value) in canonical {
        object.insert(name.to_owned(), Value::from(value));
    }
    let json = Value::Object(object).to_string();
    b64(digest::digest(&digest::SHA256, json.as_bytes()).as_ref())
}

/// Computes the RFC 7638 SHA-256 thumbprint of a public JWK (`RSA`, `EC`,
/// `OKP` or `oct`), so code that receives JWKs (for example a DPoP `jkt`) can
/// compare keys the same way claimset names its own. `None` when the JWK lacks
/// a required member or has an unknown `kty`.
pub fn jwk_thumbprint(jwk: &Value) -> Option<String> {
    let required: &[&str] = match jwk.get("kty")?.as_str()? {
        "RSA" => &["e", "kty", "n"],
        "EC" => &["crv", "kty", "x", "y"],
        "OKP" => &["crv", "kty", "x"],
        "oct" => &["k", "kty"],
        _ => return None,
    };
    let members = required
        .iter()
        .map(|name| Some((*name, jwk.get(*name)?.as_str()?)))
        .collect::<Option<Vec<_>>>()?;
    Some(thumbprint(&members))
}

/// Every key of the folder: the newest signs, all are published.
#[derive(Debug)]
pub struct KeyRing {
    /// Newest first, one entry per kid.
    keys: Vec<SigningKey>,
}

impl KeyRing {
    /// Loads every *.pem in `dir`; if the folder is missing or holds no .pem,
    /// creates it and generates one key of `alg`, so a fresh install can sign
    /// without any setup.
    pub fn load_or_create(dir: &Path, alg: SigningAlg) -> Result<KeyRing, KeyError> {
        if pem_files(dir)?.is_empty() {
            generate_key_file(dir, alg)?;
        }
        KeyRing::load(dir)
    }

    /// Loads every *.pem; an empty ring is an error here. Files with other
    /// extensions (README.md, .gitignore) are ignored; a `.pem` file that is not
    /// a usable key is an error naming it. When two files hold the same key,
    /// only the newer one is kept.
    pub fn load(dir: &Path) -> Result<KeyRing, KeyError> {
        let files = pem_files(dir)?;
        if files.is_empty() {
            return Err(KeyError::NoKeys {
                dir: dir.to_path_buf(),
            });
        }
        let mut keys = files
            .iter()
            .map(|path| SigningKey::from_file(path))
            .collect::<Result<Vec<_>, _>>()?;
        keys.sort_by(|a, b| {
            b.modified
                .cmp(&a.modified)
                .then_with(|| b.path.file_name().cmp(&a.path.file_name()))
        });
        let mut seen = HashSet::new();
        keys.retain(|key| seen.insert(key.kid.clone()));
        Ok(KeyRing { keys })
    }

    /// The key that signs new tokens: the newest one.
    pub fn signing_key(&self) -> &SigningKey {
        // `load` is the only constructor and refuses to build an empty ring.
        &self.keys[0]
    }

    /// All keys, newest first, for publishing and verification.
    pub fn keys(&self) -> &[SigningKey] {
        &self.keys
    }

    /// The key with this `kid`, used to pick the verification key of a token.
    pub fn find(&self, kid: &str) -> Option<&SigningKey> {
        self.keys.iter().find(|key| key.kid == kid)
    }

    /// The JWKS document served at `/.well-known/jwks.json`:
    /// `{"keys":[public jwk, ...]}`, newest first.
    pub fn jwks(&self) -> Value {
        let keys: Vec<Value> = self.keys.iter().map(|key| key.jwk.clone()).collect();
        json!({ "keys": keys })
    }

    /// The distinct algorithms of the ring (newest first), for discovery's
    /// `id_token_signing_alg_values_supported`.
    pub fn algorithms(&self) -> Vec<SigningAlg> {
        let mut algs = Vec::new();
        for key in &self.keys {
            if !algs.contains(&key.alg) {
                algs.push(key.alg);
            }
        }
        algs
    }
}

/// The `.pem` files of `dir` (regular files, following symlinks), or none if
/// the folder does not exist.
fn pem_files(dir: &Path) -> Result<Vec<PathBuf>, KeyError> {
    let io_err = |path: &Path| {
        let path = path.to_path_buf();
        move |source| KeyError::Io { path, source }
    };
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io_err(dir)(e)),
    };
    let mut files = Vec::new();
    for entry in entries {
        let path = entry.map_err(io_err(dir))?.path();
        let is_pem = path
            .extension()
            .and_then(OsStr::to_str)
            .is_some_and(|ext| ext.eq_ignore_ascii_case("pem"));
        if is_pem && fs::metadata(&path).map_err(io_err(&path))?.is_file() {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

/// Writes a new private key file (PKCS#8 PEM, "PRIVATE KEY") with mode 0600
/// (create_new; never overwrite); returns its path. Used on first start and
/// for key rotation. The name is `<UTC timestamp>-<alg>.pem`, so names sort by
/// creation time.
pub fn generate_key_file(dir: &Path, alg: SigningAlg) -> Result<PathBuf, KeyError> {
    create_dir(dir)?;
    let der = generate_pkcs8(alg)?;
    let pem = pem::encode_config(
        &pem::Pem::new("PRIVATE KEY", der),
        pem::EncodeConfig::new().set_line_ending(pem::LineEnding::LF),
    );

    let started = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let mut attempt = 0u32;
    loop {
        let stamp = started + Duration::from_nanos(u64::from(attempt));
        let path = dir.join(format!("{}-{}.pem", utc_stamp(stamp), alg.file_suffix()));
        match create_private_file(&path) {
            Ok(mut file) => {
                let written = file
                    .write_all(pem.as_bytes())
                    .and_then(|()| file.sync_all());
                if let Err(source) = written {
                    drop(file);
                    // Do not leave a truncated key behind for the next load.
                    let _ = fs::remove_file(&path);
                    return Err(KeyError::Io { path, source });
                }
                return Ok(path);
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists && attempt < 1000 => {
                attempt += 1;
            }
            Err(source) => return Err(KeyError::Io { path, source }),
        }
    }
}

/// Creates `dir` and its parents; the keys folder itself is made private
/// (0700) on unix when this call creates it.
fn create_dir(dir: &Path) -> Result<(), KeyError> {
    let io_err = |source| KeyError::Io {
        path: dir.to_path_buf(),
        source,
    };
    if dir.is_dir() {
        return Ok(());
    }
    if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
        fs::create_dir_all(parent).map_err(io_err)?;
    }
    let mut builder = fs::DirBuilder::new();
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt as _;
        builder.mode(0o700);
    }
    match builder.create(dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists && dir.is_dir() => Ok(()),
        Err(e) => Err(io_err(e)),
    }
}

/// Opens a new file for writing, failing if it exists; mode 0600 on unix from
/// the moment it is created.
fn create_private_file(path: &Path) -> io::Result<fs::File> {
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    options.open(path)
}

/// Generates a private key and returns it as PKCS#8 v1 DER.
fn generate_pkcs8(alg: SigningAlg) -> Result<Vec<u8>, KeyError> {
    let failed = |_| KeyError::Generate { alg };
    let rng = SystemRandom::new();
    match alg {
        SigningAlg::RS256 => {
            let pair = RsaKeyPair::generate(KeySize::Rsa2048).map_err(failed)?;
            let der = AsDer::<aws_lc_rs::encoding::Pkcs8V1Der>::as_der(&pair).map_err(failed)?;
            Ok(der.as_ref().to_vec())
        }
        SigningAlg::ES256 => EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
            .map(|doc| doc.as_ref().to_vec())
            .map_err(failed),
        SigningAlg::EdDSA => Ed25519KeyPair::generate_pkcs8v1(&rng)
            .map(|doc| doc.as_ref().to_vec())
            .map_err(failed),
    }
}

/// Formats a time since the epoch as `YYYYMMDDTHHMMSS.nnnnnnnnnZ` (UTC).
fn utc_stamp(since_epoch: Duration) -> String {
    let secs = since_epoch.as_secs();
    let (year, month, day) = civil_from_days(secs / 86_400);
    let rem = secs % 86_400;
    format!(
        "{year:04}{month:02}{day:02}T{:02}{:02}{:02}.{:09}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        since_epoch.subsec_nanos()
    )
}

/// Days since 1970-01-01 to a proleptic Gregorian (year, month, day), after
/// Howard Hinnant's `civil_from_days`.
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)] // a failed unwrap is a failed test
mod tests {
    use super::*;
    use std::fs::File;

    fn set_mtime(path: &Path, secs_after_epoch: u64) {
        let file = File::options().write(true).open(path).unwrap();
        file.set_modified(UNIX_EPOCH + Duration::from_secs(secs_after_epoch))
            .unwrap();
    }

    /// Reads one DER TLV at the start of `der`: (tag, content, rest).
    fn der_tlv(der: &[u8]) -> (u8, &[u8], &[u8]) {
        let tag = der[0];
        let (len, header) = match der[1] {
            n if n < 0x80 => (n as usize, 2),
            n => {
                let count = (n & 0x7f) as usize;
                let len = der[2..2 + count]
                    .iter()
                    .fold(0usize, |acc, b| (acc << 8) | *b as usize);
                (len, 2 + count)
            }
        };
        (tag, &der[header..header + len], &der[header + len..])
    }

    /// Unwraps PKCS#8 PrivateKeyInfo to the inner algorithm-specific key
    /// (PKCS#1 RSAPrivateKey for RSA).
    fn pkcs8_inner(pkcs8: &[u8]) -> Vec<u8> {
        let (tag, body, _) = der_tlv(pkcs8);
        assert_eq!(tag, 0x30);
        let (version, _, rest) = der_tlv(body);
        assert_eq!(version, 0x02);
        let (alg_id, _, rest) = der_tlv(rest);
        assert_eq!(alg_id, 0x30);
        let (octets, inner, _) = der_tlv(rest);
        assert_eq!(octets, 0x04);
        inner.to_vec()
    }

    fn pem_contents(path: &Path) -> Vec<u8> {
        pem::parse(fs::read(path).unwrap())
            .unwrap()
            .contents()
            .to_vec()
    }

    fn write_pem(path: &Path, blocks: &[pem::Pem]) {
        fs::write(path, pem::encode_many(blocks)).unwrap();
    }

    fn check_key(key: &SigningKey, alg: SigningAlg) {
        assert_eq!(key.alg(), alg);
        let jwk = key.public_jwk();
        assert_eq!(jwk["alg"], alg.as_str());
        assert_eq!(jwk["use"], "sig");
        assert_eq!(jwk["kid"], key.kid());
        assert_eq!(jwk_thumbprint(jwk).as_deref(), Some(key.kid()));
        let signature = key.sign(b"header.payload").unwrap();
        match alg {
            SigningAlg::RS256 => {
                assert_eq!(jwk["kty"], "RSA");
                assert_eq!(jwk["e"], "AQAB");
                let n = URL_SAFE_NO_PAD.decode(jwk["n"].as_str().unwrap()).unwrap();
                assert_eq!(n.len(), 256);
                assert_ne!(n[0], 0);
                assert_eq!(signature.len(), 256);
            }
            SigningAlg::ES256 => {
                assert_eq!(jwk["kty"], "EC");
                assert_eq!(jwk["crv"], "P-256");
                for coordinate in ["x", "y"] {
                    let bytes = URL_SAFE_NO_PAD
                        .decode(jwk[coordinate].as_str().unwrap())
                        .unwrap();
                    assert_eq!(bytes.len(), 32);
                }
                assert_eq!(signature.len(), 64);
            }
            SigningAlg::EdDSA => {
                assert_eq!(jwk["kty"], "OKP");
                assert_eq!(jwk["crv"], "Ed25519");
                assert!(jwk.get("y").is_none());
                assert_eq!(signature.len(), 64);
            }
        }
        // The signature verifies with the published public key.
        let ok = jsonwebtoken::crypto::verify(
            &URL_SAFE_NO_PAD.encode(&signature),
            b"header.payload",
            key.decoding_key(),
            alg.jwt_algorithm(),
        )
        .unwrap();
        assert!(ok);
    }

    #[test]
    fn generate_and_load_each_alg() {
        for alg in SigningAlg::ALL {
            let dir = tempfile::tempdir().unwrap();
            let path = generate_key_file(dir.path(), alg).unwrap();
            let name = path.file_name().unwrap().to_str().unwrap();
            assert!(
                name.ends_with(&format!("Z-{}.pem", alg.as_str().to_lowercase())),
                "{name}"
            );
            assert_eq!(name.len(), "20250101T000000.000000000Z-".len() + 5 + 4);
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt as _;
                let mode = fs::metadata(&path).unwrap().permissions().mode();
                assert_eq!(mode & 0o777, 0o600);
            }
            let text = fs::read_to_string(&path).unwrap();
            assert!(text.starts_with("-----BEGIN PRIVATE KEY-----\n"));

            let ring = KeyRing::load(dir.path()).unwrap();
            assert_eq!(ring.keys().len(), 1);
            let key = ring.signing_key();
            assert_eq!(key.path(), path);
            check_key(key, alg);
            assert_eq!(ring.algorithms(), vec![alg]);
            assert_eq!(ring.find(key.kid()).unwrap().path(), path);
            assert!(ring.find("nope").is_none());
            assert_eq!(ring.jwks()["keys"][0], *key.public_jwk());

            let again = KeyRing::load(dir.path()).unwrap();
            assert_eq!(again.signing_key().kid(), key.kid());
        }
    }

    #[test]
    fn load_or_create_creates_once() {
        let dir = tempfile::tempdir().unwrap();
        let keys_dir = dir.path().join("data").join("keys");
        let ring = KeyRing::load_or_create(&keys_dir, SigningAlg::EdDSA).unwrap();
        assert_eq!(ring.keys().len(), 1);
        assert_eq!(ring.signing_key().alg(), SigningAlg::EdDSA);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = fs::metadata(&keys_dir).unwrap().permissions().mode();
            assert_eq!(mode & 0o077, 0);
        }
        let again = KeyRing::load_or_create(&keys_dir, SigningAlg::ES256).unwrap();
        assert_eq!(again.keys().len(), 1);
        assert_eq!(again.signing_key().kid(), ring.signing_key().kid());
        assert_eq!(fs::read_dir(&keys_dir).unwrap().count(), 1);

        // An existing folder holding only other files also gets a key.
        let other = tempfile::tempdir().unwrap();
        fs::write(other.path().join("README.md"), "keys live here").unwrap();
        let ring = KeyRing::load_or_create(other.path(), SigningAlg::ES256).unwrap();
        assert_eq!(ring.keys().len(), 1);
        assert_eq!(fs::read_dir(other.path()).unwrap().count(), 2);
    }

    #[test]
    fn load_of_empty_or_missing_folder_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        assert!(matches!(
            KeyRing::load(dir.path()),
            Err(KeyError::NoKeys { .. })
        ));
        assert!(matches!(
            KeyRing::load(&dir.path().join("missing")),
            Err(KeyError::NoKeys { .. })
        ));
    }

    #[test]
    fn newest_by_mtime_signs_and_all_are_published() {
        let dir = tempfile::tempdir().unwrap();
        let a = generate_key_file(dir.path(), SigningAlg::ES256).unwrap();
        let b = generate_key_file(dir.path(), SigningAlg::EdDSA).unwrap();
        let c = generate_key_file(dir.path(), SigningAlg::ES256).unwrap();
        set_mtime(&a, 3_000);
        set_mtime(&b, 2_000);
        set_mtime(&c, 1_000);

        let ring = KeyRing::load(dir.path()).unwrap();
        let paths: Vec<&Path> = ring.keys().iter().map(SigningKey::path).collect();
        assert_eq!(paths, vec![a.as_path(), b.as_path(), c.as_path()]);
        assert_eq!(ring.signing_key().path(), a);
        assert_eq!(
            ring.signing_key().modified(),
            UNIX_EPOCH + Duration::from_secs(3_000)
        );
        assert_eq!(
            ring.algorithms(),
            vec![SigningAlg::ES256, SigningAlg::EdDSA]
        );
        let jwks = ring.jwks();
        let kids: Vec<&str> = jwks["keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k["kid"].as_str().unwrap())
            .collect();
        let expected: Vec<&str> = ring.keys().iter().map(SigningKey::kid).collect();
        assert_eq!(kids, expected);

        set_mtime(&c, 4_000);
        let ring = KeyRing::load(dir.path()).unwrap();
        assert_eq!(ring.signing_key().path(), c);
    }

    #[test]
    fn mtime_ties_go_to_the_greatest_file_name() {
        let dir = tempfile::tempdir().unwrap();
        let first = generate_key_file(dir.path(), SigningAlg::EdDSA).unwrap();
        let second = generate_key_file(dir.path(), SigningAlg::EdDSA).unwrap();
        assert!(second.file_name() > first.file_name());
        set_mtime(&first, 5_000);
        set_mtime(&second, 5_000);
        let ring = KeyRing::load(dir.path()).unwrap();
        assert_eq!(ring.signing_key().path(), second);
    }

    #[test]
    fn non_pem_files_are_ignored() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("README.md"), "# keys").unwrap();
        fs::write(dir.path().join(".gitignore"), "*.pem\n").unwrap();
        fs::write(dir.path().join("notes.pem.bak"), "garbage").unwrap();
        fs::create_dir(dir.path().join("old.pem")).unwrap();
        let path = generate_key_file(dir.path(), SigningAlg::ES256).unwrap();
        let ring = KeyRing::load(dir.path()).unwrap();
        assert_eq!(ring.keys().len(), 1);
        assert_eq!(ring.signing_key().path(), path);
    }

    #[test]
    fn garbage_pem_is_an_error_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        generate_key_file(dir.path(), SigningAlg::EdDSA).unwrap();
        let cases: Vec<(&str, Vec<u8>)> = vec![
            ("garbage.pem", b"this is not a key".to_vec()),
            (
                "badbase64.pem",
                b"-----BEGIN PRIVATE KEY-----\n!!!!\n-----END PRIVATE KEY-----\n".to_vec(),
            ),
            (
                "notakey.pem",
                pem::encode(&pem::Pem::new("PRIVATE KEY", vec![0x30, 0x03, 1, 2, 3])).into_bytes(),
            ),
            (
                "cert.pem",
                pem::encode(&pem::Pem::new("CERTIFICATE", vec![1, 2, 3])).into_bytes(),
            ),
            (
                "badrsa.pem",
                pem::encode(&pem::Pem::new("RSA PRIVATE KEY", vec![0xff; 40])).into_bytes(),
            ),
            (
                "badec.pem",
                pem::encode(&pem::Pem::new("EC PRIVATE KEY", vec![])).into_bytes(),
            ),
            (
                "encrypted.pem",
                pem::encode(&pem::Pem::new("ENCRYPTED PRIVATE KEY", vec![0x30, 0])).into_bytes(),
            ),
            ("binary.pem", vec![0xff, 0xfe, 0x00, 0x80]),
        ];
        for (name, contents) in cases {
            let path = dir.path().join(name);
            fs::write(&path, contents).unwrap();
            let err = KeyRing::load(dir.path()).unwrap_err();
            assert!(matches!(err, KeyError::InvalidKey { .. }), "{name}: {err}");
            assert!(err.to_string().contains(name), "{name}: {err}");
            // load_or_create must not paper over a broken key with a new one.
            let err = KeyRing::load_or_create(dir.path(), SigningAlg::EdDSA).unwrap_err();
            assert!(err.to_string().contains(name), "{err}");
            fs::remove_file(&path).unwrap();
        }
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn pkcs1_rsa_and_sec1_ec_pems_are_accepted() {
        let dir = tempfile::tempdir().unwrap();
        let rsa = generate_key_file(dir.path(), SigningAlg::RS256).unwrap();
        let ec = generate_key_file(dir.path(), SigningAlg::ES256).unwrap();
        let ring = KeyRing::load(dir.path()).unwrap();
        let kid_of = |path: &Path| {
            ring.keys()
                .iter()
                .find(|k| k.path() == path)
                .unwrap()
                .kid()
                .to_owned()
        };
        let (rsa_kid, ec_kid) = (kid_of(&rsa), kid_of(&ec));

        let other = tempfile::tempdir().unwrap();
        let pkcs1 = pkcs8_inner(&pem_contents(&rsa));
        write_pem(
            &other.path().join("legacy-rsa.pem"),
            &[pem::Pem::new("RSA PRIVATE KEY", pkcs1)],
        );
        let pair =
            EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &pem_contents(&ec)).unwrap();
        let sec1 = pair.private_key().as_der().unwrap();
        // `openssl ecparam -genkey` puts an EC PARAMETERS block first.
        let prime256v1_oid = vec![0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
        write_pem(
            &other.path().join("legacy-ec.pem"),
            &[
                pem::Pem::new("EC PARAMETERS", prime256v1_oid),
                pem::Pem::new("EC PRIVATE KEY", sec1.as_ref().to_vec()),
            ],
        );
        let legacy = KeyRing::load(other.path()).unwrap();
        assert_eq!(legacy.keys().len(), 2);
        let rsa_key = legacy.find(&rsa_kid).unwrap();
        check_key(rsa_key, SigningAlg::RS256);
        let ec_key = legacy.find(&ec_kid).unwrap();
        check_key(ec_key, SigningAlg::ES256);
    }

    #[test]
    fn duplicate_keys_are_published_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = generate_key_file(dir.path(), SigningAlg::EdDSA).unwrap();
        let copy = dir.path().join("copy.pem");
        fs::copy(&path, &copy).unwrap();
        set_mtime(&path, 1_000);
        set_mtime(&copy, 2_000);
        let ring = KeyRing::load(dir.path()).unwrap();
        assert_eq!(ring.keys().len(), 1);
        assert_eq!(ring.signing_key().path(), copy);
    }

    #[test]
    fn rfc7638_thumbprint_example() {
        // RFC 7638 section 3.1.
        let jwk = json!({
            "kty": "RSA",
            "n": "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw",
            "e": "AQAB",
            "alg": "RS256",
            "kid": "2011-04-29"
        });
        assert_eq!(
            jwk_thumbprint(&jwk).as_deref(),
            Some("NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs")
        );
        assert_eq!(jwk_thumbprint(&json!({"kty": "RSA", "e": "AQAB"})), None);
        assert_eq!(jwk_thumbprint(&json!({"kty": "XYZ"})), None);
    }

    #[test]
    fn thumbprint_matches_jsonwebtoken() {
        let dir = tempfile::tempdir().unwrap();
        generate_key_file(dir.path(), SigningAlg::ES256).unwrap();
        generate_key_file(dir.path(), SigningAlg::EdDSA).unwrap();
        let ring = KeyRing::load(dir.path()).unwrap();
        for key in ring.keys() {
            let jwk: jsonwebtoken::jwk::Jwk =
                serde_json::from_value(key.public_jwk().clone()).unwrap();
            let theirs = jwk
                .thumbprint(jsonwebtoken::jwk::ThumbprintHash::SHA256)
                .unwrap();
            assert_eq!(theirs, key.kid());
        }
    }

    #[test]
    fn alg_names() {
        for alg in SigningAlg::ALL {
            assert_eq!(alg.as_str().parse::<SigningAlg>(), Ok(alg));
            assert_eq!(alg.to_string(), alg.as_str());
            assert_eq!(serde_json::to_value(alg).unwrap(), alg.as_str());
            assert_eq!(
                serde_json::from_value::<SigningAlg>(Value::from(alg.as_str())).unwrap(),
                alg
            );
        }
        let err = "rs256".parse::<SigningAlg>().unwrap_err();
        assert!(err.contains("RS256") && err.contains("ES256") && err.contains("EdDSA"));
        assert!("HS256".parse::<SigningAlg>().is_err());
        assert!(serde_json::from_value::<SigningAlg>(Value::from("eddsa")).is_err());
    }

    #[test]
    fn utc_stamps() {
        assert_eq!(utc_stamp(Duration::ZERO), "19700101T000000.000000000Z");
        assert_eq!(
            utc_stamp(Duration::new(951_782_400 + 3_723, 5)),
            "20000229T010203.000000005Z"
        );
        assert_eq!(
            utc_stamp(Duration::new(1_704_067_199, 999_999_999)),
            "20231231T235959.999999999Z"
        );
        assert_eq!(civil_from_days(19_723), (2024, 1, 1));
    }

    #[test]
    fn keys_are_shareable_across_threads() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<SigningKey>();
        assert_send_sync::<KeyRing>();
    }
}
