//! `claimset hash calibrate`: measure this machine and choose Argon2id
//! parameters that make one hash take about a target time, at most the
//! memory the operator allows. The choice is a plain function of a timing
//! closure, so the rule is unit-tested without a clock.

use std::time::{Duration, Instant};

use argon2::{Algorithm, Argon2, Params, Version};

/// Argon2's smallest memory per lane, in KiB.
const MIN_KIB_PER_LANE: u32 = 8;
/// The OWASP password-storage floor for Argon2id (19 MiB, 2 passes); weaker
/// choices are printed with a warning.
const OWASP_MEMORY_KIB: u32 = 19 * 1024;
const OWASP_ITERATIONS: u32 = 2;
/// No more passes than this, however fast the machine.
const MAX_ITERATIONS: u32 = 64;

/// What calibration chose and measured.
#[derive(Debug, Clone, PartialEq)]
pub struct Calibration {
    /// Memory cost in KiB (the ceiling unless the target forced less).
    pub memory_kib: u32,
    /// Passes.
    pub iterations: u32,
    /// Lanes.
    pub parallelism: u32,
    /// Hashes allowed at once: one per CPU.
    pub max_concurrent: usize,
    /// One hash with the chosen parameters, as measured.
    pub measured: Duration,
    /// What was asked for.
    pub target: Duration,
    /// The memory ceiling.
    pub ceiling_kib: u32,
}

impl Calibration {
    /// Whether the choice is below the OWASP floor (m = 19 MiB, t = 2).
    pub fn below_owasp_floor(&self) -> bool {
        self.memory_kib < OWASP_MEMORY_KIB
            || (self.memory_kib == OWASP_MEMORY_KIB && self.iterations < OWASP_ITERATIONS)
    }

    /// The `[password_hashing]` section to paste into the configuration,
    /// with comments saying what was measured.
    pub fn to_toml(&self) -> String {
        let per_second = self.max_concurrent as f64 / self.measured.as_secs_f64().max(1e-9);
        let mut text = format!(
            "# claimset hash calibrate: Argon2id, target {} ms, memory at most {} KiB\n\
             # measured {} ms per hash on this machine; about {per_second:.0} hashes/s \
             with {} at once\n",
            self.target.as_millis(),
            self.ceiling_kib,
            self.measured.as_millis(),
            self.max_concurrent,
        );
        if self.memory_kib < self.ceiling_kib {
            text.push_str(
                "# note: one pass at the ceiling takes longer than the target, so memory is lower\n",
            );
        }
        if self.below_owasp_floor() {
            text.push_str(
                "# warning: weaker than OWASP's floor for Argon2id (19456 KiB, 2 passes); \
                 raise --target-ms or the memory ceiling\n",
            );
        }
        text.push_str(&format!(
            "[password_hashing]\nmemory_kib = {}\niterations = {}\nparallelism = {}\nmax_concurrent = {}\n",
            self.memory_kib, self.iterations, self.parallelism, self.max_concurrent
        ));
        text
    }
}

/// Why calibration could not finish.
#[derive(Debug, thiserror::Error)]
pub enum CalibrateError {
    /// Argon2 refused the parameters (for example a ceiling below its minimum).
    #[error("Argon2 parameters refused: {0}")]
    Params(String),
}

/// Chooses parameters: `time(memory_kib, iterations)` measures one hash.
/// Memory stays at the ceiling and passes are added until a hash takes
/// about `target`; when even one pass is too slow, memory shrinks instead.
pub fn choose(
    target: Duration,
    ceiling_kib: u32,
    parallelism: u32,
    max_concurrent: usize,
    mut time: impl FnMut(u32, u32) -> Result<Duration, CalibrateError>,
) -> Result<Calibration, CalibrateError> {
    let floor_kib = MIN_KIB_PER_LANE * parallelism.max(1);
    if ceiling_kib < floor_kib {
        return Err(CalibrateError::Params(format!(
            "memory ceiling {ceiling_kib} KiB is below Argon2's minimum of {floor_kib} KiB"
        )));
    }
    let one_pass = time(ceiling_kib, 1)?;
    let (memory_kib, iterations) = if one_pass > target {
        // Time grows about linearly with memory: scale it down, in whole MiB when possible.
        let scaled = (u64::from(ceiling_kib) * target.as_nanos().max(1) as u64
            / one_pass.as_nanos().max(1) as u64) as u32;
        let rounded = if scaled >= 1024 {
            scaled / 1024 * 1024
        } else {
            scaled
        };
        (rounded.clamp(floor_kib, ceiling_kib), 1)
    } else {
        let two_passes = time(ceiling_kib, 2)?;
        let per_pass = two_passes
            .saturating_sub(one_pass)
            .max(Duration::from_micros(1));
        let fixed = one_pass.saturating_sub(per_pass);
        let passes = (target.saturating_sub(fixed).as_secs_f64() / per_pass.as_secs_f64()).round();
        (ceiling_kib, (passes as u32).clamp(1, MAX_ITERATIONS))
    };
    let measured = time(memory_kib, iterations)?;
    Ok(Calibration {
        memory_kib,
        iterations,
        parallelism,
        max_concurrent,
        measured,
        target,
        ceiling_kib,
    })
}

