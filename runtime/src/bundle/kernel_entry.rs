//! Converting between generated kernels and their description in the manifest.

use seam_shaders::{Access, BindingDesc, Dim, Grid, GridDim, GridTerm, Kernel, SizeDesc};

use super::{AccessEntry, BindingEntry, GridEntry, GridTermEntry, KernelEntry, SizeEntry};

impl KernelEntry {
    /// Describes `kernel`, whose source lies at `source_offset..+source_len` of the
    /// shaders section.
    pub fn describe(kernel: &Kernel, source_offset: u64, source_len: u64) -> KernelEntry {
        let grid_dim = |g: &GridDim| GridEntry {
            terms: g
                .terms
                .iter()
                .map(|t| match t {
                    GridTerm::Const(c) => GridTermEntry::Const(*c),
                    GridTerm::Size(s) => GridTermEntry::Size(s.clone()),
                })
                .collect(),
            divisor: g.divisor,
        };
        KernelEntry {
            name: kernel.name.clone(),
            entry_point: kernel.entry_point.clone(),
            source_offset,
            source_len,
            workgroup_size: kernel.workgroup_size,
            bindings: kernel
                .bindings
                .iter()
                .map(|b| BindingEntry {
                    binding: b.binding,
                    name: b.name.clone(),
                    access: match b.access {
                        Access::ReadOnly => AccessEntry::ReadOnly,
                        Access::ReadWrite => AccessEntry::ReadWrite,
                        Access::Uniform => AccessEntry::Uniform,
                    },
                })
                .collect(),
            sizes: kernel
                .sizes
                .iter()
                .map(|s| SizeEntry {
                    name: s.name.clone(),
                    fixed: s.dim.fixed(),
                })
                .collect(),
            grid: [
                grid_dim(&kernel.grid.dims[0]),
                grid_dim(&kernel.grid.dims[1]),
                grid_dim(&kernel.grid.dims[2]),
            ],
            fold_x: kernel.grid.fold_x,
            indexing_proven: kernel.indexing_proven,
        }
    }

    /// Rebuilds the kernel with its WGSL source.
    pub fn to_kernel(&self, wgsl: &str) -> Kernel {
        let grid_dim = |g: &GridEntry| GridDim {
            terms: g
                .terms
                .iter()
                .map(|t| match t {
                    GridTermEntry::Const(c) => GridTerm::Const(*c),
                    GridTermEntry::Size(s) => GridTerm::Size(s.clone()),
                })
                .collect(),
            divisor: g.divisor,
        };
        Kernel {
            name: self.name.clone(),
            wgsl: wgsl.to_string(),
            entry_point: self.entry_point.clone(),
            workgroup_size: self.workgroup_size,
            bindings: self
                .bindings
                .iter()
                .map(|b| BindingDesc {
                    binding: b.binding,
                    name: b.name.clone(),
                    access: match b.access {
                        AccessEntry::ReadOnly => Access::ReadOnly,
                        AccessEntry::ReadWrite => Access::ReadWrite,
                        AccessEntry::Uniform => Access::Uniform,
                    },
                })
                .collect(),
            sizes: self
                .sizes
                .iter()
                .map(|s| SizeDesc {
                    name: s.name.clone(),
                    dim: s.fixed.map_or(Dim::Dynamic, Dim::Fixed),
                })
                .collect(),
            grid: Grid {
                dims: [
                    grid_dim(&self.grid[0]),
                    grid_dim(&self.grid[1]),
                    grid_dim(&self.grid[2]),
                ],
                fold_x: self.fold_x,
            },
            indexing_proven: self.indexing_proven,
        }
    }
}
