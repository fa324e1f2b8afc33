//! A log file with a size bound: past `max_bytes` the file is moved to
//! `FILE.1` (replacing the one before) and a new one is started, so a node
//! keeps at most twice `max_bytes` of log whatever its peerlets write.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// Each log file's largest size before it is rotated: 8 MiB.
pub const MAX_LOG_BYTES: u64 = 8 << 20;

/// An append-only file that rotates itself (see the module docs).
pub struct RotatingFile {
    path: PathBuf,
    max_bytes: u64,
    file: File,
    written: u64,
}

impl RotatingFile {
    /// Opens `path` for appending (creating it), counting what it holds.
    pub fn open(path: &Path, max_bytes: u64) -> io::Result<RotatingFile> {
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        let written = file.metadata()?.len();
        Ok(RotatingFile {
            path: path.to_path_buf(),
            max_bytes,
            file,
            written,
        })
    }

    /// `FILE.1`: where the previous file goes.
    pub fn previous(path: &Path) -> PathBuf {
        let mut name = path.as_os_str().to_owned();
        name.push(".1");
        PathBuf::from(name)
    }

    fn rotate(&mut self) -> io::Result<()> {
        self.file.flush()?;
        std::fs::rename(&self.path, Self::previous(&self.path))?;
        self.file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)?;
        self.written = 0;
        Ok(())
    }
}

impl Write for RotatingFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.written > 0 && self.written + buf.len() as u64 > self.max_bytes {
            self.rotate()?;
        }
        let n = self.file.write(buf)?;
        self.written += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotates_at_the_bound_and_keeps_one_previous_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("node.log");
        let mut f = RotatingFile::open(&path, 1000).unwrap();
        let line = [b'x'; 99];
        for _ in 0..100 {
            f.write_all(&line).unwrap();
            f.write_all(b"\n").unwrap();
        }
        f.flush().unwrap();
        let now = std::fs::metadata(&path).unwrap().len();
        let before = std::fs::metadata(RotatingFile::previous(&path))
            .unwrap()
            .len();
        assert!(now <= 1000 && before <= 1000, "{now} and {before} bytes");
        assert!(now > 0 && before > 0);
        let entries = std::fs::read_dir(dir.path()).unwrap().count();
        assert_eq!(entries, 2, "node.log and node.log.1, nothing else");
    }
}
