//! The files of an SQLite target: the live one, the one being built beside it
//! (`<file>.lethe-new`) and the previous one kept for rollback (`<file>.lethe-prev`).
//!
//! A rename within one folder is atomic, so the live path always names a whole database:
//! the old one until the rename, the new one after it.

use std::fs;
use std::path::{Path, PathBuf};

use super::Error;

/// The file being built beside `live`.
pub fn building(live: &Path) -> PathBuf {
    with_suffix(live, ".lethe-new")
}

/// The lock file beside `live` that keeps one run per target.
pub fn lock(live: &Path) -> PathBuf {
    with_suffix(live, ".lethe-lock")
}

/// The replaced copy kept beside `live`.
pub fn previous(live: &Path) -> PathBuf {
    with_suffix(live, ".lethe-prev")
}

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

/// Deletes a file (and its journal) if it is there.
pub fn remove(path: &Path) -> Result<(), Error> {
    for file in [path.to_path_buf(), with_suffix(path, "-journal")] {
        match fs::remove_file(&file) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(source) => {
                return Err(Error::File {
                    what: "cannot delete",
                    path: file,
                    source,
                });
            }
        }
    }
    Ok(())
}

/// Whether two paths name the same file (the same inode, through links and `..`).
pub fn same_file(a: &Path, b: &Path) -> bool {
    match (fs::canonicalize(a), fs::canonicalize(b)) {
        (Ok(a), Ok(b)) if a == b => true,
        _ => {
            #[cfg(unix)]
            {
                use std::os::unix::fs::MetadataExt;
                if let (Ok(a), Ok(b)) = (fs::metadata(a), fs::metadata(b)) {
                    return a.dev() == b.dev() && a.ino() == b.ino();
                }
            }
            false
        }
    }
}

/// Starts flushing the file being built to disk on a blocking thread, while its loading
/// goes on: called as each table is loaded, it leaves the flush before the swap (which
/// must be done before the rename, and whose error counts) only the last pages to wait
/// for, instead of the whole file at the end of the run (on the bench, 5 % of the run).
pub fn start_flush(built: std::sync::Arc<Path>) {
    tokio::task::spawn_blocking(move || {
        // Only a head start: an error here shows again in the flush before the swap.
        let _ = fs::File::open(&built).and_then(|file| file.sync_data());
    });
}

/// Makes the built file live: flushed to disk, the live file kept as the previous copy
/// (when asked), then renamed over the live path in one step.
pub fn swap_in(built: &Path, live: &Path, keep_previous: bool) -> Result<(), Error> {
    let io = |what: &'static str, path: &Path| {
        let path = path.to_path_buf();
        move |source| Error::File { what, path, source }
    };
    fs::File::open(built)
        .and_then(|f| f.sync_all())
        .map_err(io("cannot flush", built))?;
    if live.exists() {
        let previous = previous(live);
        remove(&previous)?;
        if keep_previous {
            // A second name for the live file: after the rename it is the only one.
            fs::hard_link(live, &previous)
                .or_else(|_| fs::copy(live, &previous).map(|_| ()))
                .map_err(io("cannot keep the previous copy as", &previous))?;
        }
    }
    fs::rename(built, live).map_err(io("cannot rename the new copy onto", live))?;
    if let Some(dir) = live.parent().filter(|d| !d.as_os_str().is_empty()) {
        // The rename itself must reach the disk too.
        fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(io("cannot flush the folder", dir))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn swap_keeps_the_previous_file_and_replaces_the_live_one() {
        let dir = tempfile::tempdir().unwrap();
        let live = dir.path().join("dev.db");
        fs::write(&live, "old").unwrap();
        let built = building(&live);
        fs::write(&built, "new").unwrap();
        swap_in(&built, &live, true).unwrap();
        assert_eq!(fs::read_to_string(&live).unwrap(), "new");
        assert_eq!(fs::read_to_string(previous(&live)).unwrap(), "old");
        assert!(!built.exists());

        fs::write(&built, "newer").unwrap();
        swap_in(&built, &live, false).unwrap();
        assert_eq!(fs::read_to_string(&live).unwrap(), "newer");
        assert!(!previous(&live).exists());
    }

    #[test]
    fn same_file_sees_through_links_and_dots() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a.db");
        fs::write(&a, "x").unwrap();
        let b = dir.path().join("b.db");
        fs::hard_link(&a, &b).unwrap();
        assert!(same_file(&a, &b));
        assert!(same_file(&a, &dir.path().join(".").join("a.db")));
        assert!(!same_file(&a, &dir.path().join("c.db")));
    }
}
