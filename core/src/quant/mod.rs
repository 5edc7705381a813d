//! Weight storage formats: [`WeightFormat`] and its row-plane layout.

mod format;

pub use format::WeightFormat;
