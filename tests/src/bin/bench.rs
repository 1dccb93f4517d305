//! `cargo xtask bench`: the command line of the comparative benchmark (xdpdns with and without
//! XDP, Knot in UDP and XDP mode, NSD) — parses the options, installs the Ctrl-C handler that
//! tears everything down, and runs `xdpdns_tests::bench`.

use anyhow::{bail, Context as _, Result};
use xdpdns_tests::bench::{self, cleanup, servers::Kind, zone::Mix, Options};

const USAGE: &str = "\
usage: bench [--delegations N] [--signed] [--mix NAME] [--do-share PCT] [--duration S]
             [--servers LIST] [--smoke] [--seed N] [--queries N] [--latency-rate QPS]
             [--steps N] [--rate QPS] [--cpu-rate QPS] [--perf] [--e2e-only] [--load-sizes LIST|none] [--update-sizes LIST|none]
             [--update-changes N] [--update-only] [--load-only] [--micro-runs N] [--nice N]
             [--xfr] [--xfr-only] [--xfr-delegations N] [--nsec3-only]
             [--nsec3-iterations LIST] [--restart-only] [--micro-only] [--out DIR]

  --delegations N    delegations in the synthetic TLD (default 10000; smoke 1000)
  --signed           NSEC3-sign the zone (opt-out) with dnssec-signzone
  --mix NAME         tld (70% referral, 20% NXDOMAIN, 10% apex), referral, nxdomain, apex,
                     or R/N/A percentages (default tld)
  --do-share PCT     queries with DO=1 (default 50)
  --duration S       seconds per measurement run (default 3; smoke 1)
  --servers LIST     comma-separated: xdpdns-xdp,xdpdns-user,knot-udp,knot-xdp,nsd (default all)
  --smoke            a few seconds per server, small zone, no rate search, no load figures
  --steps N          search runs after the full-speed run (default 10, at most 12, and at most
                     N x (duration + 4) s): from 90% of the full-speed reply rate, up by half
                     again while the loss stays <= 0.1%, then bisection between the last
                     zero-loss rate and the first lossy one down to 3%; a lossy run is
                     repeated once, the rate is lossy when both are
  --rate QPS         no search: one kxdpgun run per server at this rate (smoke: 20000)
  --cpu-rate QPS     rate of the run CPU per answer is taken from, the same for every server
                     (default 150000; with --rate, that run)
  --perf             also one run per server at the CPU rate under perf record on the server
                     core: ns per answer in the XDP programs, their helpers, the veth NAPI
                     thread, the server's processes, and what is not the server's
  --e2e-only         only the reflector and the servers under load (latency, rate search, CPU
                     run): no TEST_RUN, rate limiting, sender profile, start-up, update or
                     transfer sections
  --load-sizes LIST  zone sizes for the start-up figures: xdpdns, knotd and nsd loading the
                     same zone (default 10000,100000,1000000)
  --load-only        only the start-up figures (in their own namespaces)
  --update-sizes LIST
                     zone sizes for the update figures: a diff published incrementally and
                     in full, timed (default 100000,1000000; smoke 2000)
  --update-changes N records per diff of the update figures (default 100)
  --update-only      only the update figures (no servers, no namespaces)
  --nice N           nice value of servers, NAPI threads and generators (default -20)
  --xfr              also the zone-transfer section (on in smoke mode): xdpdns and knotd as
                     secondaries of a knotd primary, AXFR from the start to the serial answered,
                     NOTIFY after a 100-delegation change to the new serial and referral (XDP)
  --xfr-only         only the zone-transfer section
  --rrl-only         only the rate limiting section (TEST_RUN: a spoofed flood with RRL off
                     and on, legitimate share, in-kernel cost per answer)
  --xfr-delegations N  delegations of the transferred zone (default 1000000; smoke 2000)
  --nsec3-only       only the NSEC3 denial figures (no servers, no namespaces): TEST_RUN ns
                     per NSEC3 NXDOMAIN answer net of xdp_pass (and for the same names with
                     DO=0), and the share answered in XDP, for the TLD of --delegations signed
                     at each of --nsec3-iterations, then for the bench zone signed with NSEC3
                     and with NSEC
  --nsec3-iterations LIST
                     NSEC3 iteration counts for --nsec3-only (default 0,1,10,50,150)
  --restart-only     only the restart gap: `serve --xdp-pin` with the zone of --delegations
                     killed -9 under UDP (XDP) and TCP (userspace) SOA loads and started again,
                     unchanged and with its serial moved while down: longest gap per path,
                     time to the XDP start and to userspace answering
  --micro-only       only the TEST_RUN micro-benchmark (no servers, no namespaces): ns per
                     query per answer kind on the zone of --delegations (--signed), net of
                     xdp_pass, and the query set of --mix
  --out DIR          output directory (default target/bench, smoke: target/bench/smoke)";

