//! Item 7: binary sizes. The release agent this run built (x86_64) and
//! every cross-built binary in `dist/` (from `cross/build.sh`), against the
//! 8 MiB budget the release profile was tuned for (README, "ARM builds"),
//! which applies to the agent's device targets; the hub binaries (x86_64
//! and the opt-in aarch64 one) are listed without a budget.

use super::Ctx;
use crate::procfs::MIB;
use crate::report::{ItemResult, Row};

const DEVICE_BUDGET_MIB: f64 = 8.0;

pub async fn run(ctx: &Ctx) -> anyhow::Result<ItemResult> {
    let mut out = ItemResult::default();
    let agent = std::fs::metadata(ctx.agent_bin())?.len();
    out.row(Row::new(
        7,
        "spoolcast-agent, x86_64, target/release (this run)",
        agent as f64 / MIB,
        "MiB",
    ));
    let hub = ctx.target.join("release").join("spoolcast-hub");
    if let Ok(m) = std::fs::metadata(&hub) {
        out.row(Row::new(
            7,
            "spoolcast-hub, x86_64, target/release",
            m.len() as f64 / MIB,
            "MiB",
        ));
    }
    let dist = ctx.root.join("dist");
    let mut found: Vec<_> = std::fs::read_dir(&dist)
        .map(|d| d.filter_map(Result::ok).map(|e| e.path()).collect())
        .unwrap_or_default();
    found.sort();
    if found.is_empty() {
        out.note(format!(
            "no cross-built binaries in {} (cross/build.sh makes them)",
            dist.display()
        ));
    }
    for path in found {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let size = std::fs::metadata(&path)?.len() as f64 / MIB;
        let row = Row::new(7, format!("dist/{name}"), size, "MiB");
        // The budget is the agent's on devices; the hub's aarch64 build is
        // for ARM servers and has none.
        let device = name.starts_with("spoolcast-agent-")
            && (name.contains("aarch64") || name.contains("armv7"));
        out.row(if device {
            row.at_most(DEVICE_BUDGET_MIB)
        } else {
            row
        });
    }
    out.note("dist/ binaries are measured as found (cross/build.sh, Debian rustc-web), not rebuilt by the bench; all are stripped release builds (the workspace profile in Cargo.toml: fat LTO, opt-level \"s\", sha2 at 3).");
    Ok(out)
}
