//! The Barman Cloud object layout.
