//! GGUF import: llama.cpp's model files.
//!
//! - [`tokenizer`]: a GGUF's tokenizer metadata as a Hugging Face `tokenizer.json`.

pub mod tokenizer;
