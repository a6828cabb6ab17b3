//! The Restore call on its own: prefetch into the spool, the move out of it, the
//! end-of-wal-stream flag and its rules, and each failure's gRPC code, on segments the
//! sidecar archived itself.

use std::path::{Path, PathBuf};
use std::process::Command;

use cnpg_plugin::proto::wal::{
    WalArchiveRequest, WalRestoreRequest, wal_client::WalClient, wal_restore_request::Mode,
};
use serde_json::{Value, json};
use tonic::Code;
use tonic::transport::Channel;

use super::postgres::pg::Pg;
use super::rig::{
    Rig, SERVER, cluster, definition, recovering_cluster, shared_dir, standin, write_json,
};

const FLAG: &str = "end-of-wal-stream";

fn wal(n: u32) -> String {
    format!("0000000100000000{n:08X}")
}

struct Restorer {
    client: WalClient<Channel>,
    destination: PathBuf,
}

impl Restorer {
    async fn restore(
        &mut self,
        cluster: &Value,
        n: u32,
        mode: Mode,
    ) -> Result<Vec<u8>, tonic::Status> {
        let _ = std::fs::remove_file(&self.destination);
        self.client
            .restore(WalRestoreRequest {
                cluster_definition: definition(cluster),
                source_wal_name: wal(n),
                destination_file_name: self.destination.to_string_lossy().into_owned(),
                mode: mode.into(),
                ..WalRestoreRequest::default()
            })
            .await?;
        Ok(std::fs::read(&self.destination).unwrap())
    }
}

/// A real segment: the first one of a fresh `initdb`.
fn real_segment(dir: &Path) -> Vec<u8> {
    let pg = Pg::init(&shared_dir(dir));
    std::fs::read(pg.data.join("pg_wal").join(wal(1))).unwrap()
}

