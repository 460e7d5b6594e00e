//! A unit test's own folder under the system temp dir, removed when the test is done (the unit
//! tests' twin of `tests/common::TempDir`, which integration tests share).

use std::ops::Deref;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

/// `<temp>/ssvae-unit-<tag>-<pid>-<n>`, made empty and removed on drop; derefs to its path.
pub(crate) struct TestDir(PathBuf);

impl TestDir {
    /// A fresh, empty folder; `tag` names the test in the path (a counter keeps two folders of
    /// one process apart).
    pub(crate) fn new(tag: &str) -> TestDir {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("ssvae-unit-{tag}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("creating {}: {e}", dir.display()));
        TestDir(dir)
    }

    /// Writes `bytes` to the file `name` in this folder and returns its path.
    pub(crate) fn write(&self, name: &str, bytes: impl AsRef<[u8]>) -> PathBuf {
        let p = self.0.join(name);
        std::fs::write(&p, bytes).unwrap_or_else(|e| panic!("writing {}: {e}", p.display()));
        p
    }
}

impl Deref for TestDir {
    type Target = Path;
    fn deref(&self) -> &Path {
        &self.0
    }
}

impl Drop for TestDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
