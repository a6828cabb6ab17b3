complete -c barman-cloud-backup-delete -l log-format -d 'Log lines as Barman writes them (text) or as JSON objects, one per line (our addition)' -r -f -a "text\t''
json\t''"
complete -c barman-cloud-backup-delete -l cloud-provider -d 'The cloud provider to use as a storage backend' -r -f -a "aws-s3\t'AWS S3 and S3-compatible servers'
azure-blob-storage\t'Azure Blob Storage (and Azurite)'
google-cloud-storage\t'Google Cloud Storage'"
complete -c barman-cloud-backup-delete -l endpoint-url -d 'Override default S3 endpoint URL with the given one' -r
complete -c barman-cloud-backup-delete -s P -l aws-profile -l profile -d 'Profile name (e.g. INI section in AWS credentials file)' -r
complete -c barman-cloud-backup-delete -l read-timeout -d 'The time in seconds until a timeout is raised when waiting to read from a connection (defaults to 60 seconds)' -r
complete -c barman-cloud-backup-delete -l addressing-style -d 'The addressing style to use for S3 requests' -r -f -a "auto\t'Virtual-hosted on AWS, path style with `--endpoint-url`'
virtual\t'`https://BUCKET.host/key`'
path\t'`https://host/BUCKET/key`'"
complete -c barman-cloud-backup-delete -l azure-credential -l credential -l default -d 'Optionally specify the type of credential to use when authenticating with Azure. If omitted then Azure Blob Storage credentials will be obtained from the environment' -r -f -a "azure-cli\t'The `az` command line\'s login'
managed-identity\t'The VM\'s or pod\'s managed identity'
default\t'The default chain (environment, workload identity, managed identity, CLI)'"
complete -c barman-cloud-backup-delete -s b -l backup-id -d 'Backup ID of the backup to be deleted (or a name, or a shortcut)' -r
complete -c barman-cloud-backup-delete -s r -l retention-policy -d 'If specified, delete all backups eligible for deletion according to the supplied retention policy. Syntax: REDUNDANCY value | RECOVERY WINDOW OF value {DAYS | WEEKS | MONTHS}' -r
complete -c barman-cloud-backup-delete -s m -l minimum-redundancy -d 'The minimum number of backups that should always be available' -r
complete -c barman-cloud-backup-delete -l batch-size -d 'The maximum number of objects to be deleted in a single request to the cloud provider. If unset then the maximum allowed batch size for the specified cloud provider will be used (1000 for aws-s3, 256 for azure-blob-storage and 100 for google-cloud-storage)' -r
complete -c barman-cloud-backup-delete -l help -d 'Show this help message and exit (`-h` is not help, as in Barman)'
complete -c barman-cloud-backup-delete -s v -l verbose -d 'Increase output verbosity (e.g., -vv is more than -v)'
complete -c barman-cloud-backup-delete -s q -l quiet -d 'Decrease output verbosity (e.g., -qq is less than -q)'
complete -c barman-cloud-backup-delete -s t -l test -d 'Test cloud connectivity and exit'
complete -c barman-cloud-backup-delete -l dry-run -d 'Find the objects which need to be deleted but do not delete them'
complete -c barman-cloud-backup-delete -l check-object-lock -d 'Check for S3 Object Lock before deleting (accepted; not checked yet: S3 itself refuses to delete a locked object, and the backup\'s backup.info then stays)'
complete -c barman-cloud-backup-delete -s V -l version -d 'Print version'
