//! The map writes of an incremental publication, in the order that keeps every query on the
//! old answers or the new ones, and their undo.
//!
//! A query reads, in this order: the longest suffix entry of its name in `SUFFIXES` (one LPM
//! lookup per DO value; each sees the trie before or after any one write), then — only when
//! that entry is the name's own — the name's exact and NODATA entries in `ANSWERS` under the
//! epoch the suffix entry carries, then the template the chosen entry names. The writes go:
//! 1. templates: new bodies get new ids (a template id never changes its body), cached first;
//! 2. exact and NODATA entries of names whose set changed, under a new epoch, and of new
//!    names: unreachable until step 4 or 3 switches their name's suffix entry;
//! 3. suffix entries of new names, deepest first;
//! 4. suffix entries that change (template or epoch), each switch one atomic update;
//! 5. suffix entries of names that are gone, shallowest first;
//! 6. the exact and NODATA entries of the old epochs and of gone names;
//! 7. templates no entry refers to any more are retired: they leave the cache at the start of
//!    the next publication (`XdpServer::flush_retired`), when no query can still be reading one.
//!
//! Why no query mixes: let L be the longest suffix entry a query finds. While step 3 runs, L
//! is either the old longest (its old value) or a new entry, and then the new longest: any
//! new entry deeper on the query's name was inserted before it. While step 4 runs, every old
//! and new entry is present, so L is the old longest and the new one alike, with its old or
//! its new value. While step 5 runs, L is the new longest, or an old entry not yet deleted,
//! and then the old longest: any old entry deeper was deleted after it. So L with its value
//! is wholly old or wholly new. The exact and NODATA keys it leads to carry its epoch: all of
//! them are present with that version's values from step 2 to step 6, and the lookups depend
//! on the epoch read from L (the key includes it), so they see what was written before L was.
//! The template id is likewise read from the entry, and a template stays in the cache at least
//! until the next publication after the last entry naming it is gone; a template the LRU
//! evicted is a miss, and a miss passes the query to userspace. Any query therefore gets the old version's XDP
//! answer, the new version's, or goes to userspace.
//!
//! Writes fail only for want of room (map full, no memory); the writes done are then undone in
//! reverse order, which passes through the same states backwards.

use anyhow::{Context as _, Result};
use dns_common::{AnswerKey, AnswerRef};

use super::compile::SuffixKey;
use super::xdp::XdpServer;

/// Map writes of an incremental publication, counted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Touched {
    /// `ANSWERS` entries inserted (new epochs and new names) and deleted.
    pub exact_inserted: usize,
    pub exact_deleted: usize,
    /// `SUFFIXES` entries inserted, switched to a new value, and deleted.
    pub suffix_inserted: usize,
    pub suffix_changed: usize,
    pub suffix_deleted: usize,
    /// Templates put into the cache and retired.
    pub templates_added: usize,
    pub templates_retired: usize,
}

impl Touched {
    /// Index entries written (inserted, switched or deleted).
    pub fn index_writes(&self) -> usize {
        self.exact_inserted
            + self.exact_deleted
            + self.suffix_inserted
            + self.suffix_changed
            + self.suffix_deleted
    }

    /// Every map write, templates included.
    pub fn writes(&self) -> usize {
        self.index_writes() + self.templates_added + self.templates_retired
    }
}

/// One index write: the entry's value before (`None`: absent) and after (`None`: removed).
#[derive(Clone, Debug)]
pub enum Write {
    Exact {
        key: Box<AnswerKey>,
        old: Option<AnswerRef>,
        new: Option<AnswerRef>,
    },
    Suffix {
        key: SuffixKey,
        /// Labels of the entry's name (the order of steps 3 and 5).
        depth: usize,
        old: Option<AnswerRef>,
        new: Option<AnswerRef>,
    },
}

impl Write {
    /// The step (see the module doc) this write belongs to.
    fn step(&self) -> u8 {
        match self {
            Write::Exact { new: Some(_), .. } => 2,
            Write::Suffix {
                old: None,
                new: Some(_),
                ..
            } => 3,
            Write::Suffix {
                old: Some(_),
                new: Some(_),
                ..
            } => 4,
            Write::Suffix { new: None, .. } => 5,
            Write::Exact { new: None, .. } => 6,
        }
    }

    /// Within a step: deepest first for insertions, shallowest first for deletions.
    fn order(&self) -> (u8, isize) {
        match self {
            Write::Suffix { depth, .. } if self.step() == 3 => (3, -(*depth as isize)),
            Write::Suffix { depth, .. } => (self.step(), *depth as isize),
            _ => (self.step(), 0),
        }
    }

    /// The value it replaces or removes, whose template reference goes once it is done.
    pub fn before(&self) -> Option<&AnswerRef> {
        match self {
            Write::Exact { old, .. } | Write::Suffix { old, .. } => old.as_ref(),
        }
    }

