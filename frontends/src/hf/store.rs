//! [`TensorStore`]: where the importer reads tensors, by their Hugging Face
//! `state_dict` names — a checkpoint folder's safetensors files, or a GGUF file
//! whose tensors are named and laid out as the hub names and lays them out.

use seam_ir::WeightFormat;

/// A tensor's values, `[rows, k]` in the checkpoint's (torch's) order, with the
/// blocks they were decoded from when the store keeps its weights encoded.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Values {
    /// The f32 values, row-major in the tensor's own shape.
    pub values: Vec<f32>,
    /// The blocks `values` decode from, one ggml row per row of `values`.
    pub rows: Option<EncodedRows>,
}

/// A tensor's rows of `k` weights in a weight format's ggml encoding.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct EncodedRows {
    /// The format of the blocks.
    pub format: WeightFormat,
    /// Weights per row (the tensor's last dim).
    pub k: u64,
    /// The ggml bytes of every row, in order.
    pub bytes: Vec<u8>,
}

impl Values {
    /// Values with no encoding.
    pub(crate) fn plain(values: Vec<f32>) -> Values {
        Values { values, rows: None }
    }
}

/// Tensors by Hugging Face name.
pub(crate) trait TensorStore {
    /// What reading can fail with; converted weights that do not fit the model
    /// are reported through it too.
    type Error: From<seam_ir::WeightsError> + From<seam_ir::EncodingError>;

    /// Whether the store holds `name`.
    fn contains(&self, name: &str) -> bool;

    /// The tensor `name` as f32 values, checked to have the torch shape
    /// `expected`; with `blocks`, also the blocks they decode from where the
    /// store keeps them (a weight of a product), else the values as stored
    /// (an embedding or norm).
    fn read(&self, name: &str, expected: &[usize], blocks: bool) -> Result<Values, Self::Error>;

    /// The error for a tensor `name` that the store does not hold.
    fn missing(&self, name: &str) -> Self::Error;
}
