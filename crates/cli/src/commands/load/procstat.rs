//! A process's CPU time and memory, read from Linux's `/proc/<pid>`.
//!
//! CPU: `utime + stime` (fields 14 and 15 of `/proc/<pid>/stat`) in clock ticks of
//! `USER_HZ`, which the kernel fixes at 100 for user space on every architecture
//! Linux runs on (`sysconf(_SC_CLK_TCK)`). Memory: `VmRSS` and `VmHWM` (peak) of
//! `/proc/<pid>/status`, in KiB.

use std::time::Instant;

use anyhow::{Context, Result};

/// Clock ticks per second of `/proc/<pid>/stat`.
const USER_HZ: f64 = 100.0;

/// One reading.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Sample {
    at: Instant,
    cpu_ticks: u64,
    /// Resident memory now, bytes.
    pub(crate) rss: u64,
    /// Peak resident memory so far, bytes.
    pub(crate) peak_rss: u64,
}

/// Reads `pid` now (`"self"` for this process).
pub(crate) fn sample(pid: &str) -> Result<Sample> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .with_context(|| format!("cannot read /proc/{pid}/stat"))?;
    // The command name (field 2) may hold spaces: count fields after its ')'.
    let after = stat.rsplit_once(')').map(|(_, rest)| rest).context("odd /proc stat")?;
    let fields: Vec<&str> = after.split_whitespace().collect();
    // `after` starts at field 3, so field n is at index n - 3.
    let tick = |n: usize| -> Result<u64> {
        fields.get(n - 3).context("short /proc stat")?.parse().context("odd /proc stat field")
    };
    let cpu_ticks = tick(14)? + tick(15)?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("cannot read /proc/{pid}/status"))?;
    let kib = |name: &str| -> u64 {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|n| n.parse::<u64>().ok())
            .unwrap_or(0)
    };
    Ok(Sample {
        at: Instant::now(),
        cpu_ticks,
        rss: kib("VmRSS:") * 1024,
        peak_rss: kib("VmHWM:") * 1024,
    })
}

impl Sample {
    /// CPU used between `earlier` and `self`, in percent of one core.
    pub(crate) fn cpu_percent_since(&self, earlier: &Sample) -> f64 {
        let secs = self.at.saturating_duration_since(earlier.at).as_secs_f64();
        if secs <= 0.0 {
            return 0.0;
        }
        let ticks = self.cpu_ticks.saturating_sub(earlier.cpu_ticks) as f64;
        100.0 * ticks / USER_HZ / secs
    }

    /// CPU seconds since the process started.
    pub(crate) fn cpu_seconds(&self) -> f64 {
        self.cpu_ticks as f64 / USER_HZ
    }

    /// CPU seconds between `earlier` and `self`.
    pub(crate) fn cpu_seconds_since(&self, earlier: &Sample) -> f64 {
        self.cpu_ticks.saturating_sub(earlier.cpu_ticks) as f64 / USER_HZ
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_this_process() {
        let a = sample("self").unwrap();
        let mut x = 0u64;
        for i in 0..20_000_000u64 {
            x = x.wrapping_mul(31).wrapping_add(i);
        }
        std::hint::black_box(x);
        let b = sample("self").unwrap();
        assert!(b.rss > 0 && b.peak_rss >= b.rss);
        assert!(b.cpu_ticks >= a.cpu_ticks);
    }
}
