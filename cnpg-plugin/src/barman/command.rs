//! The argument vectors of the `barman-cloud-*` commands, as the plugin builds them from an
//! ObjectStore's configuration (architecture §5-§7).
