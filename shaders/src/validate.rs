//! naga validation of generated kernels and translation to other shading
//! languages for `--emit` (enabled by the `validate` cargo feature).

use crate::error::ShaderError;
use seam_core::Kernel;

/// A language [`emit`] can write.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum Target {
    /// The WGSL as generated.
    Wgsl,
    /// SPIR-V 1.0, disassembled as hex words (one per line) for inspection.
    Spirv,
    /// Metal Shading Language.
    Msl,
    /// HLSL (shader model 5.1).
    Hlsl,
}

impl Target {
    /// The target's short name.
    pub fn name(self) -> &'static str {
        match self {
            Target::Wgsl => "wgsl",
            Target::Spirv => "spirv",
            Target::Msl => "msl",
            Target::Hlsl => "hlsl",
        }
    }
}

/// A kernel's module as naga parsed and validated it.
#[derive(Debug)]
pub struct Validated {
    /// The parsed module.
    pub module: naga::Module,
    /// The validator's analysis (needed by the back ends).
    pub info: naga::valid::ModuleInfo,
}

/// Parses and validates the kernel's WGSL with naga, and checks that the entry
/// point and its workgroup size match the kernel description.
pub fn validate(kernel: &Kernel) -> Result<Validated, ShaderError> {
    let module = naga::front::wgsl::parse_str(&kernel.wgsl).map_err(|e| ShaderError::Parse {
        kernel: kernel.name.clone(),
        message: e.emit_to_string(&kernel.wgsl),
    })?;
    let caps = naga::valid::Capabilities::default()
        | naga::valid::Capabilities::SHADER_FLOAT16
        | naga::valid::Capabilities::SUBGROUP;
    let info = naga::valid::Validator::new(naga::valid::ValidationFlags::all(), caps)
        .subgroup_stages(naga::valid::ShaderStages::COMPUTE)
        .subgroup_operations(naga::valid::SubgroupOperationSet::all())
        .validate(&module)
        .map_err(|e| ShaderError::Validation {
            kernel: kernel.name.clone(),
            message: e.emit_to_string(&kernel.wgsl),
        })?;
    let ep = module
        .entry_points
        .iter()
        .find(|ep| ep.name == kernel.entry_point)
        .ok_or_else(|| ShaderError::Validation {
            kernel: kernel.name.clone(),
            message: format!("no entry point `{}`", kernel.entry_point),
        })?;
    if ep.workgroup_size != kernel.workgroup_size {
        return Err(ShaderError::Validation {
            kernel: kernel.name.clone(),
            message: format!(
                "workgroup size {:?} in WGSL, {:?} in the description",
                ep.workgroup_size, kernel.workgroup_size
            ),
        });
    }
    Ok(Validated { module, info })
}

/// Validates the kernel and writes it in the target language.
pub fn emit(kernel: &Kernel, target: Target) -> Result<String, ShaderError> {
    let v = validate(kernel)?;
    let err = |message: String| ShaderError::Emit {
        kernel: kernel.name.clone(),
        target: target.name().to_string(),
        message,
    };
    match target {
        Target::Wgsl => Ok(kernel.wgsl.clone()),
        Target::Spirv => {
            let words = naga::back::spv::write_vec(
                &v.module,
                &v.info,
                &naga::back::spv::Options::default(),
                None,
            )
            .map_err(|e| err(e.to_string()))?;
            let mut out = String::with_capacity(words.len() * 11);
            for w in words {
                out.push_str(&format!("0x{w:08x}\n"));
            }
            Ok(out)
        }
        Target::Msl => {
            let (src, _) = naga::back::msl::write_string(
                &v.module,
                &v.info,
                &naga::back::msl::Options::default(),
                &naga::back::msl::PipelineOptions::default(),
            )
            .map_err(|e| err(e.to_string()))?;
            Ok(src)
        }
        Target::Hlsl => {
            let options = naga::back::hlsl::Options::default();
            let pipeline = naga::back::hlsl::PipelineOptions::default();
            let mut src = String::new();
            let mut w = naga::back::hlsl::Writer::new(&mut src, &options, &pipeline);
            w.write(&v.module, &v.info, None)
                .map_err(|e| err(e.to_string()))?;
            Ok(src)
        }
    }
}

/// The SPIR-V words of a validated kernel (for tools that want the binary).
pub fn spirv_words(kernel: &Kernel) -> Result<Vec<u32>, ShaderError> {
    let v = validate(kernel)?;
    naga::back::spv::write_vec(
        &v.module,
        &v.info,
        &naga::back::spv::Options::default(),
        None,
    )
    .map_err(|e| ShaderError::Emit {
        kernel: kernel.name.clone(),
        target: "spirv".into(),
        message: e.to_string(),
    })
}
