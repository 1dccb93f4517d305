//! The update the NOTIFY figures are timed with: 100 delegations of the generated TLD changed
//! in one `knotc` transaction — 40 given new NS names, 30 added, 30 removed — taken from the
//! delegations without glue, spread over the zone, different ones in each round. The first
//! changed delegation is the one whose new referral is waited for.

use anyhow::{bail, Result};

use super::super::zone::ORIGIN;
use super::primary::Primary;

pub const CHANGED: usize = 40;
pub const ADDED: usize = 30;
pub const REMOVED: usize = 30;
/// Rounds with distinct delegations (one per secondary measured).
pub const ROUNDS: usize = 2;

/// One round's update.
pub struct Change {
    /// (delegation label, its new NS names).
    pub changed: Vec<(String, [String; 2])>,
    pub added: Vec<String>,
    pub removed: Vec<String>,
}

impl Change {
    /// Round `round`'s update of a zone with these delegation labels (odd indexes: no glue).
    pub fn plan(labels: &[String], round: usize) -> Result<Change> {
        let odd: Vec<&String> = labels.iter().skip(1).step_by(2).collect();
        let picks = CHANGED + REMOVED;
        let step = odd.len() / picks;
        if step < ROUNDS || round >= ROUNDS {
            bail!(
                "the update needs {} delegations without glue ({} rounds of {picks}); the zone has {}",
                picks * ROUNDS,
                ROUNDS,
                odd.len()
            );
        }
        let pick = |j: usize| odd[j * step + round].clone();
        let changed = (0..CHANGED)
            .map(|j| {
                let ns = |k: u8| format!("ns{k}.r{round}c{j}.changed.example");
                (pick(j), [ns(1), ns(2)])
            })
            .collect();
        let removed = (CHANGED..picks).map(pick).collect();
        let added = (0..ADDED).map(|j| format!("new-r{round}-{j}")).collect();
        Ok(Change {
            changed,
            added,
            removed,
        })
    }

    /// Delegations touched.
    pub fn len(&self) -> usize {
        self.changed.len() + self.added.len() + self.removed.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The delegation whose new referral is waited for: its query name and new NS names.
    pub fn probe(&self) -> (String, &[String; 2]) {
        let (label, ns) = &self.changed[0];
        (format!("{label}.{ORIGIN}"), ns)
    }

    /// Opens a transaction on `primary` and stages the update (the commit is the caller's, to
    /// time it); aborts the transaction when a step fails.
    pub fn stage(&self, primary: &Primary) -> Result<()> {
        primary.ctl(&["zone-begin", ORIGIN])?;
        let r = self.stage_in(primary);
        if r.is_err() {
            let _ = primary.ctl(&["zone-abort", ORIGIN]);
        }
        r
    }

    fn stage_in(&self, primary: &Primary) -> Result<()> {
        let set = |owner: &str, ns: &str| {
            primary.ctl(&["zone-set", ORIGIN, owner, "172800", "NS", &format!("{ns}.")])
        };
        for (label, ns) in &self.changed {
            primary.ctl(&["zone-unset", ORIGIN, label, "NS"])?;
            for n in ns {
                set(label, n)?;
            }
        }
        for (j, label) in self.added.iter().enumerate() {
            for k in [1, 2] {
                set(label, &format!("ns{k}.dns{j}.hosting.example"))?;
            }
        }
        for label in &self.removed {
            primary.ctl(&["zone-unset", ORIGIN, label])?;
        }
        Ok(())
    }
}
