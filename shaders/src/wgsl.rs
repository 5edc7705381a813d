//! Shared WGSL scaffolding: the `Params` uniform, binding declarations, size
//! constants, the entry-point signature and small math helpers. Every generator
//! builds its module through [`KernelBuilder`], so all kernels agree on layout,
//! and writes its WGSL with a [`WgslWriter`].

mod writer;

pub(crate) use writer::{wgsl, WgslWriter};

use seam_core::{Access, BindingDesc, Dim, Grid, Kernel, SizeDesc};

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
        let mut w = WgslWriter::new();
        wgsl!(w, "// Seam kernel `{}` (generated).", self.name);
        let bindings = self.write_bindings(&mut w);
        for item in &self.items {
            w.lines(item);
        }
        self.write_entry_point(&mut w, body);
        Kernel {
            name: self.name,
            wgsl: w.finish(),
            entry_point: "main".into(),
            workgroup_size: self.workgroup_size,
            bindings,
            sizes: self.sizes,
            grid,
            // Every generator clamps or guards each index against its sizes.
            indexing_proven: true,
        }
    }

    /// Declares the storage bindings in order, then — when any size is
    /// dynamic — the `Params` struct and its uniform binding; returns their
    /// descriptions.
    fn write_bindings(&self, w: &mut WgslWriter) -> Vec<BindingDesc> {
        let mut descs = Vec::new();
        for (i, (name, access, ty)) in self.bindings.iter().enumerate() {
            let space = match access {
                Access::ReadOnly => "storage, read",
                Access::ReadWrite => "storage, read_write",
                Access::Uniform => "uniform",
            };
            wgsl!(w, "@group(0) @binding({i}) var<{space}> {name}: {ty};");
            descs.push(BindingDesc {
                binding: i as u32,
                name: name.clone(),
                access: *access,
            });
        }
        let mut dynamic = self
            .sizes
            .iter()
            .filter(|s| s.dim == Dim::Dynamic)
            .peekable();
        if dynamic.peek().is_some() {
            w.open("struct Params {");
            for size in dynamic {
                wgsl!(w, "{}: u32,", size.name);
            }
            w.close();
            let binding = descs.len() as u32;
            wgsl!(
                w,
                "@group(0) @binding({binding}) var<uniform> params: Params;"
            );
            descs.push(BindingDesc {
                binding,
                name: "params".into(),
                access: Access::Uniform,
            });
        }
        descs
    }

    /// The entry point `main`: its builtins, the size constants, `group`, then
    /// `body`.
    fn write_entry_point(&self, w: &mut WgslWriter, body: &str) {
        let [x, y, z] = self.workgroup_size;
        wgsl!(w, "@compute @workgroup_size({x}, {y}, {z})");
        let mut builtins = vec![
            "@builtin(global_invocation_id) gid: vec3<u32>",
            "@builtin(local_invocation_id) lid: vec3<u32>",
            "@builtin(local_invocation_index) lidx: u32",
            "@builtin(workgroup_id) wid: vec3<u32>",
            "@builtin(num_workgroups) nwg: vec3<u32>",
        ];
        if self.subgroups {
            builtins.push("@builtin(subgroup_invocation_id) sgid: u32");
        }
        let last = builtins.len() - 1;
        for (i, builtin) in builtins.iter().enumerate() {
            let lead = if i == 0 { "fn main(" } else { "        " };
            if i == last {
                w.open(format_args!("{lead}{builtin}) {{"));
            } else {
                wgsl!(w, "{lead}{builtin},");
            }
        }
        for size in &self.sizes {
            let id = size_ident(&size.name);
            match size.dim {
                Dim::Fixed(v) => wgsl!(w, "let {id}: u32 = {v}u;"),
                Dim::Dynamic => wgsl!(w, "let {id}: u32 = params.{};", size.name),
            }
        }
        w.line("let group: u32 = wid.x + wid.y * nwg.x;");
        w.lines(body);
        w.close();
    }
}

/// WGSL helpers for activations, shared by the element-wise, gated-matmul and
/// MoE kernels: seam-core's, next to the scalar math they implement.
pub(crate) const ACTIVATIONS: &str = seam_core::WGSL_ACTIVATIONS;

/// Module items for a workgroup-wide reduction over `workgroup` invocations (a power of
/// two): `seam_wg_sum(v, lidx)` and `seam_wg_max(v, lidx)`, each returning the
/// result to every invocation. Call them in uniform control flow.
pub(crate) fn workgroup_reduce(workgroup: u32) -> String {
    let mut out = WgslWriter::new();
    wgsl!(out, "var<workgroup> seam_red: array<f32, {workgroup}>;");
    for (name, op) in [
        ("sum", "seam_red[l] + seam_red[l + s]"),
        ("max", "max(seam_red[l], seam_red[l + s])"),
    ] {
        out.open(format_args!("fn seam_wg_{name}(v: f32, l: u32) -> f32 {{"));
        out.line("seam_red[l] = v;");
        out.line("workgroupBarrier();");
        out.open(format_args!(
            "for (var s = {}u; s > 0u; s = s >> 1u) {{",
            workgroup / 2
        ));
        wgsl!(out, "if (l < s) {{ seam_red[l] = {op}; }}");
        out.line("workgroupBarrier();");
        out.close();
        out.line("let r = seam_red[0];");
        out.line("workgroupBarrier();");
        out.line("return r;");
        out.close();
    }
    out.finish()
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
