//! `cargo-paranoid`: run as `cargo paranoid …` (cargo passes `paranoid` first) or directly.

/// Syntax trees are many small allocations made and freed on several threads; mimalloc's
/// per-thread free lists cut the allocator's share of a run (glibc's was about a fifth).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    std::process::exit(cargo_paranoid::cli::run(&args));
}
