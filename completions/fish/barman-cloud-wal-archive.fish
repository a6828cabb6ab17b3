complete -c barman-cloud-wal-archive -l log-format -d 'Log lines as Barman writes them (text) or as JSON objects, one per line (our addition)' -r -f -a "text\t''
json\t''"
complete -c barman-cloud-wal-archive -l cloud-provider -d 'The cloud provider to use as a storage backend' -r -f -a "aws-s3\t'AWS S3 and S3-compatible servers'
azure-blob-storage\t'Azure Blob Storage (and Azurite)'
google-cloud-storage\t'Google Cloud Storage'"
complete -c barman-cloud-wal-archive -l endpoint-url -d 'Override default S3 endpoint URL with the given one' -r
complete -c barman-cloud-wal-archive -s P -l aws-profile -l profile -d 'Profile name (e.g. INI section in AWS credentials file)' -r
complete -c barman-cloud-wal-archive -l read-timeout -d 'The time in seconds until a timeout is raised when waiting to read from a connection (defaults to 60 seconds)' -r
complete -c barman-cloud-wal-archive -l addressing-style -d 'The addressing style to use for S3 requests' -r -f -a "auto\t'Virtual-hosted on AWS, path style with `--endpoint-url`'
virtual\t'`https://BUCKET.host/key`'
path\t'`https://host/BUCKET/key`'"
complete -c barman-cloud-wal-archive -l azure-credential -l credential -l default -d 'Optionally specify the type of credential to use when authenticating with Azure. If omitted then Azure Blob Storage credentials will be obtained from the environment' -r -f -a "azure-cli\t'The `az` command line\'s login'
managed-identity\t'The VM\'s or pod\'s managed identity'
default\t'The default chain (environment, workload identity, managed identity, CLI)'"
complete -c barman-cloud-wal-archive -l compression-level -d 'A compression level for the specified compression algorithm: low, medium, high or an integer (clamped to the algorithm\'s range)' -r
complete -c barman-cloud-wal-archive -l tags -d 'Tags, each as KEY,VALUE, to be added to the uploaded objects (deprecated form; ends at the next option)' -r
complete -c barman-cloud-wal-archive -l tag -d 'A KEY,VALUE tag to be added to the uploaded objects (repeatable)' -r
complete -c barman-cloud-wal-archive -l history-tags -d 'Tags, each as KEY,VALUE, for history files, replacing --tags on them (deprecated form)' -r
complete -c barman-cloud-wal-archive -l history-tag -d 'A KEY,VALUE tag for history files, replacing --tag on them (repeatable)' -r
complete -c barman-cloud-wal-archive -s e -l encryption -d 'The encryption algorithm used when storing the uploaded data in S3' -r -f -a "AES256\t'SSE-S3'
aws:kms\t'SSE-KMS'"
complete -c barman-cloud-wal-archive -l sse-kms-key-id -d 'The AWS KMS key ID that should be used for encrypting the uploaded data in S3 (requires -e aws:kms)' -r
complete -c barman-cloud-wal-archive -l encryption-scope -d 'The name of an encryption scope defined in the Azure Blob Storage service which is to be used to encrypt the data in Azure' -r
complete -c barman-cloud-wal-archive -l kms-key-name -d 'The name of the GCP KMS key which should be used for encrypting the uploaded data in GCS' -r
complete -c barman-cloud-wal-archive -l max-parallel -d 'Our addition: also upload up to N-1 further WAL files PostgreSQL has marked ready, in parallel, so its next calls return at once (1: off)' -r
complete -c barman-cloud-wal-archive -l spool-dir -d 'Where files archived ahead are remembered (with --max-parallel), per server name' -r -F
complete -c barman-cloud-wal-archive -l max-block-size -d 'Accepted for compatibility; uploads are sized by the storage client' -r
complete -c barman-cloud-wal-archive -l max-concurrency -d 'Accepted for compatibility; uploads are sized by the storage client' -r
complete -c barman-cloud-wal-archive -l max-single-put-size -d 'Accepted for compatibility; uploads are sized by the storage client' -r
complete -c barman-cloud-wal-archive -l help -d 'Show this help message and exit (`-h` is not help, as in Barman)'
complete -c barman-cloud-wal-archive -s v -l verbose -d 'Increase output verbosity (e.g., -vv is more than -v)'
complete -c barman-cloud-wal-archive -s q -l quiet -d 'Decrease output verbosity (e.g., -qq is less than -q)'
complete -c barman-cloud-wal-archive -s t -l test -d 'Test cloud connectivity and exit'
complete -c barman-cloud-wal-archive -s z -l gzip -d 'gzip-compress the WAL while uploading to the cloud'
complete -c barman-cloud-wal-archive -s j -l bzip2 -d 'bzip2-compress the WAL while uploading to the cloud'
complete -c barman-cloud-wal-archive -l xz -d 'xz-compress the WAL while uploading to the cloud'
complete -c barman-cloud-wal-archive -l snappy -d 'snappy-compress the WAL while uploading to the cloud'
complete -c barman-cloud-wal-archive -l zstd -d 'zstd-compress the WAL while uploading to the cloud'
complete -c barman-cloud-wal-archive -l lz4 -d 'lz4-compress the WAL while uploading to the cloud'
complete -c barman-cloud-wal-archive -s V -l version -d 'Print version'
