//! The `claimset` binary: parse the command line and hand over to [`claimset::cli`].

/// jemalloc instead of glibc malloc: at a million users it served the
/// Management reads 1.3–1.5× and `name:jo*` search 2.2× faster and peaked
/// 60 MB lower under load (glibc kept freed memory in per-thread arenas);
/// see BENCHMARKS.md.
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> std::process::ExitCode {
    claimset::cli::main()
}
