//! The result table, its targets, and the JSON file.

use std::fmt::Write as _;

use serde_json::{Value, json};

use crate::driver::Measured;
use crate::server_side::ServerSide;

/// What a scenario's rate is compared with.
#[derive(Debug, Clone)]
pub struct Bound {
    pub name: String,
    pub rate: f64,
}

/// What a scenario must reach (issue #5's figures).
#[derive(Debug, Clone, Copy, Default)]
pub struct Target {
    pub min_ratio: Option<f64>,
    pub max_p99_ms: Option<f64>,
    /// The figure holds for a data set of this many users.
    pub at_users: Option<u64>,
}

impl Target {
    pub fn for_scenario(name: &str) -> Target {
        let ratio = |min| Target {
            min_ratio: Some(min),
            ..Target::default()
        };
        match name {
            "signup" => ratio(0.9),
            "login" => ratio(0.85),
            "refresh" => ratio(0.8),
            "jwks" | "discovery" => ratio(0.8),
            "userinfo" => Target {
                min_ratio: Some(0.5),
                max_p99_ms: Some(5.0),
                at_users: None,
            },
            "userinfo-under-signup" => Target {
                min_ratio: Some(0.5),
                max_p99_ms: Some(10.0),
                at_users: None,
            },
            "mgmt-get" | "users-by-email" => Target {
                min_ratio: None,
                max_p99_ms: Some(2.0),
                at_users: Some(1_000_000),
            },
            "search" => Target {
                min_ratio: None,
                max_p99_ms: Some(20.0),
                at_users: Some(1_000_000),
            },
            _ => Target::default(),
        }
    }

    fn describe(&self) -> String {
        let mut parts = Vec::new();
        if let Some(min) = self.min_ratio {
            parts.push(format!("≥{min:.2}×"));
        }
        if let Some(max) = self.max_p99_ms {
            parts.push(format!("p99≤{max}ms"));
        }
        if parts.is_empty() {
            "—".to_owned()
        } else {
            parts.join(" ")
        }
    }
}

/// The open-loop run a latency target is judged on.
#[derive(Debug, Clone)]
pub struct Paced {
    /// Steps per second offered.
    pub offered: f64,
    pub measured: Measured,
    /// The server's own histogram of the same run, when `/metrics` could be read.
    pub server_side: Option<ServerSide>,
}

impl Paced {
    pub fn summary(&self) -> String {
        let m = &self.measured;
        format!(
            "paced at {:.0}/s: {:.1}/s done, p50 {:.2} ms, p90 {:.2} ms, p99 {:.2} ms, max {:.1} ms, {} errors (the tool's timer woke idle workers {:.2} ms late at p99, not counted)",
            self.offered,
            m.rate(),
            m.quantile_ms(0.5),
            m.quantile_ms(0.9),
            m.quantile_ms(0.99),
            m.max_ms(),
            m.error_count(),
            m.send_lag_ms(0.99)
        )
    }
}

/// One scenario's outcome.
#[derive(Debug, Clone)]
pub struct Row {
    pub name: String,
    /// "req" or "flow": what one step is.
    pub unit: &'static str,
    pub measured: Measured,
    pub bound: Option<Bound>,
    pub target: Target,
    /// Users the server held (generated data set size), if known.
    pub users: Option<u64>,
    pub notes: Vec<String>,
    /// The open-loop run at a fraction of the closed-loop rate, for
    /// scenarios with a latency target.
    pub paced: Option<Paced>,
}

impl Row {
    /// The p99 the latency target is judged on: the paced run's if there
    /// is one, else the closed-loop run's.
    pub fn judged_p99_ms(&self) -> f64 {
        match &self.paced {
            Some(paced) => paced.measured.quantile_ms(0.99),
            None => self.measured.quantile_ms(0.99),
        }
    }

    fn all_errors(&self) -> u64 {
        self.measured.error_count()
            + self
                .paced
                .as_ref()
                .map_or(0, |paced| paced.measured.error_count())
    }

