//! Lists the files of a directory by extension, sorted by path: the manifests, the schema files
//! and the operation sources are all found this way.
//!
//! The recursive walk keeps an explicit stack of directories (no recursion) and does not follow
//! symbolic links to directories, so a link cycle cannot make it loop; a symbolic link to a file
//! is listed like the file.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

/// How far below the directory to look.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Depth {
    /// Only the directory's own files.
    Shallow,
    /// Every subdirectory too.
    Recursive,
}

/// A directory or file that could not be read.
#[derive(Debug, thiserror::Error)]
#[error("{}: {source}", path.display())]
pub struct ListError {
    pub path: PathBuf,
    #[source]
    pub source: io::Error,
}

/// The files under `dir` whose extension is one of `extensions`, sorted by path.
pub fn list(dir: &Path, extensions: &[&str], depth: Depth) -> Result<Vec<PathBuf>, ListError> {
    let error = |path: &Path| {
        let path = path.to_owned();
        move |source| ListError { path, source }
    };
    let mut files = Vec::new();
    let mut pending = vec![dir.to_owned()];
    while let Some(current) = pending.pop() {
        for item in fs::read_dir(&current).map_err(error(&current))? {
            let item = item.map_err(error(&current))?;
            let path = item.path();
            if item.file_type().map_err(error(&path))?.is_dir() {
                if depth == Depth::Recursive {
                    pending.push(path);
                }
            } else if path
                .extension()
                .is_some_and(|ext| extensions.iter().any(|wanted| ext == *wanted))
                && path.is_file()
            {
                files.push(path);
            }
        }
    }
    files.sort();
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_matching_files_sorted_shallow_or_recursive() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        fs::create_dir(root.join("sub")).unwrap();
        for name in ["b.json", "a.json", "c.txt", "sub/d.json"] {
            fs::write(root.join(name), "{}").unwrap();
        }
        let names = |files: Vec<PathBuf>| -> Vec<String> {
            files
                .iter()
                .map(|f| f.strip_prefix(root).unwrap().display().to_string())
                .collect()
        };
        assert_eq!(
            names(list(root, &["json"], Depth::Shallow).unwrap()),
            ["a.json", "b.json"]
        );
        assert_eq!(
            names(list(root, &["json", "txt"], Depth::Recursive).unwrap()),
            ["a.json", "b.json", "c.txt", "sub/d.json"]
        );
    }

    #[test]
    fn a_missing_directory_is_an_error_naming_it() {
        let error = list(
            Path::new("/nonexistent/graphql-firewall"),
            &["json"],
            Depth::Shallow,
        )
        .unwrap_err();
        assert_eq!(error.source.kind(), io::ErrorKind::NotFound);
        assert_eq!(error.path, Path::new("/nonexistent/graphql-firewall"));
    }

    #[cfg(unix)]
    #[test]
    fn a_symbolic_link_cycle_does_not_loop() {
        let dir = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(dir.path(), dir.path().join("loop")).unwrap();
        fs::write(dir.path().join("a.graphql"), "{ a }").unwrap();
        let files = list(dir.path(), &["graphql"], Depth::Recursive).unwrap();
        assert_eq!(files.len(), 1);
    }
}
