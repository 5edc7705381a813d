//! The Rust builder API: construct the same IR as the text format, from code.
//!
//! ```
//! use seam_frontends::builder::ModelBuilder;
//! use seam_ir::{DType, TensorType};
//!
//! let mut m = ModelBuilder::new("tiny");
//! let tokens = m.dim("tokens", 128);
//! let w = m.param("w", TensorType::new(DType::F32, [16u64, 16]));
//! let mut f = m.function("forward");
//! let x = f.input("x", TensorType::new(DType::F32, [tokens.clone(), 16u64.into()]));
//! let y = f.matmul("y", x, w).unwrap();
//! let z = f.silu("z", y).unwrap();
//! f.finish(&[z]);
//! let model = m.finish().unwrap();
//! assert_eq!(model.functions[0].body.len(), 2);
//! ```

mod error;
mod function;
mod ops;

pub use error::BuildError;
pub use function::FunctionBuilder;

use seam_ir::{verify, Dim, DimDecl, Model, ParamDecl, ParamId, TensorType};

/// Builds a [`Model`]: declare dims and params, add functions, then [`ModelBuilder::finish`].
#[derive(Debug)]
pub struct ModelBuilder {
    model: Model,
}

impl ModelBuilder {
    /// A builder for a model of this name.
    pub fn new(name: impl Into<String>) -> Self {
        ModelBuilder {
            model: Model::new(name),
        }
    }

    /// Declares a symbolic dim with an upper bound and returns it for use in types.
    pub fn dim(&mut self, name: impl Into<String>, max: u64) -> Dim {
        let name = name.into();
        self.model.dims.push(DimDecl {
            name: name.clone(),
            max,
        });
        Dim::Sym(name)
    }

    /// Declares a parameter and returns its id, usable as an operand.
    pub fn param(&mut self, name: impl Into<String>, ty: TensorType) -> ParamId {
        self.model.params.push(ParamDecl::new(name, ty));
        ParamId(self.model.params.len() as u32 - 1)
    }

    /// Starts a function; it joins the model when its builder's `finish` is called.
    pub fn function(&mut self, name: impl Into<String>) -> FunctionBuilder<'_> {
        FunctionBuilder::new(&mut self.model, name.into())
    }

    /// Verifies and returns the model.
    pub fn finish(self) -> Result<Model, BuildError> {
        verify(&self.model).map_err(BuildError::Verify)?;
        Ok(self.model)
    }
}
