//! Why a kernel could not be launched with the sizes given.

use thiserror::Error;

/// Why [`crate::Kernel::launch`] refused the sizes it was given.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum LaunchError {
    /// A size passed to [`crate::Kernel::launch`] is not one the kernel declares.
    #[error("kernel `{kernel}` has no size `{size}` (it has: {known})")]
    UnknownSize {
        /// The kernel.
        kernel: String,
        /// The size given.
        size: String,
        /// The sizes it declares.
        known: String,
    },
    /// A dynamic size was not given to [`crate::Kernel::launch`].
    #[error("kernel `{kernel}` needs a value for size `{size}`")]
    MissingSize {
        /// The kernel.
        kernel: String,
        /// The missing size.
        size: String,
    },
    /// A fixed size was given a different value at launch.
    #[error("kernel `{kernel}` was generated for {size} = {fixed}, launched with {given}")]
    FixedSizeMismatch {
        /// The kernel.
        kernel: String,
        /// The size.
        size: String,
        /// The value baked into the kernel.
        fixed: u32,
        /// The value given at launch.
        given: u32,
    },
    /// The dispatch grid does not fit the device's limit on workgroups per dimension.
    #[error("kernel `{kernel}`: dispatch of {groups} workgroups along {axis} exceeds {limit}")]
    GridTooLarge {
        /// The kernel.
        kernel: String,
        /// The axis (`x`, `y` or `z`).
        axis: char,
        /// Workgroups needed.
        groups: u64,
        /// The per-dimension limit.
        limit: u32,
    },
}
