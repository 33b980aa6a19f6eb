//! How busy the machine is while the tool and the server are idle: on a
//! shared machine another process's build skews every rate, and a reader
//! of the results should know.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use crate::driver::Stop;

/// Ticks of all CPUs together, from one `cpu` line of Linux's /proc/stat.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct CpuTicks {
    /// Not idle: processes, interrupts, and time the hypervisor took.
    busy: u64,
    /// Everything, idle included.
    total: u64,
    /// Time the hypervisor ran something else while this machine's vCPUs
    /// wanted to run ("steal"): a stall no process here can see or cause.
    steal: u64,
}

/// /proc/stat counts in USER_HZ, which Linux fixes at 100 per second for
/// user space on every architecture it ships (`sysconf(_SC_CLK_TCK)`).
const TICKS_PER_SECOND: f64 = 100.0;

/// How often the steal watcher samples /proc/stat during a measurement.
const STEAL_SAMPLE: Duration = Duration::from_millis(100);

/// Parses the aggregate `cpu` line: user nice system idle iowait irq
/// softirq steal (guest time is already inside user and nice).
fn parse_cpu_line(stat: &str) -> Option<CpuTicks> {
    let line = stat.lines().find(|line| line.starts_with("cpu "))?;
    let fields: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .take(8)
        .map(|field| field.parse().ok())
        .collect::<Option<_>>()?;
    if fields.len() < 5 {
        return None;
    }
    let total: u64 = fields.iter().sum();
    // idle + iowait
    let idle = fields[3] + fields[4];
    Some(CpuTicks {
        busy: total.saturating_sub(idle),
        total,
        steal: fields.get(7).copied().unwrap_or(0),
    })
}

fn cpu_times() -> Option<CpuTicks> {
    parse_cpu_line(&std::fs::read_to_string("/proc/stat").ok()?)
}

/// The share (0..1) of all CPUs busy over `sample`, or `None` where
/// /proc/stat is unavailable. Called while the tool and the server are
/// idle, it is the load of other processes.
pub async fn busy_share(sample: Duration) -> Option<f64> {
    let before = cpu_times()?;
    tokio::time::sleep(sample).await;
    let after = cpu_times()?;
    let total = after.total.checked_sub(before.total)?;
    if total == 0 {
        return None;
    }
    Some(after.busy.saturating_sub(before.busy) as f64 / total as f64)
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
    /// Taken by the hypervisor (steal time; shared virtual machines only).
    pub stolen: f64,
    /// The most steal time seen in one [`STEAL_SAMPLE`], in milliseconds of
    /// CPU time (both vCPUs together): a stall of that length lands in the
    /// latency tail of every request in flight, so it explains a p99 that
    /// processes here cannot.
    pub longest_steal_ms: f64,
}

impl CpuUse {
    /// "CPU: server 61%, load tool 30%, other processes 2% of all cores",
    /// and the hypervisor's steal time when it took any.
    pub fn describe(&self) -> String {
        let shares = self.describe_shares();
        if self.stolen > 0.0 {
            format!(
                "{shares}; stolen by the hypervisor {:.1}%, at most {:.0} ms of CPU time in one {} ms sample",
                self.stolen * 100.0,
                self.longest_steal_ms,
                STEAL_SAMPLE.as_millis()
            )
        } else {
            shares
        }
    }

    fn describe_shares(&self) -> String {
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

    /// The share that was not this tool's or the server's to use: other
    /// processes and the hypervisor.
    pub fn taken(&self) -> f64 {
        self.other + self.stolen
    }

    /// Whether other processes or the hypervisor took enough CPU to skew
    /// the figures.
    pub fn disturbed(&self) -> bool {
        self.server.is_some() && self.taken() >= BUSY_WARNING
    }
}

/// CPU accounting from a starting point.
pub struct Meter {
    server: Option<String>,
    start: CpuTicks,
    tool: u64,
    server_ticks: u64,
    steal_watch: Option<StealWatch>,
}

impl Meter {
    /// Starts counting (`None` without /proc).
    pub fn start(server: Option<u32>) -> Option<Meter> {
        let server = server.map(|pid| pid.to_string());
        let start = cpu_times()?;
        Some(Meter {
            start,
            tool: process_ticks("self")?,
            server_ticks: match &server {
                Some(pid) => process_ticks(pid).unwrap_or(0),
                None => 0,
            },
            server,
            steal_watch: StealWatch::start(start.steal),
        })
    }

