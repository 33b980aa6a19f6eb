//! The server's own view of a paced run. The tool's latency includes time
//! the server never saw: a response waiting for the tool's task to be
//! polled, on the same two cores. Reading the server's request-duration
//! histogram from `/metrics` before and after the run shows how long its
//! handlers took for the same requests, so a report can tell the two apart.

use std::io::BufRead;

use prometheus_parse::{Scrape, Value};

/// The histogram the server records every request in (see `telemetry.rs`).
const REQUEST_DURATION: &str = "claimset_http_request_duration_seconds";

/// The route label a scenario's requests are recorded under, for the
/// scenarios with a latency target (the only ones run paced).
pub fn route_of(scenario: &str) -> Option<&'static str> {
    match scenario {
        "userinfo" | "userinfo-under-signup" => Some("/userinfo"),
        "mgmt-get" => Some("/api/v2/users/{id}"),
        "users-by-email" => Some("/api/v2/users-by-email"),
        "search" => Some("/api/v2/users"),
        _ => None,
    }
}

/// Cumulative bucket counts of one route, summed over methods and statuses,
/// in bucket order: `(upper bound in seconds, requests at or under it)`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RouteHistogram {
    buckets: Vec<(f64, f64)>,
}

impl RouteHistogram {
    /// Reads `route`'s request durations out of a Prometheus text scrape.
    /// A route with no requests yet has an empty histogram.
    pub fn from_scrape(text: &str, route: &str) -> Result<Self, String> {
        let masked = mask_braces_in_quotes(text);
        let route = route.replace('{', "<").replace('}', ">");
        let scrape = Scrape::parse(masked.as_bytes().lines())
            .map_err(|err| format!("unreadable /metrics: {err}"))?;
        let mut buckets: Vec<(f64, f64)> = Vec::new();
        for sample in scrape.samples {
            if sample.metric != REQUEST_DURATION
                || sample.labels.get("route") != Some(route.as_str())
            {
                continue;
            }
            let Value::Histogram(counts) = sample.value else {
                continue;
            };
            for count in counts {
                match buckets.iter_mut().find(|(le, _)| *le == count.less_than) {
                    Some((_, total)) => *total += count.count,
                    None => buckets.push((count.less_than, count.count)),
                }
            }
        }
        buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
        Ok(Self { buckets })
    }

    /// The requests recorded after `earlier` (a scrape of the same server).
    pub fn since(&self, earlier: &RouteHistogram) -> RouteHistogram {
        let buckets = self
            .buckets
            .iter()
            .map(|&(le, count)| {
                let before = earlier
                    .buckets
                    .iter()
                    .find(|(earlier_le, _)| *earlier_le == le)
                    .map_or(0.0, |&(_, count)| count);
                (le, (count - before).max(0.0))
            })
            .collect();
        RouteHistogram { buckets }
    }

    /// How many requests it holds.
    pub fn count(&self) -> f64 {
        self.buckets.last().map_or(0.0, |&(_, count)| count)
    }

    /// The smallest bucket bound (ms) that at least `quantile` of the
    /// requests finished under: the histogram's resolution is its buckets,
    /// so this is an upper bound on the true quantile. `None` when empty;
    /// infinite when the quantile lies past the last finite bucket.
    pub fn quantile_bound_ms(&self, quantile: f64) -> Option<f64> {
        let total = self.count();
        if total <= 0.0 {
            return None;
        }
        self.buckets
            .iter()
            .find(|&&(_, count)| count >= quantile * total)
            .map(|&(le, _)| le * 1000.0)
    }

    /// The share of requests that finished within the largest bucket bound
    /// at or under `ms`, with that bound: a histogram cannot say more, and
    /// a report must not call "within 10 ms" "within 20 ms". `None` when
    /// empty or when no bucket is that small.
    pub fn share_within_ms(&self, ms: f64) -> Option<Within> {
        let total = self.count();
        if total <= 0.0 {
            return None;
        }
        self.buckets
            .iter()
            .rfind(|&&(le, _)| le * 1000.0 <= ms)
            .map(|&(le, count)| Within {
                bound_ms: le * 1000.0,
                share: count / total,
            })
    }
}

/// A share of requests and the bucket bound (ms) it was read at.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Within {
    pub bound_ms: f64,
    pub share: f64,
}

/// prometheus-parse 0.2.5 reads a label set up to its first `}`, so a
/// quoted label value holding a brace (the route `/api/v2/users/{id}`)
/// makes the whole sample unreadable. Braces inside quoted values become
/// `<` and `>` before parsing, and the wanted route is masked the same way.
fn mask_braces_in_quotes(text: &str) -> String {
    let mut masked = String::with_capacity(text.len());
    let mut in_quotes = false;
    let mut escaped = false;
    for ch in text.chars() {
        let out = match ch {
            _ if escaped => {
                escaped = false;
                ch
            }
            '\\' if in_quotes => {
                escaped = true;
                ch
            }
            '"' => {
                in_quotes = !in_quotes;
                ch
            }
            '\n' => {
                // A value never spans lines; a stray quote must not leak.
                in_quotes = false;
                ch
            }
            '{' if in_quotes => '<',
            '}' if in_quotes => '>',
            _ => ch,
        };
        masked.push(out);
    }
    masked
}

/// What the server's histogram says about one paced run.
#[derive(Debug, Clone, PartialEq)]
pub struct ServerSide {
    /// Requests the server recorded on the route during the run (warm-up included).
    pub requests: f64,
    /// Upper bound (ms) of the p99 of its handler time.
    pub p99_bound_ms: Option<f64>,
    /// The p99 bound (ms) of the scenario's target.
    pub target_ms: f64,
    /// Share of requests whose handler time was within the target's p99
    /// bound, read at the largest bucket not past it.
    pub within_target: Option<Within>,
}

