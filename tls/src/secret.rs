//! Reading secrets (passwords, keys, SNMP communities) from files, bounded.
//!
//! A secret file holds one short secret. Reading whatever a path names in
//! full would let a wrong path (a log file, `/dev/zero`) exhaust memory at
//! start, or a FIFO nobody writes to hang it; so the file is opened without
//! blocking and at most [`MAX_SECRET_FILE`] bytes are read: a longer file
//! is an error that says so.

use std::fs::OpenOptions;
use std::io::{self, Read};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// The largest secret file read, in bytes: far above any password or key.
pub const MAX_SECRET_FILE: u64 = 64 * 1024;

/// The file's bytes, at most [`MAX_SECRET_FILE`] of them.
pub fn read_secret(path: &Path) -> io::Result<Vec<u8>> {
    let file = OpenOptions::new()
        .read(true)
        // Regular files ignore it; a FIFO without a writer reads as empty
        // instead of blocking the daemon's start.
        .custom_flags(libc::O_NONBLOCK)
        .open(path)?;
    let mut bytes = Vec::new();
    match file.take(MAX_SECRET_FILE + 1).read_to_end(&mut bytes) {
        Ok(_) => {}
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
        Err(e) => return Err(e),
    }
    if bytes.len() as u64 > MAX_SECRET_FILE {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "longer than {} KiB, so not a secret file (it holds one password or key)",
                MAX_SECRET_FILE / 1024
            ),
        ));
    }
    Ok(bytes)
}

/// The file's first line without its line ending (so a file written by
/// `echo` works; other whitespace stays significant).
pub fn read_secret_line(path: &Path) -> io::Result<String> {
    let bytes = read_secret(path)?;
    let text = String::from_utf8(bytes)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "not UTF-8 text"))?;
    Ok(text.lines().next().unwrap_or_default().to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir() -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "spoolcast-secret-test-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn the_first_line_is_the_secret() {
        let path = dir().join("pw");
        std::fs::write(&path, "s3cret \r\nsecond line\n").unwrap();
        assert_eq!(read_secret_line(&path).unwrap(), "s3cret ");
        std::fs::write(&path, "").unwrap();
        assert_eq!(read_secret_line(&path).unwrap(), "");
    }

    #[test]
    fn an_endless_or_huge_file_is_refused_after_the_bound() {
        let err = read_secret(Path::new("/dev/zero")).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        assert!(err.to_string().contains("64 KiB"), "{err}");
        let path = dir().join("big");
        std::fs::write(&path, vec![b'a'; MAX_SECRET_FILE as usize + 1]).unwrap();
        assert!(read_secret(&path).is_err());
        std::fs::write(&path, vec![b'a'; MAX_SECRET_FILE as usize]).unwrap();
        assert_eq!(read_secret(&path).unwrap().len(), MAX_SECRET_FILE as usize);
    }

    #[test]
    fn a_fifo_nobody_writes_reads_as_empty_instead_of_hanging() {
        let path = dir().join("fifo");
        let _ = std::fs::remove_file(&path);
        let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: a valid NUL-terminated path; mkfifo only creates a node.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        assert_eq!(read_secret_line(&path).unwrap(), "");
    }
}
