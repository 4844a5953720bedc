//! Where the commands write what they make: never a partial file. A file is written beside its
//! destination under a temporary name (readable by its owner only) and renamed into place only
//! once it is whole; on any error the destination is left as it was and the temporary file is
//! removed. Standard output is used when no file is named.

use std::{
    io::{BufWriter, ErrorKind, Write},
    path::Path,
};

use anyhow::{Context, Result};

/// Runs `write` into `path` (or standard output when `None`), the all-or-nothing way above.
pub fn to<T>(path: Option<&Path>, write: impl FnOnce(&mut dyn Write) -> Result<T>) -> Result<T> {
    match path {
        Some(path) => to_file(path, write),
        None => {
            let mut out = Watch {
                inner: BufWriter::new(std::io::stdout().lock()),
                broken: false,
            };
            let done = write(&mut out).and_then(|done| Ok((done, out.flush()?)));
            match done {
                // However the writer wrapped it, the reader has gone: say so plainly.
                Err(_) if out.broken => Err(std::io::Error::from(ErrorKind::BrokenPipe).into()),
                done => Ok(done?.0),
            }
        }
    }
}

/// Standard output, noting whether its reader went away.
struct Watch<W: Write> {
    inner: W,
    broken: bool,
}

impl<W: Write> Watch<W> {
    fn note<T>(&mut self, r: std::io::Result<T>) -> std::io::Result<T> {
        if r.as_ref().is_err_and(|e| e.kind() == ErrorKind::BrokenPipe) {
            self.broken = true;
        }
        r
    }
}

impl<W: Write> Write for Watch<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let r = self.inner.write(buf);
        self.note(r)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        let r = self.inner.flush();
        self.note(r)
    }
}

/// Runs `write` into a temporary file beside `path`, then renames it to `path`. A destination
/// that exists and is not a regular file (a device, a pipe, a link) is written to directly:
/// replacing it would be wrong.
pub fn to_file<T>(path: &Path, write: impl FnOnce(&mut dyn Write) -> Result<T>) -> Result<T> {
    if std::fs::symlink_metadata(path).is_ok_and(|m| !m.file_type().is_file()) {
        let file = std::fs::OpenOptions::new()
            .write(true)
            .open(path)
            .with_context(|| {
                format!(
                    "{} に書けません / cannot write {}",
                    path.display(),
                    path.display()
                )
            })?;
        let mut out = BufWriter::new(file);
        let done = write(&mut out)?;
        out.flush()?;
        return Ok(done);
    }
    let cannot = || {
        format!(
            "{} を作成できません / cannot create {}",
            path.display(),
            path.display()
        )
    };
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
    let temp = tempfile::Builder::new()
        .prefix(&format!(".{}.", name.as_deref().unwrap_or("openvrs")))
        .suffix(".partial")
        .tempfile_in(dir)
        .with_context(cannot)?;
    let mut out = BufWriter::new(temp);
    let done = write(&mut out)?;
    let temp = out
        .into_inner()
        .map_err(|e| e.into_error())
        .with_context(cannot)?;
    temp.as_file().sync_all().with_context(cannot)?;
    temp.persist(path)
        .map_err(|e| e.error)
        .with_context(cannot)?;
    Ok(done)
}

/// The bytes, written to `path` whole or not at all.
pub fn bytes(path: &Path, bytes: &[u8]) -> Result<()> {
    to_file(path, |out| Ok(out.write_all(bytes)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_write_leaves_nothing_and_keeps_what_was_there() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("result.csv");
        std::fs::write(&path, "before").unwrap();
        let err = to_file(&path, |out| -> Result<()> {
            out.write_all(b"half a file")?;
            anyhow::bail!("row 3 cannot be written")
        })
        .unwrap_err();
        assert!(err.to_string().contains("row 3"));
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "before");
        let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(left.len(), 1, "no temporary file is left behind");

        to_file(&path, |out| Ok(out.write_all(b"whole")?)).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "whole");
        let fresh = dir.path().join("new.csv");
        bytes(&fresh, b"x").unwrap();
        assert_eq!(std::fs::read(&fresh).unwrap(), b"x");
        assert!(to_file(&dir.path().join("no/such/dir/f"), |_| Ok(())).is_err());
        // A device is written to, not replaced.
        to_file(Path::new("/dev/null"), |out| Ok(out.write_all(b"x")?)).unwrap();
        assert!(
            !std::fs::symlink_metadata("/dev/null")
                .unwrap()
                .file_type()
                .is_file()
        );
    }
}
