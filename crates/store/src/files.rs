//! Permissions of the data directory: only tessera's own user may read the database, the
//! master key and the rest. New files and directories are created private; what an older
//! version (or an administrator) left readable is tightened when the server starts.

use std::path::{Path, PathBuf};

/// Mode of the data directory (and the directories in it).
pub const DIR_MODE: u32 = 0o700;
/// Mode of every data file.
pub const FILE_MODE: u32 = 0o600;

/// Create `dir` and any missing parents, each created one private (0700). Existing ones are
/// left as they are.
pub fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    let mut b = std::fs::DirBuilder::new();
    b.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut b, DIR_MODE);
    b.create(dir)
}

/// Create the database file empty and private unless it exists, so that SQLite (which gives
/// its -wal and -shm files the database's mode) never makes it readable by others.
pub(crate) fn create_private_file(path: &Path) -> std::io::Result<()> {
    match crate::crypto::create_private(path) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}

/// One path whose permissions were too open.
#[derive(Debug)]
pub struct Tightened {
    pub path: PathBuf,
    /// Its permission bits before, and what they are (or were to be) after.
    pub was: u32,
    pub now: u32,
    pub result: std::io::Result<()>,
}

/// The files tessera keeps under `data_dir` (and the database, wherever it is).
fn data_paths(data_dir: &Path, db: Option<&Path>) -> Vec<(PathBuf, bool)> {
    let mut v = vec![
        (data_dir.to_path_buf(), true),
        (data_dir.join("master.key"), false),
        (data_dir.join("serve.lock"), false),
        (data_dir.join("tls"), true),
        // (tls/cert.pem is public: administrators hand it to firewalls)
        (data_dir.join("tls").join("key.pem"), false),
    ];
    let db = db.map_or_else(|| data_dir.join("tessera.db"), Path::to_path_buf);
    for suffix in ["", "-wal", "-shm", "-journal"] {
        let mut name = db.clone().into_os_string();
        name.push(suffix);
        v.push((PathBuf::from(name), false));
    }
    v
}

/// Make the data directory 0700 and its files 0600 where they are more open, and report each
/// one changed (or that could not be). Symbolic links are not followed: only what tessera
/// created is touched, never what a link points at. Only tessera's own files are looked at,
/// so a data directory shared with other things loses nothing.
pub fn tighten_data_files(data_dir: &Path, db: Option<&Path>) -> Vec<Tightened> {
    let mut out = Vec::new();
    #[cfg(unix)]
    for (path, is_dir) in data_paths(data_dir, db) {
        use std::os::unix::fs::PermissionsExt;
        let Ok(meta) = std::fs::symlink_metadata(&path) else {
            continue;
        };
        if meta.file_type().is_symlink() || meta.is_dir() != is_dir {
            continue;
        }
        let was = meta.permissions().mode() & 0o7777;
        if was & 0o077 == 0 {
            continue;
        }
        let now = if is_dir { DIR_MODE } else { FILE_MODE };
        let result = std::fs::set_permissions(&path, std::fs::Permissions::from_mode(now));
        out.push(Tightened {
            path,
            was,
            now,
            result,
        });
    }
    #[cfg(not(unix))]
    let _ = (data_dir, db);
    out
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn mode(p: &Path) -> u32 {
        std::fs::symlink_metadata(p).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn open_files_are_tightened_and_links_left_alone() {
        let base = std::env::temp_dir().join(format!("tessera-files-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&base);
        let dir = base.join("data");
        create_private_dir(&dir).unwrap();
        assert_eq!(mode(&dir), 0o700);
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        for f in ["tessera.db", "tessera.db-wal", "master.key"] {
            std::fs::write(dir.join(f), b"x").unwrap();
            std::fs::set_permissions(dir.join(f), std::fs::Permissions::from_mode(0o644)).unwrap();
        }
        // someone else's file, linked into the directory, and an unrelated file
        let outside = base.join("elsewhere");
        std::fs::write(&outside, b"y").unwrap();
        std::fs::set_permissions(&outside, std::fs::Permissions::from_mode(0o644)).unwrap();
        std::os::unix::fs::symlink(&outside, dir.join("serve.lock")).unwrap();
        std::fs::write(dir.join("notes.txt"), b"z").unwrap();
        std::fs::set_permissions(
            dir.join("notes.txt"),
            std::fs::Permissions::from_mode(0o644),
        )
        .unwrap();

        let changed = tighten_data_files(&dir, None);
        let mut names: Vec<_> = changed
            .iter()
            .map(|t| {
                assert!(t.result.is_ok());
                t.path.strip_prefix(&base).unwrap().display().to_string()
            })
            .collect();
        names.sort();
        assert_eq!(
            names,
            [
                "data",
                "data/master.key",
                "data/tessera.db",
                "data/tessera.db-wal"
            ]
        );
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(&dir.join("tessera.db")), 0o600);
        assert_eq!(mode(&outside), 0o644);
        assert_eq!(mode(&dir.join("notes.txt")), 0o644);
        // nothing left to do the second time
        assert!(tighten_data_files(&dir, None).is_empty());
        std::fs::remove_dir_all(&base).unwrap();
    }
}
