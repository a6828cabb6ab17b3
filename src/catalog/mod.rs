//! The catalog: what Barman stores about backups (`backup.info`, keep annotations).
