//! Domain names (RFC 1035 §3.1) in uncompressed wire form, compared case-insensitively
//! (RFC 4343) and ordered canonically (RFC 4034 §6.1).

use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};

use thiserror::Error;

/// Longest name in wire form.
pub const NAME_MAX: usize = 255;

/// Why a name is not valid.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum NameError {
    #[error("name longer than 255 octets")]
    TooLong,
    #[error("label longer than 63 octets")]
    LabelTooLong,
    #[error("empty label")]
    EmptyLabel,
    #[error("bad escape sequence")]
    BadEscape,
    #[error("relative name without an origin")]
    NoOrigin,
    #[error("malformed wire name")]
    BadWire,
}

/// A fully qualified domain name, kept in wire form with its original letter case.
#[derive(Clone)]
pub struct Name {
    wire: Vec<u8>,
}

impl Name {
    /// The root name `.`.
    pub fn root() -> Name {
        Name { wire: vec![0] }
    }

    /// From uncompressed wire form; checks label and name lengths.
    pub fn from_wire(wire: &[u8]) -> Result<Name, NameError> {
        let mut pos = 0;
        loop {
            let len = *wire.get(pos).ok_or(NameError::BadWire)? as usize;
            if len > 63 {
                return Err(NameError::BadWire);
            }
            pos += len + 1;
            if pos > NAME_MAX {
                return Err(NameError::TooLong);
            }
            if len == 0 {
                break;
            }
        }
        if pos != wire.len() {
            return Err(NameError::BadWire);
        }
        Ok(Name {
            wire: wire.to_vec(),
        })
    }

