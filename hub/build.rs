//! Build script: tells the integration tests where the agent binary is.
//!
//! `CARGO_BIN_EXE_spoolcast-agent` is only set by cargo for the root
//! package's own tests. The hub's tests reuse `tests/support/` (whose agent
//! helper reads that variable), so it is set here to the agent binary of the
//! same target dir and profile: `OUT_DIR` is
//! `<target>/<profile>/build/<pkg>-<hash>/out`. The tests build the agent
//! first if it is missing (see `tests/common/mod.rs`).

use std::path::Path;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    let out = std::env::var("OUT_DIR").expect("cargo sets OUT_DIR");
    let profile_dir = Path::new(&out)
        .ancestors()
        .nth(3)
        .expect("OUT_DIR is <target>/<profile>/build/<pkg>/out");
    println!(
        "cargo:rustc-env=CARGO_BIN_EXE_spoolcast-agent={}",
        profile_dir.join("spoolcast-agent").display()
    );
}
