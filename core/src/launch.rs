//! The kernel launch description shared by the compiler and the runtime: the
//! value every generator returns, how the bundle stores it, and how to launch it
//! with concrete sizes.
//!
//! The serde form is the bundle manifest's kernel entry (the WGSL source itself
//! lives in the bundle's shaders section, so [`Kernel::wgsl`] is not serialized).

use serde::{Deserialize, Serialize};

use crate::launch_error::LaunchError;

/// How a kernel uses one of its bindings (all bindings live in bind group 0).
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Access {
    /// `var<storage, read>`.
    ReadOnly,
    /// `var<storage, read_write>`.
    ReadWrite,
    /// `var<uniform>`: the kernel's size parameters ([`Kernel::launch`]).
    Uniform,
}

/// One binding of a kernel.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct BindingDesc {
    /// The `@binding` index in group 0.
    pub binding: u32,
    /// The variable's name in the WGSL (documents the role: `a`, `b`, `out`, …).
    pub name: String,
    /// How the kernel accesses it.
    pub access: Access,
}

/// A size a kernel is parametric in: baked in as a constant, or read at run time
/// from the uniform parameter block.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum Dim {
    /// Known when the kernel is generated; baked into the WGSL.
    Fixed(u32),
    /// Passed at run time in the kernel's `Params` uniform.
    Dynamic,
}

impl Dim {
    /// The fixed value, if any.
    pub fn fixed(self) -> Option<u32> {
        match self {
            Dim::Fixed(v) => Some(v),
            Dim::Dynamic => None,
        }
    }
}

impl From<u32> for Dim {
    fn from(v: u32) -> Self {
        Dim::Fixed(v)
    }
}

/// A named size of a kernel (`m`, `n`, `k`, `tokens`, …).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct SizeDesc {
    /// The size's name; dynamic sizes are fields of the WGSL `Params` struct
    /// under this name, in declaration order, each a `u32`.
    pub name: String,
    /// Whether it is baked in (stored as `fixed`: the value, or null).
    #[serde(rename = "fixed", with = "dim_as_fixed")]
    pub dim: Dim,
}

/// One factor of a grid dimension.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(untagged)]
pub enum GridTerm {
    /// The value of a named size.
    Size(String),
    /// A constant.
    Const(u32),
}

/// A grid dimension: `ceil(product(terms) / divisor)` workgroups.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct GridDim {
    /// Multiplied together (an empty list is 1).
    pub terms: Vec<GridTerm>,
    /// Divided by, rounding up (at least 1).
    pub divisor: u32,
}

impl GridDim {
    /// A constant number of workgroups.
    pub fn one() -> Self {
        GridDim {
            terms: Vec::new(),
            divisor: 1,
        }
    }

    /// `ceil(size / divisor)` workgroups.
    pub fn ceil(size: &str, divisor: u32) -> Self {
        GridDim {
            terms: vec![GridTerm::Size(size.to_string())],
            divisor,
        }
    }

    /// `ceil(product of sizes / divisor)` workgroups.
    pub fn ceil_product(sizes: &[&str], divisor: u32) -> Self {
        GridDim {
            terms: sizes
                .iter()
                .map(|s| GridTerm::Size(s.to_string()))
                .collect(),
            divisor,
        }
    }
}

/// How many workgroups a launch dispatches, as a function of the sizes.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Grid {
    /// Workgroups along x, y, z.
    #[serde(rename = "grid")]
    pub dims: [GridDim; 3],
    /// The kernel reads its x index as `wid.x + wid.y * nwg.x` (with y and z of
    /// the grid 1), so an x count above the per-dimension limit may be folded
    /// into x·y; the kernel bounds-checks the extra workgroups itself.
    pub fold_x: bool,
}

impl Grid {
    /// A 1-D grid over `ceil(product(sizes) / divisor)` workgroups, foldable.
    pub fn linear(sizes: &[&str], divisor: u32) -> Self {
        Grid {
            dims: [
                GridDim::ceil_product(sizes, divisor),
                GridDim::one(),
                GridDim::one(),
            ],
            fold_x: true,
        }
    }

