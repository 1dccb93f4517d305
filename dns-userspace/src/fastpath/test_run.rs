//! BPF_PROG_TEST_RUN of the loaded program, for the tests and the micro-benchmark
//! (`test-support` only).

use anyhow::{Context as _, Result};
use aya::programs::{TestRun, TestRunOptions};

use super::xdp::XdpServer;

/// The buffer BPF_PROG_TEST_RUN gives the program: a page.
const TEST_RUN_PAGE: usize = 4096;

/// BPF_PROG_TEST_RUN, for the tests and the micro-benchmark.
impl XdpServer {
    /// Runs the program once on `frame` with BPF_PROG_TEST_RUN; returns the action and the
    /// output frame.
    pub fn test_run(&mut self, frame: &[u8]) -> Result<(u32, Vec<u8>)> {
        let (action, out, _) = self.run(frame, 1)?;
        Ok((action, out))
    }

    /// Runs the program `repeat` times on `frame`; returns the mean time per run.
    pub fn test_run_repeat(&mut self, frame: &[u8], repeat: u32) -> Result<std::time::Duration> {
        Ok(self.run(frame, repeat)?.2)
    }

    /// Runs the object's test program `name` (loaded on first use; it shares the object's
    /// maps) once on `frame`: its action and time.
    pub fn test_run_other(
        &mut self,
        name: &str,
        frame: &[u8],
    ) -> Result<(u32, std::time::Duration)> {
        let ebpf = self.ebpf.as_mut().context("no XDP object")?;
        let prog: &mut aya::programs::Xdp = ebpf
            .program_mut(name)
            .with_context(|| format!("program {name} missing"))?
            .try_into()?;
        if prog.fd().is_err() {
            prog.load().with_context(|| format!("loading {name}"))?;
        }
        let r = prog
            .test_run(TestRunOptions {
                data_in: Some(frame),
                repeat: 1,
                ..Default::default()
            })
            .with_context(|| format!("BPF_PROG_TEST_RUN of {name}"))?;
        Ok((r.return_value, r.duration))
    }

    /// BPF_PROG_TEST_RUN of `frame`, `repeat` times: the action, the output frame and the
    /// mean time per run.
    fn run(&mut self, frame: &[u8], repeat: u32) -> Result<(u32, Vec<u8>, std::time::Duration)> {
        // The kernel runs the program on a page-sized buffer: its output fits in a page.
        let mut out = vec![0u8; frame.len().max(TEST_RUN_PAGE)];
        let prog = self.program()?;
        let r = prog
            .test_run(TestRunOptions {
                data_in: Some(frame),
                data_out: Some(&mut out),
                repeat,
                ..Default::default()
            })
            .context("BPF_PROG_TEST_RUN")?;
        out.truncate(r.data_size_out as usize);
        Ok((r.return_value, out, r.duration))
    }
}
