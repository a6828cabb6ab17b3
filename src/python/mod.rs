//! Values spelled the way Barman's Python spells them, shared by the catalog and the PostgreSQL
//! client. A leaf: it imports nothing from the rest of the crate.

mod timestamp;

pub use timestamp::Timestamp;
