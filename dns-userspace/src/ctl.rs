//! The control commands' side of the command line: where the server is, `--json`, and the
//! request lines of `zone` and `record`.

use std::path::PathBuf;

use anyhow::{anyhow, bail, Result};
use clap::{Args, Subcommand, ValueEnum};
use xdpdns::daemon::control;

/// Where the running server is and how its replies are wanted.
#[derive(Args, Clone)]
pub struct Ctl {
    /// The server's control socket.
    #[arg(long, global = true, default_value = control::DEFAULT_PATH)]
    pub control: PathBuf,
    /// The reply as one JSON document, for scripts (errors: {"error": ...}, exit 1).
    #[arg(long, global = true)]
    pub json: bool,
}

impl Ctl {
    /// Runs `command` on the server and prints its reply; an error when it fails.
    pub fn run(&self, rt: &tokio::runtime::Runtime, command: &str) -> Result<()> {
        let line = if self.json {
            format!("--json {command}")
        } else {
            command.to_owned()
        };
        match rt.block_on(control::request(&self.control, &line)) {
            Ok(body) => {
                print!("{body}");
                Ok(())
            }
            Err(e) if self.json => {
                println!("{}", serde_json::json!({ "error": format!("{e:#}") }));
                std::process::exit(1);
            }
            Err(e) => Err(e),
        }
    }
}

#[derive(Subcommand, Clone)]
pub enum ZoneCommand {
    /// Reload one zone (NAME) or every zone from its file, its journal replayed.
    Reload { name: Option<String> },
    /// Serve zone NAME from FILE.
    Add { name: String, file: PathBuf },
    /// Stop serving zone NAME (its names are answered REFUSED).
    Remove { name: String },
}

#[derive(Subcommand, Clone)]
pub enum MapCommand {
    /// Compare every map entry with the engine's answer.
    Check,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum RecordOp {
    Add,
    Del,
}

/// The request line of `xdpdns zone ...`.
pub fn zone_line(what: ZoneCommand) -> Result<String> {
    Ok(match what {
        ZoneCommand::Reload { name: None } => "zone reload".to_owned(),
        ZoneCommand::Reload { name: Some(n) } => format!("zone reload {n}"),
        ZoneCommand::Add { name, file } => {
            // The server's working directory is not ours.
            let file = std::fs::canonicalize(&file)
                .map_err(|e| anyhow!("zone file {}: {e}", file.display()))?;
            let file = file
                .to_str()
                .ok_or_else(|| anyhow!("zone file {}: not UTF-8", file.display()))?;
            if file.contains(char::is_whitespace) {
                bail!("zone file {file}: the path may not contain blanks");
            }
            format!("zone add {name} {file}")
        }
        ZoneCommand::Remove { name } => format!("zone remove {name}"),
    })
}

/// The request line of `xdpdns record add|del ...`.
pub fn record_line(
    op: RecordOp,
    zone: &str,
    name: &str,
    ttl: u32,
    rtype: &str,
    rdata: &[String],
) -> Result<String> {
    let op = match op {
        RecordOp::Add => "add",
        RecordOp::Del => "del",
    };
    let line = format!(
        "record {op} {zone} {name} {ttl} {rtype} {}",
        rdata.join(" ")
    );
    if line.contains('\n') {
        bail!("a record is one line");
    }
    Ok(line)
}

/// `xdpdns health`'s line, or with `--json` `{"healthy", "exit_code", "verdict"}`.
pub fn print_health(verdict: &xdpdns::daemon::health::Verdict, json: bool) {
    if json {
        let j = serde_json::json!({
            "healthy": verdict.exit_code() == 0,
            "exit_code": verdict.exit_code(),
            "verdict": verdict.line(),
        });
        println!("{j}");
    } else {
        println!("{}", verdict.line());
    }
}
