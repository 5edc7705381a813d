//! Weight storage formats: [`WeightFormat`] and its row-plane layout; the
//! GGUF tensor types ([`GgmlType`]); ggml-exact block encoders and decoders
//! ([`quantize`], [`dequantize`]); and the repacking of ggml rows into row
//! planes ([`pack_rows`], [`unpack_rows`]).

mod blocks;
mod error;
mod format;
mod ggml;
mod planes;

pub use blocks::{dequantize, quantize};
pub use error::QuantError;
pub use format::WeightFormat;
pub use ggml::GgmlType;
pub use planes::{pack_rows, unpack_ggml, unpack_rows};
