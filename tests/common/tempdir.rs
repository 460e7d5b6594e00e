//! A test's own folder under the system's temp dir, removed when the test is done.

use std::ops::Deref;
use std::path::{Path, PathBuf};

/// `<temp>/ssvae-<prefix>-<pid>-<name>`, emptied when made and removed when dropped, so that a
/// test run leaves nothing behind (the suite wrote ~100 folders, up to gigabytes, per run
/// before). A failing test keeps its folder and prints where it is, for a look at its files.
/// It derefs to the path: `dir.join(..)`, `&dir` as `&Path`. The path may also name a file.
pub struct TempDir(PathBuf);

impl TempDir {
    /// The folder, made (with its parents) and empty.
    pub fn new(prefix: &str, name: &str) -> TempDir {
        let d = Self::unmade(prefix, name);
        std::fs::create_dir_all(&d.0).unwrap_or_else(|e| panic!("creating {}: {e}", d.0.display()));
        d
    }

    /// The path only, with nothing there yet (for commands that must create the folder
    /// themselves, e.g. a run's `--out`); removed when dropped all the same.
    pub fn unmade(prefix: &str, name: &str) -> TempDir {
        let d = TempDir(std::env::temp_dir().join(format!("ssvae-{prefix}-{}-{name}", std::process::id())));
        d.remove();
        d
    }

    /// Removes what is there: a folder with its contents, or a file (some tests use the path
    /// as a file's name).
    fn remove(&self) {
        let _ = if self.0.is_dir() { std::fs::remove_dir_all(&self.0) } else { std::fs::remove_file(&self.0) };
    }
}

impl Deref for TempDir {
    type Target = Path;
    fn deref(&self) -> &Path {
        &self.0
    }
}

impl AsRef<Path> for TempDir {
    fn as_ref(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if std::thread::panicking() {
            super::notice(&format!("test failed: its files are kept in {}", self.0.display()));
        } else {
            self.remove();
        }
    }
}
