//! Shared WGSL scaffolding: the `Params` uniform, binding declarations, size
//! constants, the entry-point signature and small math helpers. Every generator
//! builds its module through [`KernelBuilder`], so all kernels agree on layout.

use std::fmt::Write as _;

use crate::kernel::{Access, BindingDesc, Dim, Grid, Kernel, SizeDesc};

/// Element type of a storage buffer or value.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum ScalarType {
    /// 32-bit float.
    F32,
    /// 32-bit signed integer.
    I32,
    /// 32-bit unsigned integer.
    U32,
}

impl ScalarType {
    /// The WGSL type name.
    pub fn wgsl(self) -> &'static str {
        match self {
            ScalarType::F32 => "f32",
            ScalarType::I32 => "i32",
            ScalarType::U32 => "u32",
        }
    }

    /// A WGSL literal of this type for `v` (integers truncate toward zero and
    /// saturate, as the `cast` op does).
    pub fn literal(self, v: f64) -> String {
        match self {
            ScalarType::F32 => f32_literal(v as f32),
            ScalarType::I32 => {
                let i = if v.is_nan() { 0 } else { v as i32 };
                if i == i32::MIN {
                    "i32(-2147483648)".to_string()
                } else {
                    format!("{i}i")
                }
            }
            ScalarType::U32 => {
                let u = if v.is_nan() { 0 } else { v as u32 };
                format!("{u}u")
            }
        }
    }

    /// Size in bytes of one element.
    pub fn size_bytes(self) -> u64 {
        4
    }
}

/// A WGSL `f32` literal that reads back as exactly `v` (infinities and NaN are
/// built with `bitcast`, which WGSL allows in expressions).
pub fn f32_literal(v: f32) -> String {
    if v.is_finite() {
        format!("{v:?}f")
    } else {
        format!("bitcast<f32>({}u)", v.to_bits())
    }
}

/// The WGSL identifier of a size: its name in upper case.
pub(crate) fn size_ident(name: &str) -> String {
    name.to_ascii_uppercase()
}

/// Accumulates the pieces of one kernel module and renders it.
pub(crate) struct KernelBuilder {
    name: String,
    bindings: Vec<(String, Access, String)>,
    sizes: Vec<SizeDesc>,
    workgroup_size: [u32; 3],
    items: Vec<String>,
    subgroups: bool,
}

impl KernelBuilder {
    /// Starts a kernel named `name` with a 1-D workgroup of `workgroup` invocations.
    pub(crate) fn new(name: impl Into<String>, workgroup: u32) -> Self {
        KernelBuilder {
            name: name.into(),
            bindings: Vec::new(),
            sizes: Vec::new(),
            workgroup_size: [workgroup, 1, 1],
            items: Vec::new(),
            subgroups: false,
        }
    }

    /// Declares a size. Its WGSL identifier is the name in upper case.
    pub(crate) fn size(&mut self, name: &str, dim: Dim) -> &mut Self {
        debug_assert!(
            !self.sizes.iter().any(|s| s.name == name),
            "size {name} twice"
        );
        self.sizes.push(SizeDesc {
            name: name.to_string(),
            dim,
        });
        self
    }

    /// Declares a read-only storage binding `var<storage, read> name: array<ty>`.
    pub(crate) fn input(&mut self, name: &str, ty: ScalarType) -> &mut Self {
        self.input_typed(name, &format!("array<{}>", ty.wgsl()))
    }

    /// Declares a read-only storage binding of an explicit WGSL type.
    pub(crate) fn input_typed(&mut self, name: &str, ty: &str) -> &mut Self {
        self.bindings
            .push((name.to_string(), Access::ReadOnly, ty.to_string()));
        self
    }

    /// Declares a read-write storage binding of an explicit WGSL type.
    pub(crate) fn output_typed(&mut self, name: &str, ty: &str) -> &mut Self {
        self.bindings
            .push((name.to_string(), Access::ReadWrite, ty.to_string()));
        self
    }

    /// Declares a read-write storage binding `var<storage, read_write> name: array<ty>`.
    pub(crate) fn output(&mut self, name: &str, ty: ScalarType) -> &mut Self {
        self.bindings.push((
            name.to_string(),
            Access::ReadWrite,
            format!("array<{}>", ty.wgsl()),
        ));
        self
    }

    /// Adds a module-scope item (a helper function, a constant, a workgroup array).
    pub(crate) fn item(&mut self, wgsl: impl Into<String>) -> &mut Self {
        self.items.push(wgsl.into());
        self
    }

    /// Adds the `sgid` (`subgroup_invocation_id`) builtin to the entry point
    /// (naga accepts subgroup builtins without an `enable` directive).
    pub(crate) fn subgroups(&mut self) -> &mut Self {
        self.subgroups = true;
        self
    }

