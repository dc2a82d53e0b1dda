//! Helpers shared by the integration tests. Each test binary that needs them
//! says `mod common;`; not every binary uses every helper.
#![allow(dead_code)]

pub mod charts;
pub mod cli;
pub mod faulty;
pub mod hub;
pub mod pg;
pub mod probe;
pub mod registry;
