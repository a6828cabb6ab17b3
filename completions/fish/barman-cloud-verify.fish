complete -c barman-cloud-verify -l log-format -d 'Log lines as Barman writes them (text) or as JSON objects, one per line (our addition)' -r -f -a "text\t''
json\t''"
complete -c barman-cloud-verify -l cloud-provider -d 'The cloud provider to use as a storage backend' -r -f -a "aws-s3\t'AWS S3 and S3-compatible servers'
azure-blob-storage\t'Azure Blob Storage (and Azurite)'
google-cloud-storage\t'Google Cloud Storage'"
complete -c barman-cloud-verify -l endpoint-url -d 'Override default S3 endpoint URL with the given one' -r
complete -c barman-cloud-verify -s P -l aws-profile -l profile -d 'Profile name (e.g. INI section in AWS credentials file)' -r
complete -c barman-cloud-verify -l read-timeout -d 'The time in seconds until a timeout is raised when waiting to read from a connection (defaults to 60 seconds)' -r
complete -c barman-cloud-verify -l addressing-style -d 'The addressing style to use for S3 requests' -r -f -a "auto\t'Virtual-hosted on AWS, path style with `--endpoint-url`'
virtual\t'`https://BUCKET.host/key`'
path\t'`https://host/BUCKET/key`'"
complete -c barman-cloud-verify -l azure-credential -l credential -l default -d 'Optionally specify the type of credential to use when authenticating with Azure. If omitted then Azure Blob Storage credentials will be obtained from the environment' -r -f -a "azure-cli\t'The `az` command line\'s login'
managed-identity\t'The VM\'s or pod\'s managed identity'
default\t'The default chain (environment, workload identity, managed identity, CLI)'"
complete -c barman-cloud-verify -s J -l jobs -d 'How many objects are downloaded and checked at once' -r
complete -c barman-cloud-verify -l format -d 'Output format. prometheus: the text exposition format, gauges named barman_cloud_* with a server label: verify_ok (1/0), verify_problems, verify_timestamp, backups{status}, last_backup_info{backup_id,status}, last_backup_end_timestamp, first_recoverability_point, last_available_backup_timestamp, last_failed_backup_timestamp (unix seconds, 0 for none, as CloudNativePG\'s), wal_newest_timeline, wal_newest_segment, wal_newest_timestamp, wal_newest_age_seconds, wal_gaps, wal_missing_segments, wal_missing_history_files, and backup_verify_problems{backup_id} for each backup verified' -r -f -a "console\t'A line per backup and timeline, then a line per problem'
json\t'The whole report as one JSON document'
prometheus\t'Prometheus\' text exposition format'"
complete -c barman-cloud-verify -l textfile -d 'Also write the prometheus format to this file for node_exporter\'s textfile collector (a name ending in .prom in its --collector.textfile.directory), replacing it atomically (mode 0644); when verification cannot run, the file says verify_ok 0' -r -F
complete -c barman-cloud-verify -l help -d 'Show this help message and exit (`-h` is not help, as in Barman)'
complete -c barman-cloud-verify -s v -l verbose -d 'Increase output verbosity (e.g., -vv is more than -v)'
complete -c barman-cloud-verify -s q -l quiet -d 'Decrease output verbosity (e.g., -qq is less than -q)'
complete -c barman-cloud-verify -s t -l test -d 'Test cloud connectivity and exit'
complete -c barman-cloud-verify -l wal-only -d 'Check the WAL archive only, no backup\'s objects (the catalog is still read, for the backup gauges of the prometheus format)'
complete -c barman-cloud-verify -s V -l version -d 'Print version'
