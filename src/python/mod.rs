//! Values spelled the way Barman's Python spells them: the literals of `backup.info`, times,
//! `json.dumps` and the `str()` of what Barman prints. Shared by the catalog, the backup, the
//! PostgreSQL client and the commands' renderers. A leaf: it imports nothing from the rest of
//! the crate.

mod fmt;
mod json;
mod repr;
mod timestamp;

pub use fmt::{human_timedelta, or_none, pretty_size, py_str};
pub use json::json_dumps;
pub use repr::{PyValue, float_repr, str_repr};
pub use timestamp::Timestamp;