/// Times one real Argon2id hash on this thread: the fastest of `runs`
/// (the least disturbed by other work on the machine).
pub fn time_argon2(
    memory_kib: u32,
    iterations: u32,
    parallelism: u32,
    runs: usize,
) -> Result<Duration, CalibrateError> {
    let params = Params::new(memory_kib, iterations, parallelism, Some(32))
        .map_err(|err| CalibrateError::Params(err.to_string()))?;
    let argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
    let salt = [7u8; 16];
    let mut output = [0u8; 32];
    let mut fastest = Duration::MAX;
    for _ in 0..runs.max(1) {
        let started = Instant::now();
        argon2
            .hash_password_into(b"calibration password", &salt, &mut output)
            .map_err(|err| CalibrateError::Params(err.to_string()))?;
        fastest = fastest.min(started.elapsed());
    }
    Ok(fastest)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A machine where a hash costs `fixed` plus `ns_per_kib_pass` per KiB per pass.
    fn machine(
        fixed: Duration,
        ns_per_kib_pass: u64,
    ) -> impl FnMut(u32, u32) -> Result<Duration, CalibrateError> {
        move |memory, passes| {
            Ok(fixed
                + Duration::from_nanos(ns_per_kib_pass * u64::from(memory) * u64::from(passes)))
        }
    }

    #[test]
    fn passes_are_added_at_the_ceiling_until_the_target() {
        // 19456 KiB * 1000 ns = 19.5 ms per pass, 1 ms fixed: 250 ms ≈ 13 passes.
        let chosen = choose(
            Duration::from_millis(250),
            19_456,
            1,
            2,
            machine(Duration::from_millis(1), 1000),
        )
        .unwrap();
        assert_eq!((chosen.memory_kib, chosen.iterations), (19_456, 13));
        let error = chosen.measured.as_secs_f64() / 0.250 - 1.0;
        assert!(error.abs() < 0.05, "{:?}", chosen.measured);
        assert!(!chosen.below_owasp_floor());
    }

    #[test]
    fn a_slow_machine_gets_less_memory_and_one_pass() {
        // One pass at 64 MiB takes 655 ms: memory scales down to fit 100 ms.
        let chosen = choose(
            Duration::from_millis(100),
            65_536,
            1,
            1,
            machine(Duration::ZERO, 10_000),
        )
        .unwrap();
        assert_eq!(chosen.iterations, 1);
        assert_eq!(chosen.memory_kib, 9 * 1024);
        assert!(chosen.measured <= Duration::from_millis(100));
        assert!(chosen.to_toml().contains("memory is lower"));
        assert!(chosen.below_owasp_floor());
        assert!(chosen.to_toml().contains("warning: weaker than OWASP"));
    }

    #[test]
    fn passes_are_capped_and_at_least_one() {
        let fast = choose(
            Duration::from_secs(10),
            1024,
            1,
            1,
            machine(Duration::ZERO, 1),
        )
        .unwrap();
        assert_eq!(fast.iterations, MAX_ITERATIONS);
        let barely = choose(
            Duration::from_millis(15),
            1024,
            1,
            1,
            machine(Duration::ZERO, 10_000),
        )
        .unwrap();
        assert_eq!((barely.memory_kib, barely.iterations), (1024, 1));
    }

    #[test]
    fn a_ceiling_below_argon2s_minimum_is_refused() {
        let err = choose(
            Duration::from_millis(10),
            4,
            1,
            1,
            machine(Duration::ZERO, 1),
        );
        assert!(matches!(err, Err(CalibrateError::Params(_))));
    }

    #[test]
    fn the_output_is_a_config_section() {
        let chosen = choose(
            Duration::from_millis(250),
            19_456,
            1,
            2,
            machine(Duration::from_millis(1), 1000),
        )
        .unwrap();
        let table: toml::Table = chosen.to_toml().parse().unwrap();
        let section = table["password_hashing"].as_table().unwrap();
        assert_eq!(section["memory_kib"].as_integer(), Some(19_456));
        assert_eq!(section["iterations"].as_integer(), Some(13));
        assert_eq!(section["parallelism"].as_integer(), Some(1));
        assert_eq!(section["max_concurrent"].as_integer(), Some(2));
    }

    #[test]
    fn real_argon2_is_timed() {
        let took = time_argon2(64, 1, 1, 2).unwrap();
        assert!(took > Duration::ZERO);
        assert!(time_argon2(4, 1, 1, 1).is_err());
    }
}
