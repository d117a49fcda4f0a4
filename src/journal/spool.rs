//! Spool files: the documents of accepted jobs, one file each.
//!
//! Files are named by a random UUID, never by the job ID, so a hostile job
//! ID cannot name a path. A document is written to a hidden temporary name,
//! fsynced, renamed into place and the directory fsynced, so after a crash a
//! spool file either is complete or does not exist. Inline documents are
//! decoded from base64 in chunks while being hashed, so the checksum is
//! checked against exactly the bytes that will be printed.

use std::collections::HashSet;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::engine::general_purpose::STANDARD;
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

const CHUNK: usize = 64 * 1024;
/// The state and spool directories: documents and the journal are the
/// users' data, readable by the agent's user alone, whatever the umask.
const PRIVATE_DIR: u32 = 0o700;
/// Spool files (and the journal database).
pub(crate) const PRIVATE_FILE: u32 = 0o600;

/// The spool directory.
#[derive(Debug, Clone)]
pub struct Spool {
    dir: PathBuf,
}

/// Why a document could not be spooled, in the protocol's vocabulary.
#[derive(Debug, thiserror::Error)]
pub enum DocumentError {
    #[error("document.data: not valid base64 ({0})")]
    BadBase64(String),
    #[error("document is {actual} bytes, but the offer declared {declared}")]
    SizeMismatch { declared: u64, actual: u64 },
    #[error("document is larger than the limit of {limit} bytes")]
    TooLarge { limit: u64 },
    #[error("document sha256 is {actual}, but the offer declared {declared}")]
    ChecksumMismatch { declared: String, actual: String },
    #[error("fetching the document failed: {0}")]
    Fetch(String),
    #[error(transparent)]
    Local(#[from] Error),
}

/// What the bytes must match.
#[derive(Debug, Clone, Copy)]
pub struct Expect<'a> {
    pub size: u64,
    pub sha256: &'a str,
    pub limit: u64,
}

/// A spool file being written; it becomes visible only on `commit`.
pub struct SpoolWriter<'a> {
    spool: &'a Spool,
    name: String,
    tmp: PathBuf,
    file: Option<File>,
    hasher: Sha256,
    written: u64,
    expect: Expect<'a>,
}

impl Spool {
    /// Opens (and creates) the spool directory, removing leftovers of
    /// writes a crash interrupted.
    pub fn open(dir: PathBuf) -> Result<Spool> {
        private_dir(&dir)?;
        let entries = fs::read_dir(&dir).map_err(|source| Error::Spool {
            path: dir.clone(),
            source,
        })?;
        for entry in entries.flatten() {
            if entry.file_name().to_string_lossy().starts_with('.') {
                let _ = fs::remove_file(entry.path());
            }
        }
        Ok(Spool { dir })
    }

    /// The path of a committed spool file.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// Deletes a spool file; a missing file is not an error (crash replay).
    pub fn remove(&self, name: &str) {
        if let Err(e) = fs::remove_file(self.path(name)) {
            if e.kind() != io::ErrorKind::NotFound {
                tracing::warn!(file = name, error = %e, "could not delete spool file");
            }
        }
    }

