//! How busy the machine is while the tool and the server are idle: on a
//! shared machine another process's build skews every rate, and a reader
//! of the results should know.

use std::time::Duration;

use crate::driver::Stop;

/// (busy, total) jiffies of all CPUs, from Linux's /proc/stat.
fn cpu_times() -> Option<(u64, u64)> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let line = stat.lines().find(|line| line.starts_with("cpu "))?;
    let fields: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .take(8)
        .filter_map(|field| field.parse().ok())
        .collect();
    if fields.len() < 5 {
        return None;
    }
    let total: u64 = fields.iter().sum();
    // idle + iowait
    let idle = fields[3] + fields[4];
    Some((total.saturating_sub(idle), total))
}

/// The share (0..1) of all CPUs busy over `sample`, or `None` where
/// /proc/stat is unavailable. Called while the tool and the server are
/// idle, it is the load of other processes.
pub async fn busy_share(sample: Duration) -> Option<f64> {
    let (busy_before, total_before) = cpu_times()?;
    tokio::time::sleep(sample).await;
    let (busy_after, total_after) = cpu_times()?;
    let total = total_after.checked_sub(total_before)?;
    if total == 0 {
        return None;
    }
    Some(busy_after.saturating_sub(busy_before) as f64 / total as f64)
}

/// Above this share of busy CPU before a measurement, results are flagged.
pub const BUSY_WARNING: f64 = 0.15;

/// Samples the CPUs in half-second slices until other processes use less
/// than [`BUSY_WARNING`] of them, for at most `max_wait`; returns the last
/// share seen (`None` without /proc/stat).
pub async fn wait_quiet(max_wait: Duration, stop: &Stop) -> Option<f64> {
    let started = std::time::Instant::now();
    let mut told = false;
    loop {
        let share = busy_share(Duration::from_millis(500)).await?;
        if share < BUSY_WARNING || started.elapsed() >= max_wait || stop.is_set() {
            return Some(share);
        }
        if !told {
            eprintln!(
                "  waiting up to {:.0} s for the machine to quiet down: other processes use {:.0}% of the CPUs…",
                max_wait.as_secs_f64(),
                share * 100.0
            );
            told = true;
        }
    }
}

/// User + system CPU time of a process, in the same ticks as /proc/stat.
fn process_ticks(pid: &str) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces; the fields after it start at
    // field 3 (state), so utime and stime (fields 14 and 15) are 11 and 12.
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

/// The pid of the one local process whose program is named `claimset`
/// (the server under test), if there is exactly one.
pub fn find_server_pid() -> Option<u32> {
    let own = std::process::id();
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|name| name.parse::<u32>().ok())
        else {
            continue;
        };
        if pid == own {
            continue;
        }
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let program = cmdline.split(|byte| *byte == 0).next().unwrap_or_default();
        let name = String::from_utf8_lossy(program);
        if std::path::Path::new(name.as_ref())
            .file_name()
            .is_some_and(|file| file == "claimset")
        {
            found.push(pid);
        }
    }
    match found.as_slice() {
        [pid] => Some(*pid),
        _ => None,
    }
}

/// Who used the CPUs during a measurement, as shares of all of them.
#[derive(Debug, Clone, Copy)]
pub struct CpuUse {
    /// The server (when its pid is known).
    pub server: Option<f64>,
    /// This tool (its client load, and the trivial handler or raw-rate threads).
    pub tool: f64,
    /// Everything else: other processes, and the server when its pid is unknown.
    pub other: f64,
}

impl CpuUse {
    /// "server 61%, load tool 30%, other processes 2% of the CPUs".
    pub fn describe(&self) -> String {
        match self.server {
            Some(server) => format!(
                "CPU: server {:.0}%, load tool {:.0}%, other processes {:.0}% of all cores",
                server * 100.0,
                self.tool * 100.0,
                self.other * 100.0
            ),
            None => format!(
                "CPU: load tool {:.0}%, server and other processes {:.0}% of all cores",
                self.tool * 100.0,
                self.other * 100.0
            ),
        }
    }

    /// Whether other processes took enough CPU to skew the figures.
    pub fn disturbed(&self) -> bool {
        self.server.is_some() && self.other >= BUSY_WARNING
    }
}

/// CPU accounting from a starting point.
pub struct Meter {
    server: Option<String>,
    busy: u64,
    total: u64,
    tool: u64,
    server_ticks: u64,
}

impl Meter {
    /// Starts counting (`None` without /proc).
    pub fn start(server: Option<u32>) -> Option<Meter> {
        let server = server.map(|pid| pid.to_string());
        let (busy, total) = cpu_times()?;
        Some(Meter {
            busy,
            total,
            tool: process_ticks("self")?,
            server_ticks: match &server {
                Some(pid) => process_ticks(pid).unwrap_or(0),
                None => 0,
            },
            server,
        })
    }

    /// The shares since [`Meter::start`].
    pub fn read(&self) -> Option<CpuUse> {
        let (busy, total) = cpu_times()?;
        let total = total.checked_sub(self.total)?;
        if total == 0 {
            return None;
        }
        let share = |ticks: u64| ticks as f64 / total as f64;
        let busy = busy.saturating_sub(self.busy);
        let tool = process_ticks("self")?.saturating_sub(self.tool);
        let server = match &self.server {
            Some(pid) => Some(process_ticks(pid)?.saturating_sub(self.server_ticks)),
            None => None,
        };
        let other = busy
            .saturating_sub(tool)
            .saturating_sub(server.unwrap_or(0));
        Some(CpuUse {
            server: server.map(share),
            tool: share(tool),
            other: share(other),
        })
    }
}
