//! `cargo-paranoid`: run as `cargo paranoid …` (cargo passes `paranoid` first) or directly.

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    std::process::exit(cargo_paranoid::cli::run(&args));
}
