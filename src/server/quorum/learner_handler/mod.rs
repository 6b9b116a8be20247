//! `LearnerHandler`: the leader's side of one learner connection.

pub mod sync_plan;