    /// Names of all committed spool files.
    pub fn names(&self) -> Result<Vec<String>> {
        let entries = fs::read_dir(&self.dir).map_err(|source| self.err(&self.dir, source))?;
        Ok(entries
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| !n.starts_with('.'))
            .collect())
    }

    /// Deletes committed files not in `referenced` and older than `min_age`.
    pub fn remove_orphans(&self, referenced: &HashSet<String>, min_age: Duration) -> Result<()> {
        for name in self.names()? {
            let old_enough = fs::metadata(self.path(&name))
                .and_then(|m| m.modified())
                .map(|t| t.elapsed().unwrap_or_default() >= min_age)
                .unwrap_or(false);
            if old_enough && !referenced.contains(&name) {
                tracing::info!(file = %name, "removing orphaned spool file");
                self.remove(&name);
            }
        }
        Ok(())
    }

    /// Starts writing a new spool file.
    pub fn writer<'a>(&'a self, expect: Expect<'a>) -> Result<SpoolWriter<'a>, DocumentError> {
        if expect.size > expect.limit {
            return Err(DocumentError::TooLarge {
                limit: expect.limit,
            });
        }
        let name = uuid::Uuid::new_v4().to_string();
        let tmp = self.dir.join(format!(".{name}.tmp"));
        // A fresh random name: `create_new` also refuses to follow anything
        // planted under it.
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(PRIVATE_FILE)
            .open(&tmp)
            .map_err(|source| self.err(&tmp, source))?;
        Ok(SpoolWriter {
            spool: self,
            name,
            tmp,
            file: Some(file),
            hasher: Sha256::new(),
            written: 0,
            expect,
        })
    }

    /// Decodes inline base64 data into a new spool file and returns its name.
    pub fn write_base64(&self, data: &str, expect: Expect<'_>) -> Result<String, DocumentError> {
        let mut writer = self.writer(expect)?;
        let mut decoder = base64::read::DecoderReader::new(data.as_bytes(), &STANDARD);
        let mut buf = vec![0u8; CHUNK];
        loop {
            let n = decoder
                .read(&mut buf)
                .map_err(|e| DocumentError::BadBase64(e.to_string()))?;
            if n == 0 {
                break;
            }
            writer.write(&buf[..n])?;
        }
        writer.commit()
    }

    fn err(&self, path: &Path, source: io::Error) -> Error {
        Error::Spool {
            path: path.to_path_buf(),
            source,
        }
    }
}

/// Creates `dir` (and missing parents) as 0700, or narrows an existing one
/// that others could read. A directory the agent does not own and cannot
/// narrow is used as it is, with a warning: refusing to start would stop
/// printing over a permission an operator chose.
pub(crate) fn private_dir(dir: &Path) -> Result<()> {
    let err = |source| Error::Spool {
        path: dir.to_path_buf(),
        source,
    };
    fs::DirBuilder::new()
        .recursive(true)
        .mode(PRIVATE_DIR)
        .create(dir)
        .map_err(err)?;
    let mode = fs::metadata(dir).map_err(err)?.permissions().mode();
    if mode & 0o077 != 0 {
        if let Err(e) = fs::set_permissions(dir, fs::Permissions::from_mode(PRIVATE_DIR)) {
            tracing::warn!(path = %dir.display(), mode = format!("{:o}", mode & 0o777), error = %e,
                "directory is readable by others and cannot be narrowed to 0700");
        }
    }
    Ok(())
}

impl SpoolWriter<'_> {
    /// Appends bytes, refusing to grow past the declared size.
    pub fn write(&mut self, bytes: &[u8]) -> Result<(), DocumentError> {
        self.written += bytes.len() as u64;
        if self.written > self.expect.size {
            return Err(if self.written > self.expect.limit {
                DocumentError::TooLarge {
                    limit: self.expect.limit,
                }
            } else {
                DocumentError::SizeMismatch {
                    declared: self.expect.size,
                    actual: self.written,
                }
            });
        }
        self.hasher.update(bytes);
        let file = self.file.as_mut().expect("file is open until commit");
        file.write_all(bytes)
            .map_err(|source| DocumentError::Local(self.spool.err(&self.tmp, source)))
    }

    /// Checks size and checksum, makes the file durable and visible.
    pub fn commit(mut self) -> Result<String, DocumentError> {
        if self.written != self.expect.size {
            return Err(DocumentError::SizeMismatch {
                declared: self.expect.size,
                actual: self.written,
            });
        }
        let actual = hex::encode(std::mem::take(&mut self.hasher).finalize());
        if !actual.eq_ignore_ascii_case(self.expect.sha256) {
            return Err(DocumentError::ChecksumMismatch {
                declared: self.expect.sha256.to_string(),
                actual,
            });
        }
        let file = self.file.take().expect("file is open until commit");
        let local = |source| DocumentError::Local(self.spool.err(&self.tmp, source));
        file.sync_all().map_err(local)?;
        drop(file);
        let path = self.spool.path(&self.name);
        fs::rename(&self.tmp, &path).map_err(local)?;
        // The rename is durable only once the directory entry is.
        File::open(&self.spool.dir)
            .and_then(|d| d.sync_all())
            .map_err(local)?;
        Ok(std::mem::take(&mut self.name))
    }
}

