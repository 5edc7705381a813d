//! The kernel launch description, defined in `seam-core` (shared with the runtime).
pub use seam_core::{Access, BindingDesc, Dim, Grid, GridDim, GridTerm, Kernel, Launch, SizeDesc};