fn value<T: std::str::FromStr>(args: &mut impl Iterator<Item = String>, flag: &str) -> Result<T>
where
    T::Err: std::fmt::Display,
{
    let v = args
        .next()
        .with_context(|| format!("{flag} needs a value"))?;
    v.parse().map_err(|e| anyhow::anyhow!("{flag} {v:?}: {e}"))
}

/// A comma-separated list of zone sizes, or `none`.
fn sizes(args: &mut impl Iterator<Item = String>, flag: &str) -> Result<Vec<usize>> {
    let v: String = value(args, flag)?;
    if v == "none" {
        return Ok(Vec::new());
    }
    v.split(',')
        .map(|s| s.parse().with_context(|| format!("{flag} {s:?}")))
        .collect()
}

fn parse(argv: Vec<String>) -> Result<Options> {
    let mut o = Options::defaults(argv.iter().any(|a| a == "--smoke"));
    let mut args = argv.into_iter();
    while let Some(a) = args.next() {
        match a.as_str() {
            "--smoke" => {}
            "--signed" => o.signed = true,
            "--delegations" => o.delegations = value(&mut args, &a)?,
            "--mix" => o.mix = Mix::parse(&value::<String>(&mut args, &a)?)?,
            "--do-share" => o.do_share = value(&mut args, &a)?,
            "--duration" => o.duration = value(&mut args, &a)?,
            "--seed" => o.seed = value(&mut args, &a)?,
            "--queries" => o.queries = value(&mut args, &a)?,
            "--latency-rate" => o.latency_rate = value(&mut args, &a)?,
            "--steps" => o.steps = value(&mut args, &a)?,
            "--micro-runs" => o.micro_runs = value(&mut args, &a)?,
            "--nice" => o.nice = value(&mut args, &a)?,
            "--rate" => o.fixed_rate = Some(value(&mut args, &a)?),
            "--cpu-rate" => o.cpu_rate = value(&mut args, &a)?,
            "--perf" => o.perf = true,
            "--e2e-only" => o.e2e_only = true,
            "--out" => o.out_dir = value::<String>(&mut args, &a)?.into(),
            "--xfr" => o.xfr = true,
            "--xfr-only" => (o.xfr, o.xfr_only) = (true, true),
            "--rrl-only" => o.rrl_only = true,
            "--xfr-delegations" => o.xfr_delegations = value(&mut args, &a)?,
            "--servers" => {
                o.servers = value::<String>(&mut args, &a)?
                    .split(',')
                    .filter(|s| !s.is_empty())
                    .map(Kind::parse)
                    .collect::<Result<_>>()?;
            }
            "--load-sizes" => o.load_sizes = sizes(&mut args, &a)?,
            "--update-sizes" => o.update_sizes = sizes(&mut args, &a)?,
            "--update-changes" => o.update_changes = value(&mut args, &a)?,
            "--update-only" => o.update_only = true,
            "--load-only" => o.load_only = true,
            "--nsec3-only" => o.nsec3_only = true,
            "--restart-only" => o.restart_only = true,
            "--micro-only" => o.micro_only = true,
            "--nsec3-iterations" => {
                o.nsec3_iterations = sizes(&mut args, &a)?
                    .into_iter()
                    .map(|n| u16::try_from(n).context("--nsec3-iterations"))
                    .collect::<Result<_>>()?;
            }
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            other => bail!("unknown argument {other:?}\n{USAGE}"),
        }
    }
    if o.do_share > 100 || o.duration == 0 || o.delegations < 2 || o.queries == 0 {
        bail!("--do-share must be 0..100, --duration and --queries positive, --delegations >= 2");
    }
    if o.xfr && o.xfr_delegations < 1_000 {
        bail!("--xfr-delegations must be at least 1000 (the update changes 200 of them)");
    }
    if !(-20..=19).contains(&o.nice) {
        bail!("--nice must be -20..19");
    }
    if o.cpu_rate == 0 {
        bail!("--cpu-rate must be positive");
    }
    if o.duration > 60 || o.steps > 12 {
        bail!("--duration is capped at 60 s and --steps at 12 (every load loop is bounded)");
    }
    Ok(o)
}

fn main() -> Result<()> {
    let opts = parse(std::env::args().skip(1).collect())?;
    ctrlc::set_handler(|| {
        eprintln!("\ninterrupted: stopping servers, removing namespaces");
        cleanup::emergency();
        std::process::exit(130);
    })
    .context("installing the Ctrl-C handler")?;
    let result = bench::run(opts);
    // Whatever happened, nothing may stay behind.
    cleanup::emergency();
    result.map(|_| ())
}