    /// From a sequence of labels (without the root label).
    pub fn from_labels<'a>(labels: impl IntoIterator<Item = &'a [u8]>) -> Result<Name, NameError> {
        let mut wire = Vec::new();
        for l in labels {
            if l.is_empty() {
                return Err(NameError::EmptyLabel);
            }
            if l.len() > 63 {
                return Err(NameError::LabelTooLong);
            }
            wire.push(l.len() as u8);
            wire.extend_from_slice(l);
        }
        wire.push(0);
        if wire.len() > NAME_MAX {
            return Err(NameError::TooLong);
        }
        Ok(Name { wire })
    }

    /// Parses presentation format (RFC 1035 §5.1): `\X` and `\DDD` escapes; `@` is the origin;
    /// a name without a trailing dot is relative to `origin`.
    pub fn parse(text: &str, origin: Option<&Name>) -> Result<Name, NameError> {
        if text == "@" {
            return origin.cloned().ok_or(NameError::NoOrigin);
        }
        if text == "." {
            return Ok(Name::root());
        }
        let bytes = text.as_bytes();
        let mut labels: Vec<Vec<u8>> = vec![Vec::new()];
        let mut absolute = false;
        let mut i = 0;
        while i < bytes.len() {
            let c = bytes[i];
            match c {
                b'\\' => {
                    let rest = &bytes[i + 1..];
                    if rest.len() >= 3 && rest[..3].iter().all(u8::is_ascii_digit) {
                        let v = (rest[0] - b'0') as u32 * 100
                            + (rest[1] - b'0') as u32 * 10
                            + (rest[2] - b'0') as u32;
                        if v > 255 {
                            return Err(NameError::BadEscape);
                        }
                        labels.last_mut().unwrap().push(v as u8);
                        i += 4;
                    } else if let Some(&x) = rest.first() {
                        labels.last_mut().unwrap().push(x);
                        i += 2;
                    } else {
                        return Err(NameError::BadEscape);
                    }
                }
                b'.' => {
                    if labels.last().unwrap().is_empty() {
                        return Err(NameError::EmptyLabel);
                    }
                    if i == bytes.len() - 1 {
                        absolute = true;
                    } else {
                        labels.push(Vec::new());
                    }
                    i += 1;
                }
                _ => {
                    labels.last_mut().unwrap().push(c);
                    i += 1;
                }
            }
        }
        if labels.last().unwrap().is_empty() {
            return Err(NameError::EmptyLabel);
        }
        let mut wire = Vec::new();
        for l in &labels {
            if l.len() > 63 {
                return Err(NameError::LabelTooLong);
            }
            wire.push(l.len() as u8);
            wire.extend_from_slice(l);
        }
        if absolute {
            wire.push(0);
        } else {
            let origin = origin.ok_or(NameError::NoOrigin)?;
            wire.extend_from_slice(&origin.wire);
        }
        if wire.len() > NAME_MAX {
            return Err(NameError::TooLong);
        }
        Ok(Name { wire })
    }

    /// Wire form, original case.
    pub fn wire(&self) -> &[u8] {
        &self.wire
    }

    /// Wire form, ASCII lower-cased (the canonical form of RFC 4034 §6.2).
    pub fn lower_wire(&self) -> Vec<u8> {
        self.wire.to_ascii_lowercase()
    }

    pub fn is_root(&self) -> bool {
        self.wire.len() == 1
    }

    /// Labels from the leftmost, without the root label.
    pub fn labels(&self) -> Labels<'_> {
        Labels {
            wire: &self.wire,
            pos: 0,
        }
    }

    pub fn label_count(&self) -> usize {
        self.labels().count()
    }

    /// The name with its leftmost label removed; `None` for the root.
    pub fn parent(&self) -> Option<Name> {
        if self.is_root() {
            return None;
        }
        let skip = self.wire[0] as usize + 1;
        Some(Name {
            wire: self.wire[skip..].to_vec(),
        })
    }

    /// The last `n` labels of this name (n ≤ label count).
    pub fn suffix(&self, n: usize) -> Name {
        Name {
            wire: self.suffix_ref(n).0.to_vec(),
        }
    }

    /// The last `n` labels of this name, borrowed (n ≤ label count).
    pub fn suffix_ref(&self, n: usize) -> &NameRef {
        let drop = self.label_count().saturating_sub(n);
        let mut pos = 0;
        for _ in 0..drop {
            pos += self.wire[pos] as usize + 1;
        }
        NameRef::new(&self.wire[pos..])
    }

    /// This name and its ancestors up to the root, borrowed, longest first.
    pub fn ancestors(&self) -> impl Iterator<Item = &NameRef> {
        let mut pos = Some(0);
        std::iter::from_fn(move || {
            let at = pos?;
            let len = self.wire[at] as usize;
            pos = (len != 0).then_some(at + len + 1);
            Some(NameRef::new(&self.wire[at..]))
        })
    }

    pub fn as_name_ref(&self) -> &NameRef {
        NameRef::new(&self.wire)
    }

    /// True when this name equals `other` or lies below it.
    pub fn is_subdomain_of(&self, other: &Name) -> bool {
        let n = self.wire.len();
        let m = other.wire.len();
        if m > n {
            return false;
        }
        // The suffix must start at a label boundary.
        let mut pos = 0;
        while pos < n - m {
            pos += self.wire[pos] as usize + 1;
        }
        pos == n - m && self.wire[pos..].eq_ignore_ascii_case(&other.wire)
    }

    /// `label.self`.
    pub fn prepend(&self, label: &[u8]) -> Result<Name, NameError> {
        if label.is_empty() {
            return Err(NameError::EmptyLabel);
        }
        if label.len() > 63 {
            return Err(NameError::LabelTooLong);
        }
        let mut wire = Vec::with_capacity(self.wire.len() + label.len() + 1);
        wire.push(label.len() as u8);
        wire.extend_from_slice(label);
        wire.extend_from_slice(&self.wire);
        if wire.len() > NAME_MAX {
            return Err(NameError::TooLong);
        }
        Ok(Name { wire })
    }

    /// `*.self`.
    pub fn wildcard(&self) -> Result<Name, NameError> {
        self.prepend(b"*")
    }

    pub fn is_wildcard(&self) -> bool {
        self.wire.len() > 2 && self.wire[0] == 1 && self.wire[1] == b'*'
    }

    /// Replaces the suffix `old` (which this name must be below) with `new` (DNAME, RFC 6672).
    pub fn replace_suffix(&self, old: &Name, new: &Name) -> Result<Name, NameError> {
        let keep = self.wire.len() - old.wire.len();
        let mut wire = self.wire[..keep].to_vec();
        wire.extend_from_slice(&new.wire);
        if wire.len() > NAME_MAX {
            return Err(NameError::TooLong);
        }
        Ok(Name { wire })
    }
}