    /// The value it writes.
    pub fn after(&self) -> Option<&AnswerRef> {
        match self {
            Write::Exact { new, .. } | Write::Suffix { new, .. } => new.as_ref(),
        }
    }
}

fn put_exact(x: &mut XdpServer, k: &AnswerKey, v: Option<&AnswerRef>) -> Result<()> {
    match v {
        Some(v) => x.answers.insert(k, *v),
        None => x
            .answers
            .remove(k)
            .map(|_| ())
            .context("removing from the XDP answer index"),
    }
}

fn put_suffix(x: &mut XdpServer, k: &SuffixKey, v: Option<&AnswerRef>) -> Result<()> {
    match v {
        Some(v) => x.suffixes.insert(k, *v),
        None => x
            .suffixes
            .remove(k)
            .map(|_| ())
            .context("removing from the XDP suffix index"),
    }
}

/// What the maps hold for an entry now: the exact key's value, or the suffix key's own value
/// (not that of a shorter match).
pub fn current(x: &XdpServer, w: &Write) -> Result<Option<AnswerRef>> {
    let found = match w {
        Write::Exact { key, .. } => x.answers.get(key),
        Write::Suffix { key, .. } => x.suffixes.get(key),
    };
    Ok(found.context("reading the XDP index")?.filter(|r| match w {
        Write::Suffix { key, .. } => r.anchor_len as usize + 1 == key.prefix.len(),
        Write::Exact { .. } => true,
    }))
}

fn apply_one(x: &mut XdpServer, w: &Write, forward: bool) -> Result<()> {
    let v = if forward { w.after() } else { w.before() };
    match w {
        Write::Exact { key, .. } => put_exact(x, key, v),
        Write::Suffix { key, .. } => put_suffix(x, key, v),
    }
}

/// Puts the writes in the order of the module doc.
pub fn order(writes: &mut [Write]) {
    writes.sort_by_key(|w| w.order());
}

/// Applies ordered writes, calling `observe` after each; on an error (of a write, or returned
/// by `observe`) undoes the ones done (in reverse) and returns it.
pub fn apply(
    x: &mut XdpServer,
    writes: &[Write],
    touched: &mut Touched,
    observe: &mut dyn FnMut(&mut XdpServer) -> Result<()>,
) -> Result<()> {
    for (i, w) in writes.iter().enumerate() {
        let mut done = i;
        let step = apply_one(x, w, true).and_then(|()| {
            done = i + 1;
            observe(x)
        });
        if let Err(e) = step {
            for w in writes[..done].iter().rev() {
                if let Err(u) = apply_one(x, w, false) {
                    log::error!("undoing an XDP update: {u:#}");
                }
            }
            return Err(e);
        }
        match (w, w.before().is_some(), w.after().is_some()) {
            (Write::Exact { .. }, _, true) => touched.exact_inserted += 1,
            (Write::Exact { .. }, _, false) => touched.exact_deleted += 1,
            (Write::Suffix { .. }, false, _) => touched.suffix_inserted += 1,
            (Write::Suffix { .. }, true, true) => touched.suffix_changed += 1,
            (Write::Suffix { .. }, true, false) => touched.suffix_deleted += 1,
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(t: u32) -> Option<AnswerRef> {
        Some(AnswerRef {
            kind: 0,
            anchor_len: 0,
            template: t,
        })
    }

    fn suffix(depth: usize, old: Option<AnswerRef>, new: Option<AnswerRef>) -> Write {
        Write::Suffix {
            key: SuffixKey {
                bits: 8,
                prefix: vec![depth as u8].into(),
            },
            depth,
            old,
            new,
        }
    }

    fn exact(old: Option<AnswerRef>, new: Option<AnswerRef>) -> Write {
        Write::Exact {
            key: Box::new(AnswerKey::zeroed()),
            old,
            new,
        }
    }

    #[test]
    fn writes_go_in_the_order_that_keeps_queries_on_one_version() {
        let mut w = vec![
            exact(r(1), None),
            suffix(2, r(1), None),
            suffix(4, r(1), None),
            suffix(3, r(1), r(2)),
            suffix(2, None, r(2)),
            suffix(5, None, r(2)),
            exact(None, r(2)),
        ];
        order(&mut w);
        let got: Vec<(u8, Option<usize>)> = w
            .iter()
            .map(|w| match w {
                Write::Suffix { depth, .. } => (w.step(), Some(*depth)),
                Write::Exact { .. } => (w.step(), None),
            })
            .collect();
        assert_eq!(
            got,
            [
                (2, None),
                (3, Some(5)),
                (3, Some(2)),
                (4, Some(3)),
                (5, Some(2)),
                (5, Some(4)),
                (6, None)
            ]
        );
    }
}
