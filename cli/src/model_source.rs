//! What a model argument names: a model file in the text format, a Hugging
//! Face checkpoint folder (a directory, expected to hold `config.json`), or a
//! GGUF file (named `*.gguf` or starting with the GGUF magic).

use std::io::IsTerminal;
use std::path::Path;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use seam_frontends::gguf::{self, GgufImport};
use seam_frontends::hf::{import_with_progress, ImportOptions, Imported};
use seam_ir::{Model, Weights};

use super::CliError;
use seam_compiler::load::load_model;

/// A loaded model, with its weights when the source has them.
pub enum ModelSource {
    /// A `.seam` text model (weights come from elsewhere).
    Text(Model),
    /// An imported checkpoint with its weights.
    Checkpoint(Box<Imported>),
    /// An imported GGUF file with its weights.
    Gguf(Box<GgufImport>),
}

impl ModelSource {
    /// The model.
    pub fn model(&self) -> &Model {
        match self {
            ModelSource::Text(m) => m,
            ModelSource::Checkpoint(c) => &c.model,
            ModelSource::Gguf(g) => &g.imported.model,
        }
    }

    /// The model, to adjust before compiling (e.g. `--max-seq-len`).
    pub fn model_mut(&mut self) -> &mut Model {
        match self {
            ModelSource::Text(m) => m,
            ModelSource::Checkpoint(c) => &mut c.model,
            ModelSource::Gguf(g) => &mut g.imported.model,
        }
    }

    /// The checkpoint's weights, if the source has them.
    pub fn weights(&self) -> Option<&Weights> {
        match self {
            ModelSource::Text(_) => None,
            ModelSource::Checkpoint(c) => Some(&c.weights),
            ModelSource::Gguf(g) => Some(&g.imported.weights),
        }
    }

    /// For a GGUF file: the tensor types it holds and the conversions made
    /// (types without a kernel re-encoded), as lines to print.
    pub fn import_summary(&self) -> Option<String> {
        let ModelSource::Gguf(g) = self else {
            return None;
        };
        let types: Vec<String> = g
            .types
            .iter()
            .map(|t| format!("{} {}", t.ty, t.tensors))
            .collect();
        let mut s = format!("GGUF tensors by type: {}", types.join(", "));
        for c in &g.conversions {
            s.push_str(&format!(
                "\nconverted {} {} tensors to {} (no {} kernel)",
                c.tensors, c.from, c.to, c.from
            ));
        }
        Some(s)
    }
}

/// Loads `path`: a GGUF file or a directory (a Hugging Face checkpoint) is
/// imported (with a progress bar on a terminal), anything else is read as a
/// text model.
pub fn load_source(path: &Path) -> Result<ModelSource, CliError> {
    load_source_with(path, &ImportOptions::default())
}

/// [`load_source`], importing a checkpoint with `options` (e.g. a KV cache).
pub fn load_source_with(path: &Path, options: &ImportOptions) -> Result<ModelSource, CliError> {
    if gguf::is_gguf(path) {
        let imported = with_progress_bar(|p| gguf::import_with_progress(path, options, p))?;
        let i = &imported.imported;
        tracing::info!(family = ?i.family, params = i.model.params.len(), "imported GGUF file");
        return Ok(ModelSource::Gguf(Box::new(imported)));
    }
    if !path.is_dir() {
        return Ok(ModelSource::Text(load_model(path)?));
    }
    let imported = with_progress_bar(|p| import_with_progress(path, options, p))?;
    tracing::info!(family = ?imported.family, params = imported.model.params.len(), "imported checkpoint");
    Ok(ModelSource::Checkpoint(Box::new(imported)))
}

/// Runs an import with a byte-progress bar on stderr.
fn with_progress_bar<T>(import: impl FnOnce(&mut dyn FnMut(u64, u64)) -> T) -> T {
    let bar = progress_bar();
    let out = import(&mut |done, total| {
        if bar.length() != Some(total) {
            bar.set_length(total);
        }
        bar.set_position(done);
    });
    bar.finish_and_clear();
    out
}

/// A byte-progress bar on stderr, hidden when stderr is not a terminal.
fn progress_bar() -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr());
    if let Ok(style) = ProgressStyle::with_template(
        "converting weights {wide_bar} {binary_bytes}/{binary_total_bytes} ({eta})",
    ) {
        bar.set_style(style);
    }
    bar
}

/// A count-progress callback for long compile stages: a bar on stderr labelled
/// `label` (hidden when stderr is not a terminal), cleared when done.
pub fn counting_bar(label: &'static str) -> impl Fn(usize, usize) + Send + Sync {
    let bar = if std::io::stderr().is_terminal() {
        ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr())
    } else {
        ProgressBar::hidden()
    };
    if let Ok(style) = ProgressStyle::with_template("{msg} {wide_bar} {pos}/{len} ({eta})") {
        bar.set_style(style);
    }
    bar.set_message(label);
    move |done, total| {
        bar.set_length(total as u64);
        bar.set_position(done as u64);
        if done >= total {
            bar.finish_and_clear();
        }
    }
}
