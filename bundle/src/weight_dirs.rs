//! Where external weight files may be read from: the bundle's own folder tree
//! and the folders the caller allows ([`LoadOptions::allowed_weight_dirs`]).
//!
//! A recorded path is resolved one component at a time from the bundle's
//! canonical folder, following symbolic links as the OS would. Every step must
//! stay inside an allowed folder or on the way to one (an ancestor of one):
//! otherwise the file is refused before anything beyond that step is looked
//! at, so the error never depends on whether a file outside exists or how
//! long it is.

use std::path::{Component, Path, PathBuf};

use crate::BundleError;

/// How many symbolic links one path may pass through (as Linux's `MAXSYMLINKS`).
const MAX_LINKS: usize = 40;

/// Options for loading a bundle with external weights.
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    /// Folders (besides the bundle's own folder tree) that external weight
    /// files may lie in, with everything under them: `seam … --allow-weights-from DIR`.
    pub allowed_weight_dirs: Vec<PathBuf>,
}

/// The canonical folders external weight files may lie under.
#[derive(Debug)]
pub(crate) struct WeightDirs {
    roots: Vec<PathBuf>,
}

impl WeightDirs {
    /// The bundle folder `base` and the folders `options` allows, canonicalised
    /// (each must exist: they are the caller's, so saying so reveals nothing).
    pub(crate) fn new(base: &Path, options: &LoadOptions) -> Result<WeightDirs, BundleError> {
        let roots = std::iter::once(base)
            .chain(options.allowed_weight_dirs.iter().map(PathBuf::as_path))
            .map(|dir| {
                dir.canonicalize().map_err(|source| BundleError::WeightDir {
                    path: dir.display().to_string(),
                    source,
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(WeightDirs { roots })
    }

    /// The bundle's own (canonical) folder.
    fn base(&self) -> &Path {
        &self.roots[0]
    }

    fn inside(&self, p: &Path) -> bool {
        self.roots.iter().any(|r| p.starts_with(r))
    }

    fn on_the_way(&self, p: &Path) -> bool {
        self.inside(p) || self.roots.iter().any(|r| r.starts_with(p))
    }

    /// The canonical path of recorded path `path` (already checked by
    /// [`crate::external::check_path`]), refused with
    /// [`BundleError::ExternalOutside`] unless it lies inside an allowed
    /// folder. A file that does not exist inside one resolves to where it
    /// would be (opening it then reports it missing).
    pub(crate) fn locate(&self, path: &str) -> Result<PathBuf, BundleError> {
        let outside = || BundleError::ExternalOutside {
            path: path.to_string(),
        };
        let mut walk = Walk {
            dirs: self,
            links: 0,
        };
        walk.follow(self.base().to_path_buf(), Path::new(path))
            .filter(|found| self.inside(found))
            .ok_or_else(outside)
    }
}

/// One resolution of a path, counting the symbolic links it passed through.
struct Walk<'a> {
    dirs: &'a WeightDirs,
    links: usize,
}

impl Walk<'_> {
    /// Resolves `rest` from the canonical folder `at`; `None` once a step
    /// leaves the allowed folders (and the ways to them), or for a link loop.
    fn follow(&mut self, mut at: PathBuf, rest: &Path) -> Option<PathBuf> {
        let mut missing = false;
        for part in rest.components() {
            match part {
                Component::RootDir | Component::Prefix(_) => at = PathBuf::from(part.as_os_str()),
                Component::CurDir => {}
                Component::ParentDir => {
                    at.pop();
                }
                Component::Normal(name) => {
                    at.push(name);
                    if !self.dirs.on_the_way(&at) {
                        return None;
                    }
                    if !missing {
                        match self.step(at) {
                            Step::Missing(p) => {
                                missing = true;
                                at = p;
                            }
                            Step::At(p) => at = p,
                            Step::Outside => return None,
                        }
                    }
                }
            }
            if !self.dirs.on_the_way(&at) {
                return None;
            }
        }
        Some(at)
    }

    /// Looks at `at` (inside the allowed folders or on the way to one):
    /// follows it if it is a symbolic link.
    fn step(&mut self, at: PathBuf) -> Step {
        // Missing or unreadable: opening it reports the OS error.
        let Ok(meta) = at.symlink_metadata() else {
            return Step::Missing(at);
        };
        if !meta.file_type().is_symlink() {
            return Step::At(at);
        }
        self.links += 1;
        let Ok(target) = at.read_link() else {
            return Step::Outside;
        };
        if self.links > MAX_LINKS {
            return Step::Outside;
        }
        let parent = at.parent().map_or_else(PathBuf::new, Path::to_path_buf);
        match self.follow(parent, &target) {
            Some(p) => Step::At(p),
            None => Step::Outside,
        }
    }
}

/// Where one step of a walk landed.
enum Step {
    /// An existing entry (links followed).
    At(PathBuf),
    /// Nothing there: the rest of the path is taken as written.
    Missing(PathBuf),
    /// A link leading outside the allowed folders, or a loop.
    Outside,
}