    /// An explicit 3-D grid (not foldable).
    pub fn xyz(x: GridDim, y: GridDim, z: GridDim) -> Self {
        Grid {
            dims: [x, y, z],
            fold_x: false,
        }
    }
}

/// A generated compute kernel: WGSL source plus everything needed to bind and
/// dispatch it.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Kernel {
    /// A descriptive name (`matmul_rb8x1_w64`, `rms_norm`, …), used as the label.
    pub name: String,
    /// The WGSL module (not serialized: a bundle keeps sources in its shaders
    /// section and names each kernel's byte range).
    #[serde(skip)]
    pub wgsl: String,
    /// The compute entry point.
    pub entry_point: String,
    /// `@workgroup_size`.
    pub workgroup_size: [u32; 3],
    /// The bindings, all in group 0, sorted by binding index.
    pub bindings: Vec<BindingDesc>,
    /// The sizes the kernel is parametric in.
    pub sizes: Vec<SizeDesc>,
    /// The dispatch grid (serialized as its fields, `grid` and `fold_x`).
    #[serde(flatten)]
    pub grid: Grid,
    /// Every memory access is bounds-checked or proven in range by the generator
    /// given sizes that match the bound buffers, so runtime checks may be skipped.
    pub indexing_proven: bool,
}

/// Serde for [`SizeDesc::dim`]: a fixed size as its value, a dynamic one as null.
mod dim_as_fixed {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    use super::Dim;

    pub fn serialize<S: Serializer>(dim: &Dim, s: S) -> Result<S::Ok, S::Error> {
        dim.fixed().serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Dim, D::Error> {
        Ok(Option::<u32>::deserialize(d)?.map_or(Dim::Dynamic, Dim::Fixed))
    }
}

/// The per-launch data for one dispatch of a [`Kernel`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Launch {
    /// The bytes of the `Params` uniform (dynamic sizes as `u32`, padded to 16
    /// bytes); empty when the kernel has no dynamic size.
    pub uniform: Vec<u8>,
    /// Workgroups to dispatch along x, y, z.
    pub grid: [u32; 3],
    /// Every size's value, fixed and dynamic, in declaration order.
    pub sizes: Vec<(String, u32)>,
}

impl Kernel {
    /// The binding of the `Params` uniform, if the kernel has dynamic sizes.
    pub fn params_binding(&self) -> Option<u32> {
        self.bindings
            .iter()
            .find(|b| b.access == Access::Uniform)
            .map(|b| b.binding)
    }

    /// The storage bindings (everything but the uniform), in binding order.
    pub fn storage_bindings(&self) -> impl Iterator<Item = &BindingDesc> {
        self.bindings.iter().filter(|b| b.access != Access::Uniform)
    }

    /// The value of a fixed size, if the kernel has one of that name.
    pub fn fixed_size(&self, name: &str) -> Option<u32> {
        self.sizes
            .iter()
            .find(|s| s.name == name)
            .and_then(|s| s.dim.fixed())
    }