#[tokio::test]
async fn restore_prefetches_moves_out_of_the_spool_and_signals_the_end_of_wal() {
    let Some(rig) = Rig::new() else { return };
    rig.object_store("flag", json!({"maxParallel": 3}));
    let segment = real_segment(&rig.root.join("initdb"));
    let pgdata = shared_dir(&rig.root.join("pgdata"));
    let pg_wal = shared_dir(&pgdata.join("pg_wal"));
    let status = shared_dir(&pg_wal.join("archive_status"));
    for n in [1, 2] {
        std::fs::write(pg_wal.join(wal(n)), &segment).unwrap();
        std::fs::write(status.join(format!("{}.ready", wal(n))), b"").unwrap();
    }
    let sidecar = rig.sidecar("pg-1", &pgdata).await;
    let channel = sidecar.channel().await;

    // A standby (the primary is pg-0): streaming is possible, so the flag applies.
    let standby = cluster(Some("flag"), "pg-0");
    let mut client = WalClient::new(channel.clone());
    for n in [1, 2] {
        client
            .archive(WalArchiveRequest {
                cluster_definition: definition(&standby),
                source_file_name: pg_wal.join(wal(n)).to_string_lossy().into_owned(),
                ..WalArchiveRequest::default()
            })
            .await
            .unwrap();
    }
    assert_eq!(sidecar.executed("barman-cloud-wal-archive").len(), 2);
    assert!(sidecar.spooled().is_empty());

    let mut restorer = Restorer {
        client: WalClient::new(channel.clone()),
        destination: pg_wal.join("RECOVERYXLOG"),
    };
    // 1 is fetched, 2 prefetched, 3 is missing: the end of the archive is flagged.
    assert_eq!(
        restorer.restore(&standby, 1, Mode::Recovery).await.unwrap(),
        segment
    );
    assert_eq!(sidecar.spooled(), [wal(2), FLAG.to_owned()]);
    let restores = sidecar.executed("barman-cloud-wal-restore");
    assert_eq!(restores.len(), 3);
    let spool = sidecar.spool.to_string_lossy().into_owned();
    let mut targets: Vec<String> = restores
        .iter()
        .map(|args| args.last().unwrap().clone())
        .collect();
    targets.sort();
    let mut expected = vec![
        restorer.destination.to_string_lossy().into_owned(),
        format!("{spool}/{}.tmp", wal(2)),
        format!("{spool}/{}.tmp", wal(3)),
    ];
    expected.sort();
    assert_eq!(
        targets, expected,
        "the requested file to its destination, prefetches to .tmp"
    );
    let first = restores.iter().find(|a| a[6] == wal(1)).unwrap();
    assert_eq!(
        first[..6],
        [
            "--endpoint-url",
            rig.endpoint.as_str(),
            "--cloud-provider",
            "aws-s3",
            rig.destination("flag").as_str(),
            SERVER
        ]
    );

    // 2 comes from the spool, with no download.
    assert_eq!(
        restorer.restore(&standby, 2, Mode::Recovery).await.unwrap(),
        segment
    );
    assert_eq!(sidecar.executed("barman-cloud-wal-restore").len(), 3);
    assert_eq!(sidecar.spooled(), [FLAG]);
    let left: Vec<_> = std::fs::read_dir(&pg_wal)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.'))
        .collect();
    assert!(
        left.is_empty(),
        "no temporary copy beside the WAL: {left:?}"
    );

    // 3: the flag makes PostgreSQL switch to streaming, once.
    let status = restorer
        .restore(&standby, 3, Mode::Recovery)
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::OutOfRange);
    assert_eq!(status.message(), "end of WAL reached");
    assert!(sidecar.spooled().is_empty());
    let status = restorer
        .restore(&standby, 3, Mode::Recovery)
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound, "{status:?}");
    assert!(status.message().contains(&wal(3)), "{status:?}");
    assert!(
        status.message().contains("exited 1: "),
        "the command's last line: {status:?}"
    );
    assert!(
        sidecar.spooled().is_empty(),
        "a missing requested file sets no flag"
    );

    // pg_rewind: a stale flag is cleared, not obeyed, and nothing is prefetched.
    std::fs::write(sidecar.spool.join(FLAG), b"").unwrap();
    assert_eq!(
        restorer.restore(&standby, 1, Mode::Rewind).await.unwrap(),
        segment
    );
    assert!(sidecar.spooled().is_empty());
    let status = restorer
        .restore(&standby, 3, Mode::Rewind)
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound);

    // Bootstrap (no primary yet): no streaming, so a missing prefetch sets no flag.
    let bootstrap = recovering_cluster("flag", SERVER);
    assert_eq!(
        restorer
            .restore(&bootstrap, 2, Mode::Recovery)
            .await
            .unwrap(),
        segment
    );
    assert!(sidecar.spooled().is_empty(), "{:?}", sidecar.spooled());

    // A name barman-cloud-wal-restore refuses (its exit 3).
    let status = restorer
        .client
        .restore(WalRestoreRequest {
            cluster_definition: definition(&standby),
            source_wal_name: "00000001000000000000000Z".into(),
            destination_file_name: restorer.destination.to_string_lossy().into_owned(),
            ..WalRestoreRequest::default()
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");

    // Through the CNPG stand-in, as PostgreSQL runs it: 0 on success, non-zero otherwise.
    let cluster_file = rig.root.join("standby.json");
    write_json(&cluster_file, &standby);
    let run = |n: u32| {
        Command::new(standin())
            .arg("--socket")
            .arg(&sidecar.socket)
            .arg("--cluster")
            .arg(&cluster_file)
            .args(["wal-restore", &wal(n)])
            .arg(pg_wal.join("RECOVERYXLOG"))
            .output()
            .unwrap()
    };
    let missing = run(9);
    assert_eq!(missing.status.code(), Some(1), "{missing:?}");
    assert!(
        String::from_utf8_lossy(&missing.stderr).contains("NotFound"),
        "{missing:?}"
    );
    let found = run(1);
    assert!(found.status.success(), "{found:?}");
}
