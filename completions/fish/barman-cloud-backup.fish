complete -c barman-cloud-backup -l log-format -d 'Log lines as Barman writes them (text) or as JSON objects, one per line (our addition)' -r -f -a "text\t''
json\t''"
complete -c barman-cloud-backup -l cloud-provider -d 'The cloud provider to use as a storage backend' -r -f -a "aws-s3\t'AWS S3 and S3-compatible servers'
azure-blob-storage\t'Azure Blob Storage (and Azurite)'
google-cloud-storage\t'Google Cloud Storage'"
complete -c barman-cloud-backup -l endpoint-url -d 'Override default S3 endpoint URL with the given one' -r
complete -c barman-cloud-backup -s P -l aws-profile -l profile -d 'Profile name (e.g. INI section in AWS credentials file)' -r
complete -c barman-cloud-backup -l read-timeout -d 'The time in seconds until a timeout is raised when waiting to read from a connection (defaults to 60 seconds)' -r
complete -c barman-cloud-backup -l addressing-style -d 'The addressing style to use for S3 requests' -r -f -a "auto\t'Virtual-hosted on AWS, path style with `--endpoint-url`'
virtual\t'`https://BUCKET.host/key`'
path\t'`https://host/BUCKET/key`'"
complete -c barman-cloud-backup -l azure-credential -l credential -l default -d 'Optionally specify the type of credential to use when authenticating with Azure. If omitted then Azure Blob Storage credentials will be obtained from the environment' -r -f -a "azure-cli\t'The `az` command line\'s login'
managed-identity\t'The VM\'s or pod\'s managed identity'
default\t'The default chain (environment, workload identity, managed identity, CLI)'"
complete -c barman-cloud-backup -l compression-level -d 'Our addition: a compression level for the tarballs: low, medium, high or an integer (clamped to the algorithm\'s range). Default: gzip 6 (Barman writes 9: same size on PostgreSQL data, four times slower), bzip2 9' -r
complete -c barman-cloud-backup -s h -l host -d 'Host or Unix socket for PostgreSQL connection (default: libpq settings)' -r
complete -c barman-cloud-backup -s p -l port -d 'Port for PostgreSQL connection (default: libpq settings)' -r
complete -c barman-cloud-backup -s U -l user -d 'User name for PostgreSQL connection (default: libpq settings)' -r
complete -c barman-cloud-backup -s J -l jobs -d 'Number of parts uploaded at once' -r
complete -c barman-cloud-backup -s S -l max-archive-size -d 'Maximum size of an archive when uploading to cloud storage (default: 100GB)' -r
complete -c barman-cloud-backup -l min-chunk-size -d 'Minimum size of an individual chunk when uploading to cloud storage (default: 5MB for aws-s3, 64KB for azure-blob-storage)' -r
complete -c barman-cloud-backup -l max-bandwidth -d 'The maximum amount of data to be uploaded per second (default: no limit)' -r
complete -c barman-cloud-backup -s d -l dbname -d 'Database name or conninfo string for Postgres connection (default: postgres). TLS as in libpq: sslmode (disable, allow, prefer (default), require, verify-ca, verify-full), sslrootcert, sslcert and sslkey here or in PGSSLMODE, PGSSLROOTCERT, PGSSLCERT and PGSSLKEY; ~/.postgresql/root.crt, postgresql.crt and postgresql.key by default' -r
complete -c barman-cloud-backup -s n -l name -d 'A name which can be used to reference this backup in commands such as barman-cloud-restore and barman-cloud-backup-delete' -r
complete -c barman-cloud-backup -l manifest-checksums -d 'Our addition: the checksum of each file in the backup_manifest stored as the data tarball\'s last member, as pg_basebackup\'s option (pg_verifybackup checks a restored directory against it; NONE still lists each file\'s size)' -r -f -a "NONE\t'No checksum: the manifest lists sizes only'
CRC32C\t'CRC-32C, PostgreSQL\'s default: hardware-assisted, so it costs next to nothing'
SHA256\t'SHA-256, for a checksum no accident or tampering can match'"
complete -c barman-cloud-backup -l tags -d 'Tags, each as KEY,VALUE, to be added to the uploaded objects (deprecated form; ends at the next option)' -r
complete -c barman-cloud-backup -l tag -d 'A KEY,VALUE tag to be added to the uploaded objects (repeatable)' -r
complete -c barman-cloud-backup -s e -l encryption -d 'The encryption algorithm used when storing the uploaded data in S3' -r -f -a "AES256\t'SSE-S3'
aws:kms\t'SSE-KMS'"
complete -c barman-cloud-backup -l sse-kms-key-id -d 'The AWS KMS key ID that should be used for encrypting the uploaded data in S3 (requires -e aws:kms)' -r
complete -c barman-cloud-backup -l encryption-scope -d 'The name of an encryption scope defined in the Azure Blob Storage service which is to be used to encrypt the data in Azure' -r
complete -c barman-cloud-backup -l kms-key-name -d 'The name of the GCP KMS key which should be used for encrypting the uploaded data in GCS' -r
complete -c barman-cloud-backup -l snapshot-instance -d 'The name of the VM instance to which the disks to be backed up are attached (snapshot backups are not supported yet)' -r
complete -c barman-cloud-backup -l snapshot-disk -d 'Name of a disk for which snapshots should be taken (repeatable)' -r
complete -c barman-cloud-backup -l snapshot-zone -d 'Zone of the disks from which snapshots should be taken (deprecated: --gcp-zone)' -r
complete -c barman-cloud-backup -l snapshot-gcp-project -d 'GCP project under which disk snapshots should be stored (deprecated: --gcp-project)' -r
complete -c barman-cloud-backup -l gcp-project -d 'GCP project under which disk snapshots should be stored' -r
complete -c barman-cloud-backup -l gcp-zone -d 'Zone of the disks from which snapshots should be taken' -r
complete -c barman-cloud-backup -l aws-region -d 'The name of the AWS region containing the EC2 VM and storage volumes' -r
complete -c barman-cloud-backup -l aws-await-snapshots-timeout -d 'The length of time in seconds to wait for snapshots to be created in AWS' -r
complete -c barman-cloud-backup -l aws-snapshot-lock-mode -d 'The lock mode to apply to the snapshot' -r -f -a "governance\t''
compliance\t''"
complete -c barman-cloud-backup -l aws-snapshot-lock-cool-off-period -d 'The cool-off period (hours) for the snapshot lock' -r
complete -c barman-cloud-backup -l aws-snapshot-lock-expiration-date -d 'The expiration date for the snapshot lock' -r
complete -c barman-cloud-backup -l aws-snapshot-lock-duration -d 'The duration (days) of the snapshot lock' -r
complete -c barman-cloud-backup -l azure-subscription-id -d 'The ID of the Azure subscription which owns the instance and storage volumes' -r
complete -c barman-cloud-backup -l azure-resource-group -d 'The name of the Azure resource group of the instance and disks' -r
complete -c barman-cloud-backup -l help -d 'Show this help message and exit (`-h` is not help, as in Barman)'
complete -c barman-cloud-backup -s v -l verbose -d 'Increase output verbosity (e.g., -vv is more than -v)'
complete -c barman-cloud-backup -s q -l quiet -d 'Decrease output verbosity (e.g., -qq is less than -q)'
complete -c barman-cloud-backup -s t -l test -d 'Test cloud connectivity and exit'
complete -c barman-cloud-backup -s z -l gzip -d 'gzip-compress the backup while uploading to the cloud'
complete -c barman-cloud-backup -s j -l bzip2 -d 'bzip2-compress the backup while uploading to the cloud'
complete -c barman-cloud-backup -l snappy -d 'snappy-compress the backup while uploading to the cloud'
complete -c barman-cloud-backup -l lz4 -d 'lz4-compress the backup while uploading to the cloud'
complete -c barman-cloud-backup -l zstd -d 'Our addition: zstd-compress the backup while uploading to the cloud (level 3 unless --compression-level, on every core). Barman\'s barman-cloud-restore and barman-cloud-backup-delete skip .tar.zst parts: restore and delete such a backup with ours'
complete -c barman-cloud-backup -l immediate-checkpoint -d 'Forces the initial checkpoint to be done as quickly as possible'
complete -c barman-cloud-backup -l no-manifest -d 'Our addition: write no backup_manifest (the tarballs are then exactly Barman\'s)'
complete -c barman-cloud-backup -s V -l version -d 'Print version'