    pub fn ratio(&self) -> Option<f64> {
        let bound = self.bound.as_ref()?;
        (bound.rate > 0.0).then(|| self.measured.rate() / bound.rate)
    }

    /// `None` when there is no target; else whether every figure is met,
    /// with no errors.
    pub fn met(&self) -> Option<bool> {
        let target = self.target;
        if target.min_ratio.is_none() && target.max_p99_ms.is_none() {
            return None;
        }
        let ratio_ok = match target.min_ratio {
            Some(min) => self.ratio().is_some_and(|ratio| ratio >= min),
            None => true,
        };
        let p99_ok = match target.max_p99_ms {
            Some(max) => self.judged_p99_ms() <= max,
            None => true,
        };
        let interrupted = self.measured.interrupted
            || self
                .paced
                .as_ref()
                .is_some_and(|paced| paced.measured.interrupted);
        Some(ratio_ok && p99_ok && self.measured.ok > 0 && self.all_errors() == 0 && !interrupted)
    }

    /// The verdict, starred when the data set is smaller than the target's.
    fn verdict(&self) -> String {
        let Some(met) = self.met() else {
            return "—".to_owned();
        };
        let word = if met { "yes" } else { "NO" };
        match self.target.at_users {
            Some(needed) if self.users.unwrap_or(0) < needed => format!("{word}*"),
            _ => word.to_owned(),
        }
    }

    /// A one-line summary, printed as each scenario ends.
    pub fn summary(&self) -> String {
        let m = &self.measured;
        let mut line = format!(
            "{}: {:.1} {}/s over {:.1} s, p50 {:.2} ms, p99 {:.2} ms, {} errors",
            self.name,
            m.rate(),
            self.unit,
            m.seconds,
            m.quantile_ms(0.5),
            m.quantile_ms(0.99),
            m.error_count()
        );
        if let (Some(bound), Some(ratio)) = (&self.bound, self.ratio()) {
            let _ = write!(
                line,
                "; {:.2}× of {} ({:.1}/s)",
                ratio, bound.name, bound.rate
            );
        }
        line
    }
}

fn fmt_rate(rate: f64) -> String {
    if rate >= 100.0 {
        format!("{rate:.0}")
    } else {
        format!("{rate:.1}")
    }
}

/// The final table: one row per scenario, then its error details and notes.
pub fn table(rows: &[Row]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<22} {:>9} {:<19} {:>9} {:>6} {:>8} {:>8} {:>8} {:>8} {:>9} {:>8} {:>6}  {:<17} met",
        "scenario",
        "rate/s",
        "bound",
        "bound/s",
        "ratio",
        "p50 ms",
        "p90 ms",
        "p99 ms",
        "max ms",
        "paced p99",
        "ok",
        "errors",
        "target",
    );
    for row in rows {
        let m = &row.measured;
        let (bound_name, bound_rate) = match &row.bound {
            Some(bound) => (bound.name.clone(), fmt_rate(bound.rate)),
            None => ("—".to_owned(), "—".to_owned()),
        };
        let ratio = row
            .ratio()
            .map(|ratio| format!("{ratio:.2}"))
            .unwrap_or_else(|| "—".to_owned());
        let paced_p99 = row
            .paced
            .as_ref()
            .map(|paced| format!("{:.2}", paced.measured.quantile_ms(0.99)))
            .unwrap_or_else(|| "—".to_owned());
        let name = if row.unit == "flow" {
            format!("{} (flows)", row.name)
        } else {
            row.name.clone()
        };
        let _ = writeln!(
            out,
            "{:<22} {:>9} {:<19} {:>9} {:>6} {:>8.2} {:>8.2} {:>8.2} {:>8.1} {:>9} {:>8} {:>6}  {:<17} {}{}",
            name,
            fmt_rate(m.rate()),
            bound_name,
            bound_rate,
            ratio,
            m.quantile_ms(0.5),
            m.quantile_ms(0.9),
            m.quantile_ms(0.99),
            m.max_ms(),
            paced_p99,
            m.ok,
            row.all_errors(),
            row.target.describe(),
            row.verdict(),
            if m.interrupted { " (interrupted)" } else { "" }
        );
    }
    let starred = rows
        .iter()
        .filter(|row| row.verdict().ends_with('*'))
        .map(|row| row.name.as_str())
        .collect::<Vec<_>>();
    if !starred.is_empty() {
        let _ = writeln!(
            out,
            "* {}: the target is for a server holding 1,000,000 users (pass --generated N for a `claimset users generate` data set); this run's data set is smaller.",
            starred.join(", ")
        );
    }
    if rows.iter().any(|row| row.paced.is_some()) {
        let _ = writeln!(
            out,
            "rate and p50–max: closed loop, every connection always busy. paced p99: a second, open-loop run at a fraction of that rate (latency counted from when each request was due, or from when the tool's timer woke its idle connection; the timer's lag is printed, not counted); latency targets are judged on it."
        );
    }
    for row in rows {
        let runs = std::iter::once(("", &row.measured)).chain(
            row.paced
                .as_ref()
                .map(|paced| ("paced run: ", &paced.measured)),
        );
        for (label, measured) in runs {
            for (kind, count) in &measured.errors {
                let detail = measured
                    .first_errors
                    .get(kind)
                    .map(String::as_str)
                    .unwrap_or("");
                let _ = writeln!(
                    out,
                    "  {}: {label}{count} × {kind} — first: {detail}",
                    row.name
                );
            }
        }
        if let Some(paced) = &row.paced {
            let _ = writeln!(out, "  {}: {}", row.name, paced.summary());
            if let Some(server) = &paced.server_side {
                let _ = writeln!(out, "  {}: {}", row.name, server.summary());
            }
        }
        for note in &row.notes {
            let _ = writeln!(out, "  {}: {note}", row.name);
        }
    }
    out
}

