//! Entry point handles: an entry point of a loaded model, looked up once.

use std::fmt;

use crate::model::Model;
use seam_bundle::{EntryPoint, IoEntry};

/// One entry point of a [`crate::Model`] (from [`crate::Model::entry`]), to
/// run with [`crate::Session::run`] on a session of the same model.
///
/// A cheap handle (it shares the loaded model); `Send + Sync`.
#[derive(Clone)]
pub struct Entry {
    model: Model,
    index: usize,
}

impl fmt::Debug for Entry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Entry").field("name", &self.name()).finish()
    }
}

impl Entry {
    pub(crate) fn new(model: Model, index: usize) -> Entry {
        Entry { model, index }
    }

    /// The entry point's name.
    pub fn name(&self) -> &str {
        &self.point().name
    }

    /// Its inputs, in the order [`crate::Session::run`] takes them (states
    /// excluded).
    pub fn inputs(&self) -> &[IoEntry] {
        &self.point().inputs
    }

    /// Its outputs, in the order a run returns them (states excluded).
    pub fn outputs(&self) -> &[IoEntry] {
        &self.point().outputs
    }

    /// Dispatches per run.
    pub fn dispatches(&self) -> usize {
        self.point().dispatches.len()
    }

    /// Its index among the bundle's entry points.
    pub(crate) fn index(&self) -> usize {
        self.index
    }

    /// The model it belongs to.
    pub(crate) fn model(&self) -> &Model {
        &self.model
    }

    fn point(&self) -> &EntryPoint {
        &self.model.manifest().entry_points[self.index]
    }
}
