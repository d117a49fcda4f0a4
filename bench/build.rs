//! Build script: tells the shared test support where the agent binary is.
//!
//! `tests/support/agent.rs` names the agent through
//! `env!("CARGO_BIN_EXE_spoolcast-agent")`, which cargo only sets for the
//! root package's own tests. The bench always measures the release agent,
//! so both that variable and `SPOOLCAST_BENCH_TARGET` point into
//! `<target>/release` of this build's target dir (`OUT_DIR` is
//! `<target>/<profile>/build/<pkg>-<hash>/out`), whatever profile the bench
//! itself was built with; the bench builds the agent there before it runs.

use std::path::Path;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    let out = std::env::var("OUT_DIR").expect("cargo sets OUT_DIR");
    let target = Path::new(&out)
        .ancestors()
        .nth(4)
        .expect("OUT_DIR is <target>/<profile>/build/<pkg>/out");
    println!(
        "cargo:rustc-env=CARGO_BIN_EXE_spoolcast-agent={}",
        target.join("release").join("spoolcast-agent").display()
    );
    println!(
        "cargo:rustc-env=SPOOLCAST_BENCH_TARGET={}",
        target.display()
    );
}
