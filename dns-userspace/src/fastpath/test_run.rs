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