    /// The shares since [`Meter::start`].
    pub fn read(&self) -> Option<CpuUse> {
        let now = cpu_times()?;
        let total = now.total.checked_sub(self.start.total)?;
        if total == 0 {
            return None;
        }
        let share = |ticks: u64| ticks as f64 / total as f64;
        let busy = now.busy.saturating_sub(self.start.busy);
        let stolen = now.steal.saturating_sub(self.start.steal);
        let tool = process_ticks("self")?.saturating_sub(self.tool);
        let server = match &self.server {
            Some(pid) => Some(process_ticks(pid)?.saturating_sub(self.server_ticks)),
            None => None,
        };
        let other = busy
            .saturating_sub(stolen)
            .saturating_sub(tool)
            .saturating_sub(server.unwrap_or(0));
        let longest_steal = self
            .steal_watch
            .as_ref()
            .map_or(stolen, |watch| watch.longest(now.steal));
        Some(CpuUse {
            server: server.map(share),
            tool: share(tool),
            other: share(other),
            stolen: share(stolen),
            longest_steal_ms: longest_steal.min(stolen) as f64 * 1000.0 / TICKS_PER_SECOND,
        })
    }
}

/// A thread that samples steal time every [`STEAL_SAMPLE`] and keeps the
/// largest amount seen in one sample; it stops when dropped. A plain
/// thread, so a busy tokio runtime cannot stretch its samples.
struct StealWatch {
    longest: Arc<AtomicU64>,
    /// The steal counter at the thread's latest sample.
    last: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl StealWatch {
    fn start(initial_steal: u64) -> Option<StealWatch> {
        let longest = Arc::new(AtomicU64::new(0));
        let last = Arc::new(AtomicU64::new(initial_steal));
        let stop = Arc::new(AtomicBool::new(false));
        let (thread_longest, thread_last, thread_stop) =
            (Arc::clone(&longest), Arc::clone(&last), Arc::clone(&stop));
        let thread = std::thread::Builder::new()
            .name("steal-watch".to_owned())
            .spawn(move || {
                while !thread_stop.load(Ordering::Relaxed) {
                    std::thread::sleep(STEAL_SAMPLE);
                    let Some(now) = cpu_times() else { return };
                    let before = thread_last.swap(now.steal, Ordering::Relaxed);
                    thread_longest.fetch_max(now.steal.saturating_sub(before), Ordering::Relaxed);
                }
            })
            .ok()?;
        Some(StealWatch {
            longest,
            last,
            stop,
            thread: Some(thread),
        })
    }

    /// The most steal ticks seen in one sample so far, counting the part
    /// sample since the latest one (`steal_now` is the counter now).
    fn longest(&self, steal_now: u64) -> u64 {
        let partial = steal_now.saturating_sub(self.last.load(Ordering::Relaxed));
        self.longest.load(Ordering::Relaxed).max(partial)
    }
}

impl Drop for StealWatch {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const STAT: &str = "cpu  1796147 147249 267361 6235440 18666 0 18404 16978 0 0\n\
                        cpu0 898073 73624 133680 3117720 9333 0 9202 8489 0 0\n";

    #[test]
    fn the_aggregate_line_gives_busy_total_and_steal() {
        let ticks = parse_cpu_line(STAT).expect("parsed");
        let total = 1_796_147 + 147_249 + 267_361 + 6_235_440 + 18_666 + 18_404 + 16_978;
        assert_eq!(
            ticks,
            CpuTicks {
                busy: total - 6_235_440 - 18_666,
                total,
                steal: 16_978,
            }
        );
    }

    #[test]
    fn a_kernel_without_steal_counts_none() {
        let ticks = parse_cpu_line("cpu  10 0 5 85 0\n").expect("parsed");
        assert_eq!((ticks.busy, ticks.total, ticks.steal), (15, 100, 0));
        assert_eq!(parse_cpu_line("cpu  10 x 5 85 0\n"), None);
        assert_eq!(parse_cpu_line("intr 1 2 3\n"), None);
    }

    #[test]
    fn steal_is_reported_only_when_there_was_some() {
        let mut cpu = CpuUse {
            server: Some(0.61),
            tool: 0.30,
            other: 0.02,
            stolen: 0.0,
            longest_steal_ms: 0.0,
        };
        assert_eq!(
            cpu.describe(),
            "CPU: server 61%, load tool 30%, other processes 2% of all cores"
        );
        cpu.stolen = 0.021;
        cpu.longest_steal_ms = 100.0;
        assert_eq!(
            cpu.describe(),
            "CPU: server 61%, load tool 30%, other processes 2% of all cores; \
             stolen by the hypervisor 2.1%, at most 100 ms of CPU time in one 100 ms sample"
        );
    }
}
