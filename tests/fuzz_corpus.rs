//! Replays the committed fuzz inputs through the fuzz targets' own entry
//! points: the corpus (`fuzz/corpus/<target>/`) and every crash fuzzing
//! found (`fuzz/regressions/<target>/`). So they keep guarding in the
//! normal test suite, without libFuzzer or a nightly feature.
//!
//! The entry points are compiled in from `fuzz/src/lib.rs` rather than
//! depended on: the fuzz crate is a workspace of its own that links
//! libFuzzer.

use std::path::{Path, PathBuf};

use spoolcast_agent::engine::EngineError;

#[path = "../fuzz/src/lib.rs"]
mod entries;

/// The files of `fuzz/<dir>/<target>/`, none if it does not exist.
fn inputs(dir: &str, target: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz")
        .join(dir)
        .join(target);
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .map(|e| e.expect("a readable fuzz input directory").path())
        .collect();
    files.sort();
    files
}

/// Every target's inputs, file by file; a failure names the file. Looping
/// over the entry points' own list means a new target cannot be left out.
#[test]
fn every_committed_fuzz_input_passes() {
    for (target, entry) in entries::TARGETS {
        let corpus = inputs("corpus", target);
        assert!(!corpus.is_empty(), "fuzz/corpus/{target} is empty");
        for file in corpus.into_iter().chain(inputs("regressions", target)) {
            let data = std::fs::read(&file).expect("a readable corpus file");
            if std::panic::catch_unwind(|| entry(&data)).is_err() {
                panic!(
                    "{} fails; reproduce with: cd fuzz && RUSTC_BOOTSTRAP=1 cargo fuzz run {target} {}",
                    file.display(),
                    file.display()
                );
            }
        }
    }
}

/// ipp 8.0.0 panics (slice out of range) on a textWithLanguage value whose
/// inner language length runs past the value; the `ipp_response` target
/// found it. The engine takes it as a response that does not parse.
#[test]
fn a_text_with_language_value_cut_short_is_a_malformed_response() {
    let mut response = vec![1, 1, 0, 0, 0, 0, 0, 1, 0x01];
    response.extend([0x35, 0, 14]);
    response.extend(b"status-message");
    // A 4-byte value whose language claims 255 bytes.
    response.extend([0, 4, 0, 0xff, b'e', b'n', 0x03]);
    match entries::parse_ipp(&response) {
        Err(EngineError::Unreachable(m)) => assert!(m.contains("malformed"), "{m}"),
        other => panic!("{:?}", other.err()),
    }
}