    /// Resolves the sizes for one launch: every dynamic size must be given, fixed
    /// sizes may be given (and must then agree). Returns the uniform bytes and the
    /// grid, checked against `max_workgroups_per_dimension`.
    pub fn launch(
        &self,
        sizes: &[(&str, u32)],
        max_workgroups_per_dimension: u32,
    ) -> Result<Launch, LaunchError> {
        for (name, _) in sizes {
            if !self.sizes.iter().any(|s| s.name == *name) {
                return Err(LaunchError::UnknownSize {
                    kernel: self.name.clone(),
                    size: name.to_string(),
                    known: self
                        .sizes
                        .iter()
                        .map(|s| s.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", "),
                });
            }
        }
        let mut resolved = Vec::with_capacity(self.sizes.len());
        let mut uniform = Vec::new();
        for s in &self.sizes {
            let given = sizes.iter().find(|(n, _)| *n == s.name).map(|(_, v)| *v);
            let value = match (s.dim, given) {
                (Dim::Fixed(f), Some(g)) if f != g => {
                    return Err(LaunchError::FixedSizeMismatch {
                        kernel: self.name.clone(),
                        size: s.name.clone(),
                        fixed: f,
                        given: g,
                    })
                }
                (Dim::Fixed(f), _) => f,
                (Dim::Dynamic, Some(g)) => {
                    uniform.extend_from_slice(&g.to_le_bytes());
                    g
                }
                (Dim::Dynamic, None) => {
                    return Err(LaunchError::MissingSize {
                        kernel: self.name.clone(),
                        size: s.name.clone(),
                    })
                }
            };
            resolved.push((s.name.clone(), value));
        }
        while uniform.len() % 16 != 0 {
            uniform.push(0);
        }
        let grid = self.grid_for(&resolved, max_workgroups_per_dimension.max(1))?;
        Ok(Launch {
            uniform,
            grid,
            sizes: resolved,
        })
    }

    fn grid_for(&self, sizes: &[(String, u32)], limit: u32) -> Result<[u32; 3], LaunchError> {
        let mut counts = [0u64; 3];
        for (axis, dim) in self.grid.dims.iter().enumerate() {
            let mut product: u64 = 1;
            for term in &dim.terms {
                let v = match term {
                    GridTerm::Const(c) => u64::from(*c),
                    GridTerm::Size(name) => sizes
                        .iter()
                        .find(|(n, _)| n == name)
                        .map(|(_, v)| u64::from(*v))
                        .ok_or_else(|| LaunchError::MissingSize {
                            kernel: self.name.clone(),
                            size: name.clone(),
                        })?,
                };
                product = product.saturating_mul(v);
            }
            counts[axis] = product.div_ceil(u64::from(dim.divisor.max(1)));
        }
        if self.grid.fold_x && counts[0] > u64::from(limit) {
            let y = counts[0].div_ceil(u64::from(limit));
            counts[0] = u64::from(limit);
            counts[1] *= y;
        }
        let mut grid = [0u32; 3];
        for (axis, &c) in counts.iter().enumerate() {
            if c > u64::from(limit) {
                return Err(LaunchError::GridTooLarge {
                    kernel: self.name.clone(),
                    axis: ['x', 'y', 'z'][axis],
                    groups: c,
                    limit,
                });
            }
            grid[axis] = c as u32;
        }
        Ok(grid)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kernel(sizes: Vec<SizeDesc>, grid: Grid) -> Kernel {
        Kernel {
            name: "t".into(),
            wgsl: String::new(),
            entry_point: "main".into(),
            workgroup_size: [64, 1, 1],
            bindings: Vec::new(),
            sizes,
            grid,
            indexing_proven: true,
        }
    }

    #[test]
    fn launch_packs_dynamic_sizes_and_folds_large_grids() {
        let k = kernel(
            vec![
                SizeDesc {
                    name: "n".into(),
                    dim: Dim::Dynamic,
                },
                SizeDesc {
                    name: "d".into(),
                    dim: Dim::Fixed(4),
                },
            ],
            Grid::linear(&["n", "d"], 64),
        );
        let l = k.launch(&[("n", 100)], 65535).unwrap();
        assert_eq!(
            l.uniform,
            [100u32.to_le_bytes(), [0; 4], [0; 4], [0; 4]].concat()
        );
        assert_eq!(l.grid, [7, 1, 1]);
        let l = k.launch(&[("n", 70_000 * 16)], 65535).unwrap();
        assert_eq!(l.grid, [65535, 2, 1]);
        assert!(matches!(
            k.launch(&[("d", 5), ("n", 1)], 65535),
            Err(LaunchError::FixedSizeMismatch { .. })
        ));
        assert!(matches!(
            k.launch(&[], 65535),
            Err(LaunchError::MissingSize { .. })
        ));
        assert!(matches!(
            k.launch(&[("q", 1)], 65535),
            Err(LaunchError::UnknownSize { .. })
        ));
    }
}