impl Drop for SpoolWriter<'_> {
    fn drop(&mut self) {
        if self.file.is_some() || !self.name.is_empty() {
            let _ = fs::remove_file(&self.tmp);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;

    fn sha(bytes: &[u8]) -> String {
        hex::encode(Sha256::digest(bytes))
    }

    fn spool() -> (tempfile::TempDir, Spool) {
        let dir = tempfile::tempdir().unwrap();
        let spool = Spool::open(dir.path().join("spool")).unwrap();
        (dir, spool)
    }

    #[test]
    fn writes_decoded_bytes_durably() {
        let (_d, spool) = spool();
        let doc = b"%PDF-1.4 hello".repeat(10_000);
        let hash = sha(&doc);
        let data = STANDARD.encode(&doc);
        let name = spool
            .write_base64(
                &data,
                Expect {
                    size: doc.len() as u64,
                    sha256: &hash,
                    limit: 1 << 30,
                },
            )
            .unwrap();
        assert_eq!(fs::read(spool.path(&name)).unwrap(), doc);
        assert_eq!(spool.names().unwrap(), vec![name]);
    }

    #[test]
    fn every_mismatch_leaves_nothing_behind() {
        let (_d, spool) = spool();
        let doc = b"hello world";
        let hash = sha(doc);
        let data = STANDARD.encode(doc);
        let ok = Expect {
            size: doc.len() as u64,
            sha256: &hash,
            limit: 1000,
        };
        type Check = fn(&DocumentError) -> bool;
        let cases: Vec<(&str, Expect, Check)> = vec![
            ("!!notbase64", ok, |e| {
                matches!(e, DocumentError::BadBase64(_))
            }),
            (&data, Expect { size: 5, ..ok }, |e| {
                matches!(e, DocumentError::SizeMismatch { .. })
            }),
            (&data, Expect { size: 50, ..ok }, |e| {
                matches!(e, DocumentError::SizeMismatch { .. })
            }),
            (&data, Expect { limit: 5, ..ok }, |e| {
                matches!(e, DocumentError::TooLarge { .. })
            }),
            (&data, Expect { sha256: "00", ..ok }, |e| {
                matches!(e, DocumentError::ChecksumMismatch { .. })
            }),
        ];
        for (input, expect, check) in cases {
            let err = spool.write_base64(input, expect).unwrap_err();
            assert!(check(&err), "unexpected {err:?}");
        }
        assert!(fs::read_dir(spool.path("")).unwrap().next().is_none());
    }

    #[test]
    fn directories_and_documents_are_private_whatever_the_umask() {
        let d = tempfile::tempdir().unwrap();
        let loose = d.path().join("loose");
        fs::create_dir(&loose).unwrap();
        fs::set_permissions(&loose, fs::Permissions::from_mode(0o755)).unwrap();
        let spool = Spool::open(loose.join("a/spool")).unwrap();
        private_dir(&loose).unwrap();
        for dir in [loose.clone(), loose.join("a"), loose.join("a/spool")] {
            let mode = fs::metadata(&dir).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o700, "{}", dir.display());
        }
        let doc = b"secret";
        let hash = sha(doc);
        let name = spool
            .write_base64(
                &STANDARD.encode(doc),
                Expect {
                    size: doc.len() as u64,
                    sha256: &hash,
                    limit: 100,
                },
            )
            .unwrap();
        let mode = fs::metadata(spool.path(&name))
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o600);
    }

    #[test]
    fn open_removes_interrupted_writes() {
        let (_d, spool) = spool();
        fs::write(spool.path(".half.tmp"), b"x").unwrap();
        fs::write(spool.path("kept"), b"x").unwrap();
        let spool = Spool::open(spool.path("")).unwrap();
        assert_eq!(spool.names().unwrap(), vec!["kept".to_string()]);
    }
}
