//! The NSEC label map of a loaded program (`NSEC_LABELS`): writing the NSEC zones' labels of
//! a generation into the half of the array its slots name, so that the generation serving
//! keeps its own until the switch, and giving each zone's base for its `Nsec3Zone::labels`.

use std::collections::HashMap;

use anyhow::{bail, Context as _, Result};
use aya::maps::{Array, MapData};
use aya::Ebpf;
use dns_common::{maps, NsecLabel};

use super::nsec3::{ZoneNsec3, HALF_SLOTS};

pub struct NsecLabels {
    labels: Array<MapData, NsecLabel>,
    /// Entries (both halves).
    capacity: u32,
}

impl NsecLabels {
    pub fn take(ebpf: &mut Ebpf, capacity: u32) -> Result<NsecLabels> {
        Ok(NsecLabels {
            labels: super::xdp::take(ebpf, maps::NSEC_LABELS)?,
            capacity,
        })
    }

    /// The labels of a program opened from its pins (`adopt`), with their map's size.
    pub fn new(labels: Array<MapData, NsecLabel>, capacity: u32) -> NsecLabels {
        NsecLabels { labels, capacity }
    }

    pub fn capacity(&self) -> u32 {
        self.capacity
    }

    /// Writes the labels of `zones` (all in one half of the slots); returns each zone's base
    /// by slot, for its `Nsec3Zone` written after.
    pub fn write(&mut self, zones: &[ZoneNsec3]) -> Result<HashMap<u32, u32>> {
        let half_cap = self.capacity / 2;
        let mut used = [0u32; 2];
        let mut bases = HashMap::new();
        for z in zones {
            let Some(n) = &z.nsec else { continue };
            let half = (z.slot / HALF_SLOTS).min(1) as usize;
            let count = n.labels.len() as u32;
            if used[half] + count > half_cap {
                bail!("the XDP NSEC label map holds {half_cap} labels per generation; the zones have more");
            }
            let base = half as u32 * half_cap + used[half];
            used[half] += count;
            for (i, l) in n.labels.iter().enumerate() {
                self.labels
                    .set(base + i as u32, *l, 0)
                    .context("filling the XDP NSEC labels")?;
            }
            bases.insert(z.slot, base);
        }
        Ok(bases)
    }

    /// The entries of the zone with `base`, read back from the kernel, for `map check`.
    pub fn read(&self, base: u32, count: usize) -> Result<Vec<NsecLabel>> {
        (0..count as u32)
            .map(|i| {
                self.labels
                    .get(&(base + i), 0)
                    .context("reading the XDP NSEC labels")
            })
            .collect()
    }
}

/// Labels of the NSEC zones the entries serve denials for.
pub fn labels(zones: &[ZoneNsec3]) -> usize {
    zones
        .iter()
        .filter_map(|z| z.nsec.as_ref())
        .map(|n| n.labels.len())
        .sum()
}

/// Entries of `NSEC_LABELS` for zones holding `labels` labels: two generations.
pub fn capacity_for(labels: usize) -> u32 {
    ((labels * 2).max(dns_common::NSEC_LABELS_CAPACITY as usize / 16)).min(u32::MAX as usize / 2)
        as u32
}
