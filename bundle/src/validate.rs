//! The manifest's internal consistency, checked before any GPU work: every
//! index in range, every byte range inside its section, every size computable
//! at the dims' bounds and no larger than a limit.

use std::collections::{HashMap, HashSet};

use seam_core::{Access, Dim, SizeExpr};

use crate::{BufferRole, BundleError, Collective, Dispatch, EntryPoint, ExpertLayer, Manifest};

/// The largest buffer a manifest may ask for (1 TiB): anything larger is corrupt.
const MAX_BUFFER_BYTES: u64 = 1 << 40;

/// The most dispatches one entry point may declare (16,384). The largest
/// example model records a few hundred; recording tens of thousands in one
/// compute pass exhausts some drivers' descriptor pools (lavapipe crashes at
/// 65,536), so a bundle declaring more is refused before anything is recorded.
pub const MAX_DISPATCHES_PER_ENTRY: usize = 16_384;

/// The most ranks a shard set may have.
const MAX_RANKS: u32 = 1024;

/// The most experts an MoE layer may declare (65,536; real models have up to a few hundred).
const MAX_EXPERTS: u32 = 1 << 16;

/// A manifest with the lengths of the sections it indexes into.
pub(crate) struct Validator<'m> {
    pub(crate) m: &'m Manifest,
    pub(crate) shaders_len: u64,
    pub(crate) weights_len: u64,
}

fn bad<T>(message: String) -> Result<T, BundleError> {
    Err(BundleError::ManifestInvalid(message))
}

