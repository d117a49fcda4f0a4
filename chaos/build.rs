//! Build script: tells the shared test support, and the suite, where the
//! release binaries of the agent and the hub are.
//!
//! `tests/support/agent.rs` names the agent through
//! `env!("CARGO_BIN_EXE_spoolcast-agent")`, which cargo only sets for the
//! root package's own tests. The suite always drives release builds (what
//! ships), so both binaries are looked up in `<target>/release` of this
//! build's target dir (`OUT_DIR` is `<target>/<profile>/build/<pkg>/out`),
//! whatever profile the suite itself was built with; the suite builds them
//! there before it starts.

use std::path::Path;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    let out = std::env::var("OUT_DIR").expect("cargo sets OUT_DIR");
    let release = Path::new(&out)
        .ancestors()
        .nth(4)
        .expect("OUT_DIR is <target>/<profile>/build/<pkg>/out")
        .join("release");
    println!(
        "cargo:rustc-env=CARGO_BIN_EXE_spoolcast-agent={}",
        release.join("spoolcast-agent").display()
    );
    println!(
        "cargo:rustc-env=SPOOLCAST_CHAOS_HUB_BIN={}",
        release.join("spoolcast-hub").display()
    );
}