/// A scenario as JSON.
pub fn row_json(row: &Row) -> Value {
    let m = &row.measured;
    json!({
        "scenario": row.name,
        "unit": row.unit,
        "ok": m.ok,
        "errors": m.error_count(),
        "errors_by_kind": m.errors,
        "first_errors": m.first_errors,
        "seconds": m.seconds,
        "rate_per_s": m.rate(),
        "latency_ms": {
            "p50": m.quantile_ms(0.5),
            "p90": m.quantile_ms(0.9),
            "p99": m.quantile_ms(0.99),
            "max": m.max_ms(),
            "mean": if m.ok > 0 { m.latency_us.mean() / 1000.0 } else { 0.0 },
        },
        "bound": row.bound.as_ref().map(|bound| json!({"name": bound.name, "rate_per_s": bound.rate})),
        "ratio": row.ratio(),
        "target": {
            "min_ratio": row.target.min_ratio,
            "max_p99_ms": row.target.max_p99_ms,
            "at_users": row.target.at_users,
        },
        "paced": row.paced.as_ref().map(|paced| json!({
            "offered_per_s": paced.offered,
            "rate_per_s": paced.measured.rate(),
            "ok": paced.measured.ok,
            "errors": paced.measured.error_count(),
            "errors_by_kind": paced.measured.errors,
            "latency_ms": {
                "p50": paced.measured.quantile_ms(0.5),
                "p90": paced.measured.quantile_ms(0.9),
                "p99": paced.measured.quantile_ms(0.99),
                "max": paced.measured.max_ms(),
            },
            "server_side": paced.server_side.as_ref().map(|server| json!({
                "requests": server.requests,
                "handler_p99_at_most_ms": server.p99_bound_ms.filter(|ms| ms.is_finite()),
                "within_target": server.within_target.map(|within| json!({
                    "bucket_ms": within.bound_ms,
                    "share": within.share,
                })),
            })),
            "send_lag_ms": {
                "p50": paced.measured.send_lag_ms(0.5),
                "p99": paced.measured.send_lag_ms(0.99),
            },
        })),
        "judged_p99_ms": row.judged_p99_ms(),
        "met": row.met(),
        "users_in_data_set": row.users,
        "interrupted": m.interrupted,
        "notes": row.notes,
    })
}