impl ServerSide {
    /// Compares two scrapes taken around a run.
    pub fn between(before: &RouteHistogram, after: &RouteHistogram, target_ms: f64) -> Self {
        let run = after.since(before);
        ServerSide {
            requests: run.count(),
            p99_bound_ms: run.quantile_bound_ms(0.99),
            target_ms,
            within_target: run.share_within_ms(target_ms),
        }
    }

    /// One line for the report.
    pub fn summary(&self) -> String {
        let target_ms = self.target_ms;
        let p99 = match self.p99_bound_ms {
            Some(ms) if ms.is_finite() => format!("≤ {ms} ms"),
            Some(_) => "past its last bucket".to_owned(),
            None => "— (no requests recorded)".to_owned(),
        };
        let within = self.within_target.map_or_else(String::new, |within| {
            let bound = within.bound_ms;
            let short_of_target = if bound < target_ms {
                format!(" (the largest bucket under the {target_ms} ms target)")
            } else {
                String::new()
            };
            format!(
                ", {:.2} % within {bound} ms{short_of_target}",
                within.share * 100.0
            )
        });
        format!(
            "server-side (its own request histogram from /metrics, {:.0} requests, warm-up included): handler p99 {p99}{within}",
            self.requests
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scrape(get_counts: [u64; 4], post_counts: [u64; 4]) -> String {
        let bounds = ["0.001", "0.002", "0.005", "+Inf"];
        let mut text = String::from("# TYPE claimset_http_request_duration_seconds histogram\n");
        for (method, counts) in [("GET", get_counts), ("POST", post_counts)] {
            for (le, count) in bounds.iter().zip(counts) {
                text.push_str(&format!(
                    "claimset_http_request_duration_seconds_bucket{{method=\"{method}\",route=\"/userinfo\",status=\"200\",le=\"{le}\"}} {count}\n"
                ));
            }
        }
        // Another route's requests must not be counted.
        text.push_str("claimset_http_request_duration_seconds_bucket{method=\"GET\",route=\"/jwks\",status=\"200\",le=\"+Inf\"} 999\n");
        text
    }

    #[test]
    fn a_route_sums_its_methods_and_a_run_is_the_difference_of_two_scrapes() {
        let before = RouteHistogram::from_scrape(&scrape([10, 10, 10, 10], [0; 4]), "/userinfo")
            .expect("parses");
        assert_eq!(before.count(), 10.0);
        // 100 new GETs and 100 new POSTs: 180 within 1 ms, 198 within 2 ms,
        // 200 within 5 ms.
        let after = RouteHistogram::from_scrape(
            &scrape([100, 108, 110, 110], [100, 100, 100, 100]),
            "/userinfo",
        )
        .expect("parses");
        let run = ServerSide::between(&before, &after, 2.0);
        assert_eq!(run.requests, 200.0);
        assert_eq!(run.p99_bound_ms, Some(2.0));
        assert_eq!(
            run.within_target,
            Some(Within {
                bound_ms: 2.0,
                share: 198.0 / 200.0
            })
        );
    }

    #[test]
    fn the_p99_bound_moves_to_the_bucket_holding_the_ninety_ninth_percentile() {
        let before = RouteHistogram::default();
        let after = RouteHistogram::from_scrape(&scrape([90, 98, 100, 100], [0; 4]), "/userinfo")
            .expect("parses");
        let run = ServerSide::between(&before, &after, 2.0);
        assert_eq!(run.p99_bound_ms, Some(5.0));
        assert_eq!(
            run.within_target,
            Some(Within {
                bound_ms: 2.0,
                share: 0.98
            })
        );
        // A 4 ms target is read at the 2 ms bucket, and the report says so.
        let between_buckets = ServerSide::between(&before, &after, 4.0);
        assert_eq!(
            between_buckets.within_target,
            Some(Within {
                bound_ms: 2.0,
                share: 0.98
            })
        );
        let line = between_buckets.summary();
        assert!(
            line.contains("98.00 % within 2 ms (the largest bucket under the 4 ms target)"),
            "{line}"
        );
        let slow = RouteHistogram::from_scrape(&scrape([1, 1, 1, 100], [0; 4]), "/userinfo")
            .expect("parses");
        let run = ServerSide::between(&before, &slow, 2.0);
        assert_eq!(run.p99_bound_ms, Some(f64::INFINITY));
        assert!(run.summary().contains("past its last bucket"));
    }

    #[test]
    fn a_route_whose_label_holds_braces_is_read() {
        let text = scrape([5, 7, 9, 9], [0; 4])
            .replace("route=\"/userinfo\"", "route=\"/api/v2/users/{id}\"");
        let histogram = RouteHistogram::from_scrape(&text, "/api/v2/users/{id}").expect("parses");
        assert_eq!(histogram.count(), 9.0);
        assert_eq!(histogram.quantile_bound_ms(0.5), Some(1.0));
        // An escaped quote inside a value does not end it.
        let escaped = text.replace("status=\"200\"", "status=\"2\\\"{0}\"");
        let histogram =
            RouteHistogram::from_scrape(&escaped, "/api/v2/users/{id}").expect("parses");
        assert_eq!(histogram.count(), 9.0);
    }

    #[test]
    fn a_route_without_requests_has_no_quantile() {
        let empty =
            RouteHistogram::from_scrape(&scrape([0; 4], [0; 4]), "/api/v2/users").expect("parses");
        let run = ServerSide::between(&RouteHistogram::default(), &empty, 2.0);
        assert_eq!(run.requests, 0.0);
        assert_eq!(run.p99_bound_ms, None);
        assert!(run.summary().contains("no requests recorded"));
    }
}
