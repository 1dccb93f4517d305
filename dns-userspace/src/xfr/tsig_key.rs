//! TSIG keys (RFC 8945 §6): the HMAC algorithms, `[[key]]` configuration entries (name,
//! algorithm, base64 secret) and the running MAC computation over them.

use data_encoding::BASE64;
use hmac::{Hmac, Mac};
use serde::Deserialize;
use sha1::Sha1;
use sha2::{Sha256, Sha384, Sha512};

use crate::wire::name::Name;

/// The HMAC algorithms (RFC 8945 §6).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Algorithm {
    HmacSha1,
    HmacSha256,
    HmacSha384,
    HmacSha512,
}

const ALGORITHMS: [(Algorithm, &str); 4] = [
    (Algorithm::HmacSha1, "hmac-sha1"),
    (Algorithm::HmacSha256, "hmac-sha256"),
    (Algorithm::HmacSha384, "hmac-sha384"),
    (Algorithm::HmacSha512, "hmac-sha512"),
];

impl Algorithm {
    /// From the configuration mnemonic or the algorithm name, with or without the final dot.
    pub fn from_name(s: &str) -> Option<Algorithm> {
        let s = s.strip_suffix('.').unwrap_or(s);
        ALGORITHMS
            .iter()
            .find(|(_, n)| n.eq_ignore_ascii_case(s))
            .map(|(a, _)| *a)
    }

    pub fn mnemonic(self) -> &'static str {
        ALGORITHMS
            .iter()
            .find(|(a, _)| *a == self)
            .expect("listed")
            .1
    }

    /// The algorithm name as a domain name (`hmac-sha256.`).
    pub fn name(self) -> Name {
        Name::from_labels([self.mnemonic().as_bytes()]).expect("valid label")
    }

    /// MAC length in octets.
    pub fn output_len(self) -> usize {
        match self {
            Algorithm::HmacSha1 => 20,
            Algorithm::HmacSha256 => 32,
            Algorithm::HmacSha384 => 48,
            Algorithm::HmacSha512 => 64,
        }
    }
}

/// One `[[key]]` entry of the configuration.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct KeyConfig {
    /// The key name; `id` as in Knot's configuration works too.
    #[serde(alias = "id")]
    pub name: String,
    pub algorithm: String,
    /// Base64 (RFC 4648, padded), as `tsig-keygen`, `keymgr -t` and `knotc` print it.
    pub secret: String,
}

/// A TSIG key.
#[derive(Clone, PartialEq, Eq)]
pub struct Key {
    pub name: Name,
    pub algorithm: Algorithm,
    secret: Vec<u8>,
}

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Key({} {})", self.name, self.algorithm.mnemonic())
    }
}

impl Key {
    pub fn new(name: Name, algorithm: Algorithm, secret: Vec<u8>) -> Key {
        Key {
            name,
            algorithm,
            secret,
        }
    }

    /// From a configuration entry; errors name the key and what is wrong.
    pub fn from_config(c: &KeyConfig) -> anyhow::Result<Key> {
        let fq = if c.name.ends_with('.') {
            c.name.clone()
        } else {
            format!("{}.", c.name)
        };
        let name =
            Name::parse(&fq, None).map_err(|e| anyhow::anyhow!("key name {:?}: {e}", c.name))?;
        let algorithm = Algorithm::from_name(&c.algorithm).ok_or_else(|| {
            anyhow::anyhow!(
                "key {name}: unsupported algorithm {:?} (hmac-sha1, hmac-sha256, hmac-sha384, hmac-sha512)",
                c.algorithm
            )
        })?;
        let secret = BASE64
            .decode(c.secret.trim().as_bytes())
            .map_err(|e| anyhow::anyhow!("key {name}: secret is not base64: {e}"))?;
        if secret.is_empty() {
            anyhow::bail!("key {name}: empty secret");
        }
        Ok(Key::new(name, algorithm, secret))
    }

    pub(crate) fn hmac(&self) -> Hm {
        Hm::new(self.algorithm, &self.secret)
    }
}

/// A running HMAC of one of the algorithms.
pub(crate) enum Hm {
    S1(Hmac<Sha1>),
    S256(Hmac<Sha256>),
    S384(Hmac<Sha384>),
    S512(Hmac<Sha512>),
}

macro_rules! each {
    ($self:expr, $m:ident => $e:expr) => {
        match $self {
            Hm::S1($m) => $e,
            Hm::S256($m) => $e,
            Hm::S384($m) => $e,
            Hm::S512($m) => $e,
        }
    };
}

impl Hm {
    pub(crate) fn new(alg: Algorithm, secret: &[u8]) -> Hm {
        // HMAC takes keys of any length.
        let e = "any key length";
        match alg {
            Algorithm::HmacSha1 => Hm::S1(Mac::new_from_slice(secret).expect(e)),
            Algorithm::HmacSha256 => Hm::S256(Mac::new_from_slice(secret).expect(e)),
            Algorithm::HmacSha384 => Hm::S384(Mac::new_from_slice(secret).expect(e)),
            Algorithm::HmacSha512 => Hm::S512(Mac::new_from_slice(secret).expect(e)),
        }
    }

    pub(crate) fn update(&mut self, data: &[u8]) {
        each!(self, m => m.update(data))
    }

    pub(crate) fn finalize(self) -> Vec<u8> {
        each!(self, m => m.finalize().into_bytes().to_vec())
    }

    /// Constant-time comparison of the leading octets (truncated MACs, §5.2.2.1).
    pub(crate) fn verify(self, tag: &[u8]) -> bool {
        each!(self, m => m.verify_truncated_left(tag).is_ok())
    }

    /// Feeds `len ‖ mac` (a request's or prior message's MAC).
    pub(crate) fn update_mac(&mut self, mac: &[u8]) {
        self.update(&(mac.len() as u16).to_be_bytes());
        self.update(mac);
    }

    /// Feeds a message as it was before `tsig_at` was added: ID restored, ARCOUNT one less.
    pub(crate) fn update_stripped(&mut self, wire: &[u8], tsig_at: usize, original_id: u16) {
        let mut head = [0u8; 12];
        head.copy_from_slice(&wire[..12]);
        head[..2].copy_from_slice(&original_id.to_be_bytes());
        let ar = u16::from_be_bytes([head[10], head[11]]).wrapping_sub(1);
        head[10..].copy_from_slice(&ar.to_be_bytes());
        self.update(&head);
        self.update(&wire[12..tsig_at]);
    }
}
