//! The `openvrs` command as a user runs it: a real process, a real data directory. One module
//! per area of the command; `common` runs it, `fixtures` makes the data directories the
//! scenarios start from.

#![allow(clippy::unwrap_used)] // tests panic on purpose: that is how they fail

mod certificates;
mod channels;
mod common;
mod faults;
mod fixtures;
mod imports;
mod operations;
mod processes;
mod serve;
mod setup;
mod tablets;
mod tidy;
