//! Fault-injection tooling: a linearizability checker for histories that
//! clients record against a live ensemble while faults are injected.

pub mod linearizability;
