complete -c barman-cloud-backup-list -l log-format -d 'Log lines as Barman writes them (text) or as JSON objects, one per line (our addition)' -r -f -a "text\t''
json\t''"
complete -c barman-cloud-backup-list -l cloud-provider -d 'The cloud provider to use as a storage backend' -r -f -a "aws-s3\t'AWS S3 and S3-compatible servers'
azure-blob-storage\t'Azure Blob Storage (and Azurite)'
google-cloud-storage\t'Google Cloud Storage'"
complete -c barman-cloud-backup-list -l endpoint-url -d 'Override default S3 endpoint URL with the given one' -r
complete -c barman-cloud-backup-list -s P -l aws-profile -l profile -d 'Profile name (e.g. INI section in AWS credentials file)' -r
complete -c barman-cloud-backup-list -l read-timeout -d 'The time in seconds until a timeout is raised when waiting to read from a connection (defaults to 60 seconds)' -r
complete -c barman-cloud-backup-list -l addressing-style -d 'The addressing style to use for S3 requests' -r -f -a "auto\t'Virtual-hosted on AWS, path style with `--endpoint-url`'
virtual\t'`https://BUCKET.host/key`'
path\t'`https://host/BUCKET/key`'"
complete -c barman-cloud-backup-list -l azure-credential -l credential -l default -d 'Optionally specify the type of credential to use when authenticating with Azure. If omitted then Azure Blob Storage credentials will be obtained from the environment' -r -f -a "azure-cli\t'The `az` command line\'s login'
managed-identity\t'The VM\'s or pod\'s managed identity'
default\t'The default chain (environment, workload identity, managed identity, CLI)'"
complete -c barman-cloud-backup-list -l format -d 'Output format (console or json)' -r
complete -c barman-cloud-backup-list -l help -d 'Show this help message and exit (`-h` is not help, as in Barman)'
complete -c barman-cloud-backup-list -s v -l verbose -d 'Increase output verbosity (e.g., -vv is more than -v)'
complete -c barman-cloud-backup-list -s q -l quiet -d 'Decrease output verbosity (e.g., -qq is less than -q)'
complete -c barman-cloud-backup-list -s t -l test -d 'Test cloud connectivity and exit'
complete -c barman-cloud-backup-list -s V -l version -d 'Print version'
