//! The pgpulse binary: CLI, configuration, wiring, signals and shutdown.

fn main() {
    println!("pgpulse {}", env!("CARGO_PKG_VERSION"));
}
