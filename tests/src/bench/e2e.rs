//! One server (or the reflector) under load: started on the bench zone, the latency run with
//! dnsperf, the kxdpgun rate search, the run CPU per answer is taken from (the same rate for
//! every server) and, with `--perf`, the profile of the server core (`profile`), with the
//! XDP counters' deltas for xdpdns.

use anyhow::{Context as _, Result};

use super::measure::{self, Search};
use super::net::BenchNet;
use super::report::ServerResult;
use super::servers::{Kind, Server};
use super::{profile, zone, Bench, Files, FULL_SPEED, SEARCH_RESOLUTION, SEARCH_START};

impl Bench {
    /// Latency and rate search for one server (or the reflector).
    pub(super) fn measure(
        &self,
        net: &mut BenchNet,
        kind: Kind,
        zone: &zone::Zone,
        files: &Files,
    ) -> ServerResult {
        let mut res = ServerResult::new(kind);
        self.progress(&format!("{}: starting", kind.name()));
        let dir = self.work.join(kind.name());
        let server = match Server::start(kind, net, &zone.path, &dir) {
            Ok(s) => s,
            Err(e) => {
                res.error = Some(format!("{e:#}"));
                self.progress(&format!("{}: FAILED to start: {e:#}", kind.name()));
                return res;
            }
        };
        res.startup_s = server.startup.as_secs_f64();
        let outcome = self.measure_running(net, &server, &mut res, files);
        if let Err(e) = outcome {
            self.progress(&format!("{}: FAILED: {e:#}", kind.name()));
            res.error = Some(format!("{e:#}"));
        }
        if let Err(e) = server.stop(net) {
            self.progress(&format!("{}: warning: {e:#}", kind.name()));
        }
        res
    }

    fn measure_running(
        &self,
        net: &mut BenchNet,
        server: &Server,
        res: &mut ServerResult,
        files: &Files,
    ) -> Result<()> {
        let name = server.kind.name();
        let o = &self.opts;
        if server.kind != Kind::Reflector {
            net.client_pass(true)?;
            let do_rate = o.latency_rate * o.do_share as u64 / 100;
            let lat = measure::dnsperf(
                net,
                &[
                    (&files.dnsperf_plain, false, o.latency_rate - do_rate),
                    (&files.dnsperf_do, true, do_rate),
                ],
                o.duration,
            )
            .context("latency run (dnsperf)")?;
            self.progress(&format!(
                "{name}: latency at {} q/s: p50 {:.0} us, p99 {:.0} us ({} of {} answered)",
                lat.rate, lat.p50_us, lat.p99_us, lat.completed, lat.sent
            ));
            res.latency = Some(lat);
        }
        net.client_pass(false)?;
        let before = server.stats()?;
        let mut report = |r: &measure::Run| self.run_line(name, r);
        let search = if let Some(rate) = o.fixed_rate {
            // One run at a fixed rate: "answered" is then simply the reply rate at that rate.
            let bounds = measure::SearchBounds {
                start: rate,
                steps: 0,
                budget: std::time::Duration::ZERO,
                resolution: SEARCH_RESOLUTION,
            };
            let mut s: Search = measure::search(
                net,
                server,
                &files.kxdpgun,
                rate,
                bounds,
                o.duration,
                &mut report,
            )?;
            s.best = Some(s.max.clone());
            res.cpu_run = Some(s.max.clone());
            s
        } else {
            // Each run takes its duration plus kxdpgun's start and the counters' reading.
            let per_run = std::time::Duration::from_secs(o.duration as u64 + 4);
            let bounds = measure::SearchBounds {
                start: SEARCH_START,
                steps: o.steps,
                budget: per_run * o.steps as u32,
                resolution: SEARCH_RESOLUTION,
            };
            let s = measure::search(
                net,
                server,
                &files.kxdpgun,
                FULL_SPEED,
                bounds,
                o.duration,
                &mut report,
            )?;
            // CPU per answer: the same rate and duration, so the same packet count, for all.
            let cpu = measure::kxdpgun(net, server, &files.kxdpgun, o.cpu_rate, o.duration)
                .context("CPU run")?;
            self.progress(&format!(
                "{name}: CPU run at {} q/s: {:.2} CPU s per M answers (loss {:.3}%), {:.1} answers \
                 per run of the NAPI thread",
                o.cpu_rate,
                cpu.server_cpu_s / cpu.replies.max(1) as f64 * 1e6,
                cpu.loss() * 100.0,
                cpu.replies as f64 / cpu.napi_runs.max(1) as f64
            ));
            res.cpu_run = Some(cpu);
            s
        };
        if o.perf {
            let rate = o.fixed_rate.unwrap_or(o.cpu_rate);
            let p = profile::run(net, server, &files.kxdpgun, rate, o.duration, &self.work);
            match &p {
                Ok(p) => self.progress(p.text(name).trim_end()),
                Err(e) => self.progress(&format!("{name}: perf FAILED: {e:#}")),
            }
            res.profile = Some(p.map_err(|e| format!("{e:#}")));
        }
        let after = server.stats()?;
        for k in after.names() {
            let d = crate::stats::try_delta(&before, &after, k)?;
            if k == "udp.queries" {
                res.udp_queries = Some(d);
            } else if k.starts_with("xdp.") && d > 0 {
                res.xdp.push((k.to_owned(), d));
            }
        }
        if server.kind == Kind::XdpdnsXdp {
            let d = |k: &str| crate::stats::try_delta(&before, &after, k);
            res.xdp_split = Some((d("xdp.answered")?, d("xdp.passed")?));
        }
        if let Some(b) = &search.best {
            self.progress(&format!(
                "{name}: {:.0} answered q/s at <=0.1% loss; {:.0} replies/s at the generator's full speed",
                b.reply_pps, search.max.reply_pps
            ));
        } else {
            self.progress(&format!(
                "{name}: no rate with <=0.1% loss found; {:.0} replies/s at full speed",
                search.max.reply_pps
            ));
        }
        res.search = Some(search);
        Ok(())
    }
}
