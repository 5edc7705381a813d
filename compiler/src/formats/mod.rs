//! Weight storage formats at compile time: which format each product weight
//! is stored in ([`WeightPolicy`], by the role [`param_roles`] reads off its
//! uses), and [`assign_formats`], which encodes the weights accordingly.

mod assign;
mod policy;
mod roles;

pub use assign::{
    assign_formats, Fallback, FallbackReason, FormatError, FormatProgress, FormatReport,
};
pub use policy::{expert_format, fallback, WeightPolicy};
pub use roles::{param_roles, ParamRole, MOE_EXPERT_OPERANDS};
