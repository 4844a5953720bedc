//! Scenarios run on every backend (`main.rs` lists them), one module per area of the store as
//! its traits divide it (`crates/openvrs-store/src`); `fixtures` makes what they start from.

pub mod accounts;
pub mod audit;
pub mod certificates;
pub mod inquiries;
pub mod keys;
pub mod municipalities;
pub mod persons;
pub mod records;
pub mod schema;
pub mod tablets;

pub mod fixtures;