impl Validator<'_> {
    /// Runs every check, section by section.
    pub(crate) fn run(&self) -> Result<(), BundleError> {
        self.dims()?;
        self.weights()?;
        self.kernels()?;
        self.params()?;
        self.buffers()?;
        self.states()?;
        self.caches()?;
        if let Some(s) = &self.m.shard {
            if s.ranks == 0 || s.ranks > MAX_RANKS || s.rank >= s.ranks {
                return bad(format!(
                    "shard rank {} of {} ranks (1..={MAX_RANKS} ranks)",
                    s.rank, s.ranks
                ));
            }
        }
        for ep in &self.m.entry_points {
            self.entry_point(ep)?;
        }
        Ok(())
    }

    /// `e` at the dims' bounds; `what` names it in errors.
    fn at_bounds(&self, e: &SizeExpr, what: &str) -> Result<u64, BundleError> {
        for d in e.dims() {
            if !self.m.dims.iter().any(|b| b.name == d) {
                return bad(format!("{what} uses undeclared dim `{d}`"));
            }
        }
        e.eval(&|d| self.m.dims.iter().find(|b| b.name == d).map(|b| b.max))
            .map_err(|err| BundleError::ManifestInvalid(format!("{what}: {err}")))
    }

    fn buffer(&self, i: u32, what: &str) -> Result<(), BundleError> {
        if (i as usize) < self.m.buffers.len() {
            Ok(())
        } else {
            bad(format!("{what} refers to missing buffer {i}"))
        }
    }

    fn dims(&self) -> Result<(), BundleError> {
        let mut names = HashSet::new();
        for d in &self.m.dims {
            if !names.insert(d.name.as_str()) || d.max == 0 {
                return bad(format!("dim `{}` is duplicated or has bound 0", d.name));
            }
        }
        Ok(())
    }

    fn weights(&self) -> Result<(), BundleError> {
        for (i, w) in self.m.weights.iter().enumerate() {
            let elems = w.shape.iter().try_fold(1u64, |a, &d| a.checked_mul(d));
            let expected = elems.and_then(|n| n.checked_mul(w.dtype.size_bytes() as u64));
            if expected != Some(w.bytes) {
                return bad(format!(
                    "weight {i} `{}`: {} bytes do not match its shape",
                    w.name, w.bytes
                ));
            }
            let end = w.offset.checked_add(w.bytes);
            match w.file {
                None => {
                    if w.offset % crate::format::ALIGN != 0
                        || end.is_none_or(|end| end > self.weights_len)
                    {
                        return bad(format!(
                            "weight {i} `{}` lies outside the weights section",
                            w.name
                        ));
                    }
                }
                Some(f) => {
                    let Some(file) = self.m.external_files.get(f as usize) else {
                        return bad(format!(
                            "weight {i} `{}` refers to missing external file {f}",
                            w.name
                        ));
                    };
                    if end.is_none_or(|end| end > file.bytes) {
                        return bad(format!(
                            "weight {i} `{}` lies outside external file `{}`",
                            w.name, file.path
                        ));
                    }
                }
            }
        }
        for f in &self.m.external_files {
            crate::external::check_path(&f.path)?;
        }
        crate::disjoint::check_disjoint(&self.m.weights)
    }

    fn kernels(&self) -> Result<(), BundleError> {
        for (i, k) in self.m.kernels.iter().enumerate() {
            if k.source_offset
                .checked_add(k.source_len)
                .is_none_or(|end| end > self.shaders_len)
            {
                return bad(format!(
                    "kernel {i} `{}` lies outside the shaders section",
                    k.kernel.name
                ));
            }
            let kernel = &k.kernel;
            if kernel.workgroup_size.contains(&0) || kernel.grid.dims.iter().any(|g| g.divisor == 0)
            {
                return bad(format!(
                    "kernel {i} `{}` has an empty workgroup or grid divisor",
                    kernel.name
                ));
            }
        }
        Ok(())
    }

    fn params(&self) -> Result<(), BundleError> {
        for p in &self.m.params {
            if p.weight as usize >= self.m.weights.len() {
                return bad(format!(
                    "param `{}` refers to missing weight {}",
                    p.name, p.weight
                ));
            }
        }
        Ok(())
    }

    fn buffers(&self) -> Result<(), BundleError> {
        let mut holder_of_weight = HashMap::new();
        for (i, b) in self.m.buffers.iter().enumerate() {
            let n = self.at_bounds(&b.bytes, &format!("buffer {i}"))?;
            if n > MAX_BUFFER_BYTES {
                return bad(format!("buffer {i} `{}` asks for {n} bytes", b.name));
            }
            if let BufferRole::Weight(w) = b.role {
                let Some(weight) = self.m.weights.get(w as usize) else {
                    return bad(format!("buffer {i} refers to missing weight {w}"));
                };
                if weight.bytes > n {
                    return bad(format!("buffer {i} is smaller than weight {w}"));
                }
                if let Some(first) = holder_of_weight.insert(w, i) {
                    return Err(BundleError::WeightBufferRepeated {
                        weight: w,
                        first,
                        second: i,
                    });
                }
            }
        }
        Ok(())
    }

    fn states(&self) -> Result<(), BundleError> {
        for st in &self.m.states {
            let Some(b) = self.m.buffers.get(st.buffer as usize) else {
                return bad(format!(
                    "state `{}` refers to missing buffer {}",
                    st.name, st.buffer
                ));
            };
            if b.role != BufferRole::State {
                return bad(format!(
                    "state `{}` lives in a buffer that is not a state buffer",
                    st.name
                ));
            }
            let elems = self.at_bounds(
                &SizeExpr::product(st.shape.clone()),
                &format!("state `{}`", st.name),
            )?;
            if self.at_bounds(&b.bytes, "state buffer")?
                < elems.saturating_mul(st.dtype.size_bytes() as u64)
            {
                return bad(format!("state `{}` does not fit its buffer", st.name));
            }
        }
        Ok(())
    }

    fn caches(&self) -> Result<(), BundleError> {
        let mut keys = HashSet::new();
        for c in &self.m.caches {
            if c.key.is_empty() || !keys.insert(c.key.as_str()) {
                return bad(format!("cache key `{}` is empty or duplicated", c.key));
            }
            if c.refresh == 0 {
                return bad(format!("cache `{}` has refresh period 0", c.key));
            }
            let Some(b) = self.m.buffers.get(c.buffer as usize) else {
                return bad(format!(
                    "cache `{}` refers to missing buffer {}",
                    c.key, c.buffer
                ));
            };
            if b.role != BufferRole::Cache {
                return bad(format!(
                    "cache `{}` lives in a buffer that is not a cache buffer",
                    c.key
                ));
            }
            let elems = self.at_bounds(
                &SizeExpr::product(c.shape.clone()),
                &format!("cache `{}`", c.key),
            )?;
            if self.at_bounds(&b.bytes, "cache buffer")?
                < elems.saturating_mul(c.dtype.size_bytes() as u64)
            {
                return bad(format!("cache `{}` does not fit its buffer", c.key));
            }
        }
        Ok(())
    }

    /// Refuses an entry point where skipping the dispatches of a reused cache
    /// would leave a dispatch that still runs (or an output) reading what a
    /// skipped one wrote to an activation buffer.
    fn cache_skips(&self, ep: &EntryPoint) -> Result<(), BundleError> {
        let mut writer: HashMap<u32, u32> = HashMap::new();
        let is_activation = |b: u32| self.m.buffers[b as usize].role == BufferRole::Activation;
        for (di, d) in ep.dispatches.iter().enumerate() {
            let kernel = &self.m.kernels[d.kernel as usize].kernel;
            let bound: Vec<_> = kernel.storage_bindings().zip(&d.buffers).collect();
            for &(binding, r) in &bound {
                let stale = writer.get(&r.buffer).filter(|&&c| d.cache != Some(c));
                if let (Access::ReadOnly, Some(&c)) = (binding.access, stale) {
                    return bad(format!(
                        "`{}` dispatch {di} reads buffer {} written by a dispatch that reusing cache `{}` skips",
                        ep.name, r.buffer, self.m.caches[c as usize].key
                    ));
                }
            }
            for (binding, r) in bound {
                if binding.access == Access::ReadWrite && is_activation(r.buffer) {
                    match d.cache {
                        Some(c) => writer.insert(r.buffer, c),
                        None => writer.remove(&r.buffer),
                    };
                }
            }
        }
        if let Some(io) = ep.outputs.iter().find(|io| writer.contains_key(&io.buffer)) {
            return bad(format!(
                "`{}` output `{}` is written by a dispatch that a cache's reuse skips",
                ep.name, io.name
            ));
        }
        Ok(())
    }

    fn entry_point(&self, ep: &EntryPoint) -> Result<(), BundleError> {
        if ep.dispatches.len() > MAX_DISPATCHES_PER_ENTRY {
            return Err(BundleError::TooManyDispatches {
                entry: ep.name.clone(),
                count: ep.dispatches.len(),
                limit: MAX_DISPATCHES_PER_ENTRY,
            });
        }
        for io in ep.inputs.iter().chain(&ep.outputs) {
            self.buffer(
                io.buffer,
                &format!("`{}` input/output `{}`", ep.name, io.name),
            )?;
            for e in &io.shape {
                self.at_bounds(e, &format!("shape of `{}`", io.name))?;
            }
        }
        for &si in &ep.states {
            let Some(st) = self.m.states.get(si as usize) else {
                return bad(format!("`{}` refers to missing state {si}", ep.name));
            };
            match &ep.state_length {
                Some(l) if st.shape.first() != Some(&SizeExpr::Dim(l.dim.clone())) => {
                    return bad(format!(
                        "`{}`: state `{}` does not lead with the entry's length dim",
                        ep.name, st.name
                    ));
                }
                // Without a length the states are pools, of static shapes.
                None if st.shape.iter().any(|e| e.as_const().is_none()) => {
                    return bad(format!(
                        "`{}`: state `{}` has no length dim, so its shape must be static",
                        ep.name, st.name
                    ));
                }
                _ => {}
            }
        }
        if let Some(l) = &ep.state_length {
            let first = self
                .m
                .entry_points
                .iter()
                .find_map(|e| e.state_length.as_ref());
            if let Some(f) = first.filter(|f| f.dim != l.dim) {
                return bad(format!(
                    "`{}` has length dim `{}` but another entry point `{}`: a session has one length",
                    ep.name, l.dim, f.dim
                ));
            }
            self.at_bounds(
                &SizeExpr::Dim(l.dim.clone()),
                &format!("`{}` length dim", ep.name),
            )?;
            for d in l.advance.dims() {
                if !ep
                    .inputs
                    .iter()
                    .any(|io| io.shape.contains(&SizeExpr::Dim(d.to_string())))
                {
                    return bad(format!(
                        "`{}` appends `{d}` rows, which no input binds",
                        ep.name
                    ));
                }
            }
        }
        for (di, d) in ep.dispatches.iter().enumerate() {
            self.dispatch(ep, di, d)?;
        }
        for layer in &ep.expert_layers {
            self.expert_layer(ep, layer)?;
        }
        for c in &ep.collectives {
            self.collective(ep, c)?;
        }
        self.cache_skips(ep)
    }

    /// A reduction: in order and in range, its elements inside its buffer.
    fn collective(&self, ep: &EntryPoint, c: &Collective) -> Result<(), BundleError> {
        let what = format!("`{}` collective `{}`", ep.name, c.name);
        if !(c.start <= c.wait && c.wait as usize <= ep.dispatches.len()) {
            return bad(format!(
                "{what}: starts at dispatch {} and is waited for at {} of {}",
                c.start,
                c.wait,
                ep.dispatches.len()
            ));
        }
        self.buffer(c.buffer, &what)?;
        let elements = self.at_bounds(&c.elements, &what)?;
        let bytes = self.at_bounds(&self.m.buffers[c.buffer as usize].bytes, &what)?;
        if elements.checked_mul(4).is_none_or(|b| b > bytes) {
            return bad(format!(
                "{what}: {elements} f32 do not fit buffer {}",
                c.buffer
            ));
        }
        Ok(())
    }

    /// An MoE layer's record: dispatches in order and in range, buffers
    /// large enough for the ids and blocks at the bounds, stacks that divide
    /// into whole experts.
    fn expert_layer(&self, ep: &EntryPoint, l: &ExpertLayer) -> Result<(), BundleError> {
        let what = format!("`{}` expert layer `{}`", ep.name, l.name);
        if l.experts == 0 || l.experts > MAX_EXPERTS || l.block_rows == 0 {
            return bad(format!(
                "{what} has {} experts in blocks of {} (1..={MAX_EXPERTS} experts, blocks of at least 1)",
                l.experts, l.block_rows
            ));
        }
        let n = ep.dispatches.len() as u64;
        let plan = u64::from(l.plan);
        let ready_ok = l.ids_ready.is_none_or(|r| u64::from(r) < plan);
        if !(ready_ok && plan < u64::from(l.experts_end) && u64::from(l.experts_end) <= n) {
            return bad(format!(
                "{what}: dispatches out of order (ids ready after {:?}, plan {}, experts end {}, of {n})",
                l.ids_ready, l.plan, l.experts_end
            ));
        }
        for (buffer, count, part) in [
            (l.ids, &l.pairs, "ids"),
            (l.block_expert, &l.blocks, "blocks"),
        ] {
            self.buffer(buffer, &what)?;
            let count = self.at_bounds(count, &format!("{what} {part}"))?;
            let bytes = self.at_bounds(&self.m.buffers[buffer as usize].bytes, &what)?;
            if count.checked_mul(4).is_none_or(|b| b > bytes) {
                return bad(format!("{what}: {count} {part} do not fit buffer {buffer}"));
            }
        }
        if l.stacks.is_empty() {
            return bad(format!("{what} names no expert stack"));
        }
        for &w in &l.stacks {
            let Some(weight) = self.m.weights.get(w as usize) else {
                return bad(format!("{what} refers to missing weight {w}"));
            };
            if weight.bytes % u64::from(l.experts) != 0 {
                return bad(format!(
                    "{what}: stack `{}` of {} bytes does not hold {} whole experts",
                    weight.name, weight.bytes, l.experts
                ));
            }
        }
        Ok(())
    }

    fn dispatch(&self, ep: &EntryPoint, di: usize, d: &Dispatch) -> Result<(), BundleError> {
        let what = format!("`{}` dispatch {di}", ep.name);
        let Some(kernel) = self.m.kernels.get(d.kernel as usize).map(|k| &k.kernel) else {
            return bad(format!("{what} refers to missing kernel {}", d.kernel));
        };
        let storage = kernel.storage_bindings().count();
        if d.buffers.len() != storage {
            return bad(format!(
                "{what} binds {} buffers but kernel `{}` has {storage}",
                d.buffers.len(),
                kernel.name
            ));
        }
        for b in &d.buffers {
            self.buffer(b.buffer, &what)?;
        }
        if let Some(c) = d.cache.filter(|&c| c as usize >= self.m.caches.len()) {
            return bad(format!("{what} refers to missing cache {c}"));
        }
        for (name, e) in &d.sizes {
            if !kernel
                .sizes
                .iter()
                .any(|s| s.name == *name && s.dim == Dim::Dynamic)
            {
                return bad(format!(
                    "{what} sets `{name}`, not a dynamic size of `{}`",
                    kernel.name
                ));
            }
            if self.at_bounds(e, &what)? > u64::from(u32::MAX) {
                return bad(format!("{what} has a size over 32 bits"));
            }
        }
        Ok(())
    }
}
