complete -c barman-cloud-restore -l log-format -d 'Log lines as Barman writes them (text) or as JSON objects, one per line (our addition)' -r -f -a "text\t''
json\t''"
complete -c barman-cloud-restore -l cloud-provider -d 'The cloud provider to use as a storage backend' -r -f -a "aws-s3\t'AWS S3 and S3-compatible servers'
azure-blob-storage\t'Azure Blob Storage (and Azurite)'
google-cloud-storage\t'Google Cloud Storage'"
complete -c barman-cloud-restore -l endpoint-url -d 'Override default S3 endpoint URL with the given one' -r
complete -c barman-cloud-restore -s P -l aws-profile -l profile -d 'Profile name (e.g. INI section in AWS credentials file)' -r
complete -c barman-cloud-restore -l read-timeout -d 'The time in seconds until a timeout is raised when waiting to read from a connection (defaults to 60 seconds)' -r
complete -c barman-cloud-restore -l addressing-style -d 'The addressing style to use for S3 requests' -r -f -a "auto\t'Virtual-hosted on AWS, path style with `--endpoint-url`'
virtual\t'`https://BUCKET.host/key`'
path\t'`https://host/BUCKET/key`'"
complete -c barman-cloud-restore -l azure-credential -l credential -l default -d 'Optionally specify the type of credential to use when authenticating with Azure. If omitted then Azure Blob Storage credentials will be obtained from the environment' -r -f -a "azure-cli\t'The `az` command line\'s login'
managed-identity\t'The VM\'s or pod\'s managed identity'
default\t'The default chain (environment, workload identity, managed identity, CLI)'"
complete -c barman-cloud-restore -l tablespace -d 'Tablespace relocation rule (repeatable): restore tablespace NAME into LOCATION' -r
complete -c barman-cloud-restore -l target-tli -d 'Target timeline (a number, `current` or `latest`), used by `auto` to choose the backup' -r
complete -c barman-cloud-restore -l target-lsn -d 'Target LSN (Log Sequence Number), used by `auto` to choose the backup (and written as recovery_target_lsn with --write-recovery-conf)' -r
complete -c barman-cloud-restore -l target-time -d 'Target time, used by `auto` to choose the backup (and written as recovery_target_time with --write-recovery-conf). Any unambiguous form, e.g. "YYYY-MM-DD HH:MM:SS.mmm" (local time without an offset)' -r
complete -c barman-cloud-restore -s J -l jobs -d 'How many backup parts are downloaded and unpacked at once' -r
complete -c barman-cloud-restore -l snapshot-recovery-instance -d 'Instance where the disks recovered from the snapshots are attached (snapshot backups are not supported yet)' -r
complete -c barman-cloud-restore -l gcp-zone -l snapshot-recovery-zone -d 'Zone containing the instance and disks for the snapshot recovery' -r
complete -c barman-cloud-restore -l aws-region -d 'Name of the AWS region where the instance and disks for snapshot recovery are located' -r
complete -c barman-cloud-restore -l azure-resource-group -d 'Resource group containing the instance and disks for the snapshot recovery' -r
complete -c barman-cloud-restore -l recovery-target-time -d 'recovery_target_time: stop at this time (PostgreSQL\'s syntax)' -r
complete -c barman-cloud-restore -l recovery-target-xid -d 'recovery_target_xid: stop after this transaction' -r
complete -c barman-cloud-restore -l recovery-target-lsn -d 'recovery_target_lsn: stop at this WAL position' -r
complete -c barman-cloud-restore -l recovery-target-name -d 'recovery_target_name: stop at this restore point' -r
complete -c barman-cloud-restore -l recovery-target-action -d 'recovery_target_action: what to do once the target is reached' -r -f -a "pause\t''
promote\t''
shutdown\t''"
complete -c barman-cloud-restore -l recovery-target-timeline -d 'recovery_target_timeline: latest, current or a timeline number' -r
complete -c barman-cloud-restore -l help -d 'Show this help message and exit (`-h` is not help, as in Barman)'
complete -c barman-cloud-restore -s v -l verbose -d 'Increase output verbosity (e.g., -vv is more than -v)'
complete -c barman-cloud-restore -s q -l quiet -d 'Decrease output verbosity (e.g., -qq is less than -q)'
complete -c barman-cloud-restore -s t -l test -d 'Test cloud connectivity and exit'
complete -c barman-cloud-restore -l write-recovery-conf -d 'Write recovery.signal and append a restore_command running barman-cloud-wal-restore (with this source and these provider flags) to postgresql.auto.conf. Credentials are not written: PostgreSQL\'s environment must provide them'
complete -c barman-cloud-restore -l recovery-target-immediate -d 'recovery_target = \'immediate\': stop as soon as the backup is consistent'
complete -c barman-cloud-restore -l disable-archiving -d 'Also write archive_mode = \'off\': the restored server would otherwise archive with the source\'s archive_command, into the source\'s server name'
complete -c barman-cloud-restore -s V -l version -d 'Print version'
