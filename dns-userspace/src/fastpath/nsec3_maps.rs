//! The NSEC3 maps of a loaded program (`NSEC3_ZONES`, `NSEC3_HASHES`, `NSEC3_RECORDS`):
//! writing the NSEC3 zones of a generation into the half of the arrays its slots name, so
//! that the generation serving keeps its own until the switch.

use std::collections::HashMap;

use anyhow::{bail, Context as _, Result};
use aya::maps::{Array, MapData};
use aya::Ebpf;
use dns_common::{maps, Nsec3Hash, Nsec3Record, Nsec3Zone};

use super::nsec3::{ZoneNsec3, HALF_SLOTS};

pub struct Nsec3Maps {
    zones: Array<MapData, Nsec3Zone>,
    hashes: Array<MapData, Nsec3Hash>,
    records: Array<MapData, Nsec3Record>,
    /// Entries of `hashes` and `records` (both halves).
    capacity: u32,
}

impl Nsec3Maps {
    pub fn take(ebpf: &mut Ebpf, capacity: u32) -> Result<Nsec3Maps> {
        Ok(Nsec3Maps {
            zones: super::xdp::take(ebpf, maps::NSEC3_ZONES)?,
            hashes: super::xdp::take(ebpf, maps::NSEC3_HASHES)?,
            records: super::xdp::take(ebpf, maps::NSEC3_RECORDS)?,
            capacity,
        })
    }

    /// The maps of a program opened from its pins (`adopt`).
    pub fn new(
        zones: Array<MapData, Nsec3Zone>,
        hashes: Array<MapData, Nsec3Hash>,
        records: Array<MapData, Nsec3Record>,
        capacity: u32,
    ) -> Nsec3Maps {
        Nsec3Maps {
            zones,
            hashes,
            records,
            capacity,
        }
    }

    pub fn capacity(&self) -> u32 {
        self.capacity
    }

    /// The zone in `slot` as the kernel has it, for `map check`.
    pub fn zone(&self, slot: u32) -> Result<Nsec3Zone> {
        self.zones
            .get(&slot, 0)
            .context("reading the XDP NSEC3 zones")
    }

    /// The record at `at` as the kernel has it, for `map check`.
    pub fn record(&self, at: u32) -> Result<Nsec3Record> {
        self.records
            .get(&at, 0)
            .context("reading the XDP NSEC3 records")
    }

    /// Writes `zones` (all in one half of the slots), each zone's hashes and records first and
    /// its slot last, with its base in `NSEC_LABELS` from `labels` (by slot).
    pub fn write(&mut self, zones: &[ZoneNsec3], labels: &HashMap<u32, u32>) -> Result<()> {
        let half_cap = self.capacity / 2;
        let mut used = [0u32; 2];
        for z in zones {
            let half = (z.slot / HALF_SLOTS).min(1) as usize;
            let n = z.records.len() as u32;
            if used[half] + n > half_cap {
                bail!("the XDP NSEC3 maps hold {half_cap} records per generation; the zones have more");
            }
            let base = half as u32 * half_cap + used[half];
            used[half] += n;
            for (i, r) in z.records.iter().enumerate() {
                let at = base + i as u32;
                if let Some(h) = z.hashes.get(i) {
                    self.hashes
                        .set(at, *h, 0)
                        .context("filling the XDP NSEC3 hashes")?;
                }
                self.records
                    .set(at, *r, 0)
                    .context("filling the XDP NSEC3 records")?;
            }
            let mut v = z.zone;
            v.base = base;
            v.labels = labels.get(&z.slot).copied().unwrap_or(0);
            self.zones
                .set(z.slot, v, 0)
                .context("filling the XDP NSEC3 zones")?;
        }
        Ok(())
    }
}

/// Entries of the NSEC3 arrays for zones holding `records` NSEC3 records: two generations.
pub fn capacity_for(records: usize) -> u32 {
    ((records * 2).max(dns_common::NSEC3_CAPACITY as usize / 16)).min(u32::MAX as usize / 2) as u32
}
