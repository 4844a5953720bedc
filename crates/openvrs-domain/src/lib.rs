//! The vocabulary of openvrs: validated identifiers, names, dates, doses and persons.
//!
//! Every type here validates when it is built, so the rest of the system never checks again.
//! This crate does no IO: no files, no clock, no network, no SQL.

pub mod account;
pub mod aggregate;
pub mod audit;
pub mod certificate;
pub mod date;
pub mod dose;
mod error;
pub mod ids;
pub mod name;
pub mod person;
pub mod prefecture;
pub mod product;
pub mod quality;
pub mod sex;
pub mod text;

pub use error::Invalid;
