//! Inputs given on the command line: `--tokens 1,2,3` and `--input NAME=FILE.npy`.

use clap::Args;
use seam_ir::{npy, DType, Tensor, TensorData};

use super::CliError;

/// Input options shared by `seam eval` and `seam run`.
#[derive(Debug, Args)]
pub struct InputArgs {
    /// Token ids for the single rank-1 integer input, comma-separated: `1,2,3`.
    #[arg(long, value_name = "IDS", value_delimiter = ',', num_args = 1..)]
    pub tokens: Vec<i64>,
    /// An input by name from a `.npy` file: `--input ids=ids.npy` (repeatable).
    #[arg(long = "input", value_name = "NAME=FILE")]
    pub inputs: Vec<String>,
}

/// What an entry point expects of one input.
pub struct InputSpec<'a> {
    /// The input's name.
    pub name: &'a str,
    /// Its dtype.
    pub dtype: DType,
    /// Its rank.
    pub rank: usize,
    /// For ids that index a table (`gather`), the number of rows: every value
    /// must lie in `0..id_bound` (the GPU kernel would read a clamped row).
    pub id_bound: Option<u64>,
}

impl InputArgs {
    /// Builds the inputs of `entry` in signature order.
    pub fn gather(&self, entry: &str, specs: &[InputSpec<'_>]) -> Result<Vec<Tensor>, CliError> {
        let mut from_files = Vec::new();
        for spec in &self.inputs {
            let (name, path) = spec.split_once('=').ok_or_else(|| {
                CliError::Usage(format!("--input takes NAME=FILE, found `{spec}`"))
            })?;
            let bytes = std::fs::read(path)
                .map_err(|e| CliError::Input(format!("cannot read `{path}`: {e}")))?;
            let tensor = npy::read_npy(&bytes)
                .map_err(|e| CliError::Input(format!("`{path}` is not a usable .npy file: {e}")))?;
            from_files.push((name.trim_start_matches('%').to_string(), tensor));
        }
        let mut tokens_used = false;
        let mut inputs = Vec::with_capacity(specs.len());
        for s in specs {
            if let Some(i) = from_files.iter().position(|(n, _)| n == s.name) {
                inputs.push(s.checked(from_files.swap_remove(i).1)?);
            } else if !self.tokens.is_empty() && !tokens_used && s.dtype.is_int() && s.rank == 1 {
                tokens_used = true;
                inputs.push(s.checked(tokens_tensor(&self.tokens, s.dtype)?)?);
            } else {
                return Err(CliError::Usage(format!(
                    "`{entry}` needs input `%{}` ({} of rank {}): give it with --tokens (a rank-1 integer input) or --input {}=FILE.npy",
                    s.name, s.dtype, s.rank, s.name
                )));
            }
        }
        if let Some((name, _)) = from_files.first() {
            return Err(CliError::Usage(format!("`{entry}` has no input `%{name}`")));
        }
        if !self.tokens.is_empty() && !tokens_used {
            return Err(CliError::Usage(format!(
                "--tokens given but `{entry}` has no rank-1 integer input left to take them"
            )));
        }
        Ok(inputs)
    }
}

impl InputSpec<'_> {
    /// `tensor`, if every id lies within [`InputSpec::id_bound`].
    fn checked(&self, tensor: Tensor) -> Result<Tensor, CliError> {
        let Some(bound) = self.id_bound else {
            return Ok(tensor);
        };
        let ids: Vec<i64> = match &tensor.data {
            TensorData::I32(v) => v.iter().map(|&x| i64::from(x)).collect(),
            TensorData::U32(v) => v.iter().map(|&x| i64::from(x)).collect(),
            _ => return Ok(tensor),
        };
        match ids.iter().find(|&&id| id < 0 || id as u64 >= bound) {
            Some(id) => Err(CliError::Input(format!(
                "id {id} in `%{}` is outside 0..{bound} (the rows or matrices it indexes)",
                self.name
            ))),
            None => Ok(tensor),
        }
    }
}

fn tokens_tensor(tokens: &[i64], dtype: DType) -> Result<Tensor, CliError> {
    let out_of_range = |t: &i64| CliError::Input(format!("token id {t} does not fit {dtype}"));
    let n = tokens.len();
    let tensor = match dtype {
        DType::I32 => Tensor::i32(
            vec![n],
            tokens
                .iter()
                .map(|t| i32::try_from(*t).map_err(|_| out_of_range(t)))
                .collect::<Result<_, _>>()?,
        ),
        _ => Tensor::u32(
            vec![n],
            tokens
                .iter()
                .map(|t| u32::try_from(*t).map_err(|_| out_of_range(t)))
                .collect::<Result<_, _>>()?,
        ),
    };
    Ok(tensor?)
}

/// Shape, dtype and a checksum (sum, mean absolute value, min, max) of f32 values.
pub fn describe(dtype: impl std::fmt::Display, shape: &[usize], v: &[f32]) -> String {
    let n = v.len().max(1) as f64;
    let sum: f64 = v.iter().map(|&x| f64::from(x)).sum();
    let mean_abs: f64 = v.iter().map(|&x| f64::from(x).abs()).sum::<f64>() / n;
    let min = v.iter().copied().fold(f32::INFINITY, f32::min);
    let max = v.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    format!(
        "{dtype}{shape:?} checksum sum={sum:.6e} mean_abs={mean_abs:.6e} min={min:.6e} max={max:.6e}"
    )
}