/// Iterator over the labels of a name.
pub struct Labels<'a> {
    wire: &'a [u8],
    pos: usize,
}

impl<'a> Iterator for Labels<'a> {
    type Item = &'a [u8];
    fn next(&mut self) -> Option<&'a [u8]> {
        let len = *self.wire.get(self.pos)? as usize;
        if len == 0 {
            return None;
        }
        let l = &self.wire[self.pos + 1..self.pos + 1 + len];
        self.pos += len + 1;
        Some(l)
    }
}

/// A borrowed wire-form name (a suffix of a `Name`, say), hashed and compared like `Name`:
/// maps keyed by `Name` can be searched with it without allocating.
#[repr(transparent)]
pub struct NameRef([u8]);

impl NameRef {
    /// `wire` must be a valid uncompressed wire name (as slices of a `Name` are).
    pub fn new(wire: &[u8]) -> &NameRef {
        // SAFETY: NameRef is a transparent wrapper around [u8].
        unsafe { &*(wire as *const [u8] as *const NameRef) }
    }

    pub fn wire(&self) -> &[u8] {
        &self.0
    }

    pub fn to_name(&self) -> Name {
        Name {
            wire: self.0.to_vec(),
        }
    }
}

/// Hashes the lower-cased wire bytes, eight at a time (the hash of `Name` and `NameRef`
/// alike).
fn hash_wire<H: Hasher>(wire: &[u8], state: &mut H) {
    let mut chunks = wire.chunks_exact(8);
    for c in &mut chunks {
        state.write_u64(dns_common::ascii_lower8(u64::from_le_bytes(
            c.try_into().expect("8 bytes"),
        )));
    }
    let rest = chunks.remainder();
    let mut last = [0u8; 8];
    last[..rest.len()].copy_from_slice(rest);
    state.write_u64(dns_common::ascii_lower8(u64::from_le_bytes(last)) ^ rest.len() as u64);
}

impl std::borrow::Borrow<NameRef> for Name {
    fn borrow(&self) -> &NameRef {
        self.as_name_ref()
    }
}

impl PartialEq for NameRef {
    fn eq(&self, other: &NameRef) -> bool {
        self.0.eq_ignore_ascii_case(&other.0)
    }
}

impl Eq for NameRef {}

impl Hash for NameRef {
    fn hash<H: Hasher>(&self, state: &mut H) {
        hash_wire(&self.0, state);
    }
}

impl PartialEq for Name {
    fn eq(&self, other: &Name) -> bool {
        self.wire.eq_ignore_ascii_case(&other.wire)
    }
}

impl Eq for Name {}

impl Hash for Name {
    fn hash<H: Hasher>(&self, state: &mut H) {
        hash_wire(&self.wire, state);
    }
}

impl Ord for Name {
    /// Canonical DNS name order (RFC 4034 §6.1): compare labels right to left, each as
    /// lower-cased octet strings.
    fn cmp(&self, other: &Name) -> Ordering {
        let a: Vec<&[u8]> = self.labels().collect();
        let b: Vec<&[u8]> = other.labels().collect();
        for (x, y) in a.iter().rev().zip(b.iter().rev()) {
            let o = x
                .iter()
                .map(u8::to_ascii_lowercase)
                .cmp(y.iter().map(u8::to_ascii_lowercase));
            if o != Ordering::Equal {
                return o;
            }
        }
        a.len().cmp(&b.len())
    }
}

