//! The NSEC3 chain of a zone (RFC 5155): hashing names with the zone's NSEC3PARAM, and finding
//! the NSEC3 record that matches or covers a hash. NSEC3 records live here, not among the
//! zone's nodes, so that their owner names never answer queries (RFC 5155 §7.2.8).

use sha1::{Digest, Sha1};

use super::RRset;
use crate::wire::name::Name;

/// The NSEC3 records of a zone, ordered by hash (a persistent map: versions of a zone share it).
#[derive(Clone, Debug, Default)]
pub struct Nsec3Chain {
    pub algorithm: u8,
    pub iterations: u16,
    pub salt: Vec<u8>,
    /// Raw hash → (owner name, NSEC3 RRset with its RRSIGs).
    entries: imbl::OrdMap<Vec<u8>, (Name, RRset)>,
    /// The raw hashes in order, made on first use by the index lookups (the XDP compiler's)
    /// and dropped by every change.
    order: std::sync::OnceLock<Vec<Vec<u8>>>,
}

/// Chains are equal when they hold the same records (where they came from in the source aside).
impl PartialEq for Nsec3Chain {
    fn eq(&self, other: &Nsec3Chain) -> bool {
        let same = |a: (&Vec<u8>, &(Name, RRset)), b: (&Vec<u8>, &(Name, RRset))| {
            let ((ha, (na, sa)), (hb, (nb, sb))) = (a, b);
            ha == hb
                && na == nb
                && (sa.ttl, &sa.rdatas, &sa.sigs, sa.sig_ttl)
                    == (sb.ttl, &sb.rdatas, &sb.sigs, sb.sig_ttl)
        };
        (self.algorithm, self.iterations, &self.salt)
            == (other.algorithm, other.iterations, &other.salt)
            && self.entries.len() == other.entries.len()
            && self
                .entries
                .iter()
                .zip(other.entries.iter())
                .all(|(a, b)| same(a, b))
    }
}

impl Eq for Nsec3Chain {}

/// NSEC3PARAM RDATA: algorithm, flags, iterations, salt.
pub fn parse_param(rdata: &[u8]) -> Option<(u8, u16, Vec<u8>)> {
    let alg = *rdata.first()?;
    let iterations = u16::from_be_bytes([*rdata.get(2)?, *rdata.get(3)?]);
    let salt_len = *rdata.get(4)? as usize;
    let salt = rdata.get(5..5 + salt_len)?.to_vec();
    Some((alg, iterations, salt))
}

/// The hash of `name` (RFC 5155 §5), SHA-1 (algorithm 1) only.
pub fn hash(name: &Name, iterations: u16, salt: &[u8]) -> Vec<u8> {
    let mut h = Sha1::new();
    h.update(name.lower_wire());
    h.update(salt);
    let mut digest = h.finalize();
    for _ in 0..iterations {
        let mut h = Sha1::new();
        h.update(digest);
        h.update(salt);
        digest = h.finalize();
    }
    digest.to_vec()
}

impl Nsec3Chain {
    /// A chain for the given parameters; records whose parameters differ are ignored.
    pub fn new(algorithm: u8, iterations: u16, salt: Vec<u8>) -> Nsec3Chain {
        Nsec3Chain {
            algorithm,
            iterations,
            salt,
            entries: imbl::OrdMap::new(),
            order: std::sync::OnceLock::new(),
        }
    }

    /// Whether an NSEC3 RDATA uses this chain's parameters.
    pub fn same_params(&self, rdata: &[u8]) -> bool {
        match parse_param(rdata) {
            Some((alg, it, salt)) => {
                alg == self.algorithm && it == self.iterations && salt == self.salt
            }
            None => false,
        }
    }

    /// Adds an NSEC3 RRset owned by `owner` (`<base32hex hash>.<apex>`).
    pub fn insert(&mut self, owner: Name, set: RRset) -> Result<(), String> {
        let hash = owner_hash(&owner)?;
        self.order = std::sync::OnceLock::new();
        self.entries.insert(hash, (owner, set));
        Ok(())
    }

    /// Ends a series of `insert`s (the map keeps itself ordered: nothing to do).
    pub fn finish(&mut self) {}

    /// The entry of the NSEC3 owner `owner`, for a change to it.
    pub(crate) fn entry_mut(&mut self, owner: &Name) -> Option<&mut RRset> {
        let hash = owner_hash(owner).ok()?;
        self.order = std::sync::OnceLock::new();
        self.entries.get_mut(&hash).map(|(_, set)| set)
    }

    /// Removes the entry of the NSEC3 owner `owner`.
    pub(crate) fn remove(&mut self, owner: &Name) -> Option<RRset> {
        let hash = owner_hash(owner).ok()?;
        self.order = std::sync::OnceLock::new();
        self.entries.remove(&hash).map(|(_, set)| set)
    }

    /// Every entry, in hash order.
    pub fn iter(&self) -> impl Iterator<Item = (&Name, &RRset)> {
        self.entries.values().map(|(n, s)| (n, s))
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn hash(&self, name: &Name) -> Vec<u8> {
        hash(name, self.iterations, &self.salt)
    }

    /// The NSEC3 whose owner hash equals the hash of `name`.
    pub fn matching(&self, name: &Name) -> Option<(&Name, &RRset)> {
        let h = self.hash(name);
        self.entries.get(&h).map(|(n, s)| (n, s))
    }

    /// The NSEC3 that covers the hash of `name`: the last owner hash below it, wrapping around.
    pub fn covering(&self, name: &Name) -> Option<(&Name, &RRset)> {
        let h = self.hash(name);
        self.entries
            .get_prev(&h)
            .or_else(|| self.entries.get_max().map(|(k, v)| (k, v)))
            .map(|(_, (n, s))| (n, s))
    }

    /// The raw hashes in hash order.
    fn order(&self) -> &[Vec<u8>] {
        self.order
            .get_or_init(|| self.entries.keys().cloned().collect())
    }

    /// Index (in hash order) of the NSEC3 `matching` returns.
    pub fn matching_index(&self, name: &Name) -> Option<usize> {
        let h = self.hash(name);
        self.order().binary_search_by(|e| e.as_slice().cmp(&h)).ok()
    }

    /// Index (in hash order) of the NSEC3 `covering` returns.
    pub fn covering_index(&self, name: &Name) -> Option<usize> {
        if self.entries.is_empty() {
            return None;
        }
        Some(self.covering_hash(&self.hash(name)))
    }

    /// Index of the NSEC3 covering the hash `h` (an exact match included).
    pub fn covering_hash(&self, h: &[u8]) -> usize {
        let order = self.order();
        match order.binary_search_by(|e| e.as_slice().cmp(h)) {
            Ok(i) => i,
            Err(0) => order.len() - 1,
            Err(i) => i - 1,
        }
    }

    /// The records in hash order: (raw hash, owner, NSEC3 RRset with its RRSIGs).
    pub fn entries(&self) -> impl Iterator<Item = (&[u8], &Name, &RRset)> {
        self.entries.iter().map(|(h, (n, s))| (h.as_slice(), n, s))
    }
}

/// The raw hash an NSEC3 owner name (`<base32hex hash>.<apex>`) stands for.
pub(crate) fn owner_hash(owner: &Name) -> Result<Vec<u8>, String> {
    let label = owner.labels().next().ok_or("NSEC3 at the root")?;
    data_encoding::BASE32HEX_NOPAD
        .decode(&label.to_ascii_uppercase())
        .map_err(|_| format!("NSEC3 owner {owner} is not a base32hex hash"))
}
