//! The few operating-system facts and knobs the benchmark needs: the open
//! file limit, resident memory of a process, the load average, the machine
//! description and the unprivileged user PgBouncer runs as.

use std::process::Command;

pub use crate::os::raise_nofile_limit;

/// True when the effective user is root.
#[allow(unsafe_code)]
pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions, touches no memory and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// Resident set size of process `pid` in KiB (`VmRSS` of `/proc/PID/status`).
pub fn vm_rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    parse_vm_rss(&status)
}

fn parse_vm_rss(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// The 1-minute load average (`/proc/loadavg`).
pub fn load_1m() -> Option<f64> {
    let text = std::fs::read_to_string("/proc/loadavg").ok()?;
    text.split_whitespace().next()?.parse().ok()
}

/// uid and gid of `user` (via `id`), `None` if unknown.
pub fn user_ids(user: &str) -> Option<(u32, u32)> {
    let id = |flag: &str| -> Option<u32> {
        let out = Command::new("id").args([flag, user]).output().ok()?;
        if !out.status.success() {
            return None;
        }
        String::from_utf8_lossy(&out.stdout).trim().parse().ok()
    };
    Some((id("-u")?, id("-g")?))
}

/// The machine, for the report: core count, CPU model, memory.
#[derive(Debug, Clone)]
pub struct Machine {
    /// Logical cores available to this process (`nproc`).
    pub cores: usize,
    /// `model name` of the first CPU in `/proc/cpuinfo`.
    pub cpu_model: String,
    /// `MemTotal` in MiB.
    pub mem_mib: u64,
}

impl Machine {
    /// Reads the description of this machine.
    pub fn detect() -> Machine {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu_model = cpuinfo
            .lines()
            .find(|l| l.starts_with("model name"))
            .and_then(|l| l.split_once(':'))
            .map_or_else(|| "unknown".to_owned(), |(_, v)| v.trim().to_owned());
        let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
        let mem_mib = meminfo
            .lines()
            .find(|l| l.starts_with("MemTotal:"))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<u64>().ok())
            .map_or(0, |kib| kib / 1024);
        Machine {
            cores,
            cpu_model,
            mem_mib,
        }
    }
}

/// The current UTC date and time (`date -u`), or the Unix time if `date`
/// cannot run.
pub fn now_utc() -> String {
    Command::new("date")
        .args(["-u", "+%Y-%m-%d %H:%M UTC"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_else(|| {
            let secs = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs());
            format!("unix time {secs}")
        })
}

/// The whole machine's CPU time so far, from the `cpu` line of
/// `/proc/stat`, in clock ticks (`USER_HZ`, 100 a second on Linux).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CpuTicks {
    /// Time spent working: user, nice, system, irq and softirq (guest time
    /// is already inside user). Every process counts, kernel threads such
    /// as writeback too.
    pub busy: u64,
    /// Time a virtual machine's CPUs waited for the host (`steal`): not
    /// work, and not available to the work either.
    pub steal: u64,
}

/// The machine's CPU ticks now; `None` where `/proc/stat` is not readable.
pub fn cpu_ticks() -> Option<CpuTicks> {
    parse_cpu_ticks(&std::fs::read_to_string("/proc/stat").ok()?)
}

/// Ticks per second of `/proc/stat` (`USER_HZ`).
pub const TICKS_PER_SECOND: f64 = 100.0;

fn parse_cpu_ticks(stat: &str) -> Option<CpuTicks> {
    let line = stat.lines().find(|l| l.starts_with("cpu "))?;
    let v: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .map(str::parse)
        .collect::<Result<_, _>>()
        .ok()?;
    // user nice system idle iowait irq softirq steal [guest guest_nice]
    let at = |i: usize| v.get(i).copied();
    Some(CpuTicks {
        busy: at(0)? + at(1)? + at(2)? + at(5)? + at(6)?,
        steal: at(7).unwrap_or(0),
    })
}

/// First line of `program --version`, if it runs.
pub fn version_of(program: &std::path::Path) -> Option<String> {
    let out = Command::new(program).arg("--version").output().ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines().next().map(|l| l.trim().to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vm_rss_is_read_from_status_text() {
        let status = "Name:\tpgpulse\nVmPeak:\t  9000 kB\nVmRSS:\t   12345 kB\nThreads:\t3\n";
        assert_eq!(parse_vm_rss(status), Some(12345));
        assert_eq!(parse_vm_rss("Name:\tx\n"), None);
    }

    #[test]
    fn cpu_ticks_are_read_from_proc_stat_text() {
        let stat = "cpu  100 5 40 9000 30 2 3 7 0 0\ncpu0 50 2 20 4500 15 1 1 3 0 0\n";
        assert_eq!(
            parse_cpu_ticks(stat),
            Some(CpuTicks {
                busy: 150,
                steal: 7
            })
        );
        assert_eq!(parse_cpu_ticks("cpu0 1 2 3\n"), None);
        assert_eq!(parse_cpu_ticks("cpu  1 2 x 4 5 6 7\n"), None);
        let now = cpu_ticks().expect("/proc/stat");
        assert!(now.busy > 0);
    }

    #[test]
    fn own_rss_and_limit_are_positive() {
        assert!(vm_rss_kib(std::process::id()).unwrap_or(0) > 0);
        assert!(raise_nofile_limit().expect("setrlimit") >= 256);
    }
}