    /// Renders the module around `body` (the entry point's statements) and
    /// returns the kernel. The body may use the size identifiers, the builtins
    /// `gid`, `lid`, `wid`, `nwg`, `lidx` and `group` (the folded linear
    /// workgroup index `wid.x + wid.y * nwg.x`).
    pub(crate) fn finish(self, body: &str, grid: Grid) -> Kernel {
        let mut src = String::new();
        let _ = writeln!(src, "// Seam kernel `{}` (generated).", self.name);
        let dynamic: Vec<&SizeDesc> = self
            .sizes
            .iter()
            .filter(|s| s.dim == Dim::Dynamic)
            .collect();
        let mut descs = Vec::new();
        for (i, (name, access, ty)) in self.bindings.iter().enumerate() {
            let space = match access {
                Access::ReadOnly => "storage, read",
                Access::ReadWrite => "storage, read_write",
                Access::Uniform => "uniform",
            };
            let _ = writeln!(src, "@group(0) @binding({i}) var<{space}> {name}: {ty};");
            descs.push(BindingDesc {
                binding: i as u32,
                name: name.clone(),
                access: *access,
            });
        }
        if !dynamic.is_empty() {
            src.push_str("struct Params {\n");
            for s in &dynamic {
                let _ = writeln!(src, "    {}: u32,", s.name);
            }
            src.push_str("}\n");
            let b = descs.len() as u32;
            let _ = writeln!(src, "@group(0) @binding({b}) var<uniform> params: Params;");
            descs.push(BindingDesc {
                binding: b,
                name: "params".into(),
                access: Access::Uniform,
            });
        }
        for item in &self.items {
            src.push_str(item);
            if !item.ends_with('\n') {
                src.push('\n');
            }
        }
        let [x, y, z] = self.workgroup_size;
        let _ = writeln!(src, "@compute @workgroup_size({x}, {y}, {z})");
        src.push_str(
            "fn main(@builtin(global_invocation_id) gid: vec3<u32>,\n        \
             @builtin(local_invocation_id) lid: vec3<u32>,\n        \
             @builtin(local_invocation_index) lidx: u32,\n        \
             @builtin(workgroup_id) wid: vec3<u32>,\n        \
             @builtin(num_workgroups) nwg: vec3<u32>",
        );
        if self.subgroups {
            src.push_str(",\n        @builtin(subgroup_invocation_id) sgid: u32");
        }
        src.push_str(") {\n");
        for s in &self.sizes {
            let id = size_ident(&s.name);
            match s.dim {
                Dim::Fixed(v) => {
                    let _ = writeln!(src, "    let {id}: u32 = {v}u;");
                }
                Dim::Dynamic => {
                    let _ = writeln!(src, "    let {id}: u32 = params.{};", s.name);
                }
            }
        }
        src.push_str("    let group: u32 = wid.x + wid.y * nwg.x;\n");
        for line in body.lines() {
            if line.trim().is_empty() {
                src.push('\n');
            } else {
                src.push_str("    ");
                src.push_str(line);
                src.push('\n');
            }
        }
        src.push_str("}\n");
        Kernel {
            name: self.name,
            wgsl: src,
            entry_point: "main".into(),
            workgroup_size: self.workgroup_size,
            bindings: descs,
            sizes: self.sizes,
            grid,
            // Every generator clamps or guards each index against its sizes.
            indexing_proven: true,
        }
    }
}

/// WGSL helpers for activations, shared by the element-wise, gated-matmul and
/// MoE kernels: seam-core's, next to the scalar math they implement.
pub(crate) const ACTIVATIONS: &str = seam_core::WGSL_ACTIVATIONS;

/// Module items for a workgroup-wide reduction over `w` invocations (a power of
/// two): `seam_wg_sum(v, lidx)` and `seam_wg_max(v, lidx)`, each returning the
/// result to every invocation. Call them in uniform control flow.
pub(crate) fn workgroup_reduce(w: u32) -> String {
    let mut s = format!("var<workgroup> seam_red: array<f32, {w}>;\n");
    for (name, op) in [
        ("sum", "seam_red[l] + seam_red[l + s]"),
        ("max", "max(seam_red[l], seam_red[l + s])"),
    ] {
        let _ = write!(
            s,
            "fn seam_wg_{name}(v: f32, l: u32) -> f32 {{
    seam_red[l] = v;
    workgroupBarrier();
    for (var s = {half}u; s > 0u; s = s >> 1u) {{
        if (l < s) {{ seam_red[l] = {op}; }}
        workgroupBarrier();
    }}
    let r = seam_red[0];
    workgroupBarrier();
    return r;
}}
",
            half = w / 2
        );
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn f32_literals_round_trip() {
        assert_eq!(f32_literal(1.0), "1.0f");
        assert_eq!(f32_literal(-0.5), "-0.5f");
        assert!(f32_literal(f32::INFINITY).starts_with("bitcast"));
        assert_eq!(ScalarType::I32.literal(-3.7), "-3i");
        assert_eq!(ScalarType::U32.literal(5.0), "5u");
    }
}
