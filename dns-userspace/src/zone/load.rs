//! Loading zones from files into a catalog: `NAME=FILE` or `FILE` (the zone name is then the
//! file name without a `.zone` suffix, as in Knot's default `%s.zone` storage template).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{anyhow, Context as _, Result};

use crate::engine::Catalog;
use crate::wire::name::Name;
use crate::zone::{Zone, ZoneSource};
use crate::zonefile;

/// A zone to load: its name and file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ZoneSpec {
    pub origin: Name,
    pub file: PathBuf,
}

impl std::str::FromStr for ZoneSpec {
    type Err = anyhow::Error;

    fn from_str(s: &str) -> Result<ZoneSpec> {
        let (name, file) = match s.split_once('=') {
            Some((n, f)) => (n.to_owned(), PathBuf::from(f)),
            None => {
                let file = PathBuf::from(s);
                let stem = file
                    .file_name()
                    .and_then(|f| f.to_str())
                    .ok_or_else(|| anyhow!("{s}: cannot derive a zone name from the file name"))?;
                let name = stem.strip_suffix(".zone").unwrap_or(stem).to_owned();
                (name, file)
            }
        };
        let name = if name.ends_with('.') {
            name
        } else {
            format!("{name}.")
        };
        let origin = Name::parse(&name, None).map_err(|e| anyhow!("zone name {name}: {e}"))?;
        Ok(ZoneSpec { origin, file })
    }
}

/// Parses and checks one zone file. Warnings are returned, formatted `file:line: text`.
pub fn load_zone(spec: &ZoneSpec) -> Result<(Zone, Vec<String>)> {
    load_zone_file(&spec.file, &spec.origin)
}

/// Parses and checks the zone `origin` from `file`.
pub fn load_zone_file(file: &Path, origin: &Name) -> Result<(Zone, Vec<String>)> {
    let t = std::time::Instant::now();
    let parsed = zonefile::parse_file(file, origin).map_err(|e| anyhow!("{e}"))?;
    let parse_s = t.elapsed().as_secs_f64();
    let records = parsed.records.len();
    let mut warnings = parsed.warnings;
    let label = file.display().to_string();
    let source = ZoneSource {
        name: &label,
        locations: parsed.locations.as_ref(),
    };
    let (zone, w) =
        Zone::build(origin.clone(), parsed.records, &source).map_err(|e| anyhow!("{e}"))?;
    log::info!(
        "zone {origin} from {label}: parsed in {parse_s:.2}s, built in {:.2}s ({records} records)",
        t.elapsed().as_secs_f64() - parse_s
    );
    warnings.extend(w);
    Ok((zone, warnings))
}

/// Loads every zone; the first error stops the load (nothing is replaced).
pub fn load_catalog(specs: &[ZoneSpec]) -> Result<(Catalog, Vec<String>)> {
    let mut catalog = Catalog::new();
    let mut warnings = Vec::new();
    for spec in specs {
        let (zone, w) = load_zone(spec).with_context(|| format!("zone {}", spec.origin))?;
        warnings.extend(w);
        if catalog.get(zone.apex()).is_some() {
            return Err(anyhow!("zone {} is configured twice", spec.origin));
        }
        catalog.insert(Arc::new(zone));
    }
    Ok((catalog, warnings))
}