impl PartialOrd for Name {
    fn partial_cmp(&self, other: &Name) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_root() {
            return f.write_str(".");
        }
        for l in self.labels() {
            // Runs of plain octets in one write (zone snapshots write millions of names).
            let mut plain = 0;
            for (i, &c) in l.iter().enumerate() {
                let special = matches!(c, b'.' | b'\\' | b'"' | b'(' | b')' | b';' | b'@' | b'$');
                if (0x21..=0x7e).contains(&c) && !special {
                    continue;
                }
                f.write_str(std::str::from_utf8(&l[plain..i]).expect("ASCII"))?;
                if special {
                    write!(f, "\\{}", c as char)?;
                } else {
                    write!(f, "\\{:03}", c)?;
                }
                plain = i + 1;
            }
            f.write_str(std::str::from_utf8(&l[plain..]).expect("ASCII"))?;
            f.write_str(".")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Name({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn name_and_borrowed_suffixes_hash_and_compare_case_insensitively() {
        use std::hash::BuildHasher;
        let h = std::hash::RandomState::new();
        let a = Name::parse("WWW.Example-Long-Label.ORG.", None).unwrap();
        let b = Name::parse("www.example-long-label.org.", None).unwrap();
        assert_eq!(h.hash_one(&a), h.hash_one(&b));
        assert_eq!(h.hash_one(a.as_name_ref()), h.hash_one(&b));
        let sufs: Vec<String> = a
            .ancestors()
            .map(|r| r.to_name().to_string().to_lowercase())
            .collect();
        assert_eq!(
            sufs,
            [
                "www.example-long-label.org.",
                "example-long-label.org.",
                "org.",
                "."
            ]
        );
        let mut m = std::collections::HashMap::new();
        m.insert(b.parent().unwrap(), 1);
        assert_eq!(m.get(a.suffix_ref(2)), Some(&1));
        assert_ne!(h.hash_one(&a), h.hash_one(a.parent().unwrap()));
    }

    fn n(s: &str) -> Name {
        Name::parse(s, None).unwrap()
    }

    #[test]
    fn parse_and_display() {
        let o = n("example.");
        assert_eq!(Name::parse("www", Some(&o)).unwrap(), n("www.example."));
        assert_eq!(Name::parse("@", Some(&o)).unwrap(), o);
        assert_eq!(n("a\\.b.example.").label_count(), 2);
        assert_eq!(n("\\065.example.").to_string(), "A.example.");
        assert_eq!(n("a\\032b.").to_string(), "a\\032b.");
        assert_eq!(Name::parse("x", None), Err(NameError::NoOrigin));
        assert_eq!(Name::parse("a..b.", None), Err(NameError::EmptyLabel));
        let long = "a".repeat(64) + ".";
        assert_eq!(Name::parse(&long, None), Err(NameError::LabelTooLong));
    }

    #[test]
    fn case_insensitive_and_canonical_order() {
        assert_eq!(n("WWW.Example."), n("www.example."));
        let mut v = [
            n("z.example."),
            n("a.example."),
            n("example."),
            n("*.z.example."),
            n("\\200.z.example."),
            n("Z.a.example."),
            n("yljkjljk.a.example."),
        ];
        v.sort();
        let s: Vec<String> = v.iter().map(|x| x.to_string()).collect();
        assert_eq!(
            s,
            [
                "example.",
                "a.example.",
                "yljkjljk.a.example.",
                "Z.a.example.",
                "z.example.",
                "*.z.example.",
                "\\200.z.example."
            ]
        );
    }

    #[test]
    fn subdomains() {
        assert!(n("a.b.example.").is_subdomain_of(&n("B.example.")));
        assert!(n("example.").is_subdomain_of(&n("example.")));
        assert!(!n("aexample.").is_subdomain_of(&n("example.")));
        assert!(n("x.").is_subdomain_of(&Name::root()));
        assert_eq!(n("a.b.c.").suffix(2), n("b.c."));
    }
}
