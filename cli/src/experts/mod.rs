//! Expert-cache tools: the access-trace format ([`trace`]), synthetic traces
//! (`seam trace-gen`, [`synthetic`]), traces recorded from a model's routers
//! (`seam trace-record`, [`record`]) and the simulator that replays a trace
//! through the runtime's expert cache (`seam cache-sim`, [`simulate`]), and
//! the options that keep experts in host memory when running a bundle
//! ([`offload`]).

pub mod offload;
pub mod record;
pub mod simulate;
pub mod synthetic;
pub mod trace;
