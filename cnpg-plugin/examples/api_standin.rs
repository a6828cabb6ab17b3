//! The tests' Kubernetes API stand-in as a program, for the sidecar benchmark
//! (`benches/sidecar.py`): it serves the objects of a JSON file on 127.0.0.1 until its
//! standard input closes, and writes a kubeconfig pointing at itself.
//!
//! ```text
//! api_standin OBJECTS.json KUBECONFIG
//! ```
//!
//! `OBJECTS.json` is an array of Kubernetes objects as the API returns them (Secrets with
//! base64 `data`). An example so `cargo build --examples` builds it beside the test stand-in
//! it reuses, and it is never installed with `manager`.

use std::io::Read;
use std::process::ExitCode;

#[allow(dead_code, unreachable_pub)]
#[path = "../tests/it/support/apiserver.rs"]
mod apiserver;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [objects, kubeconfig] = args.as_slice() else {
        eprintln!("usage: api_standin OBJECTS.json KUBECONFIG");
        return ExitCode::from(2);
    };
    let objects: Vec<serde_json::Value> = match std::fs::read(objects)
        .map_err(|e| e.to_string())
        .and_then(|bytes| serde_json::from_slice(&bytes).map_err(|e| e.to_string()))
    {
        Ok(objects) => objects,
        Err(error) => {
            eprintln!("api_standin: read {objects}: {error}");
            return ExitCode::FAILURE;
        }
    };
    let server = apiserver::ApiServer::start();
    for object in objects {
        server.put(object);
    }
    if let Err(error) = std::fs::copy(server.kubeconfig(), kubeconfig) {
        eprintln!("api_standin: write {kubeconfig}: {error}");
        return ExitCode::FAILURE;
    }
    println!("{}", server.url());
    // Serve until the caller closes our stdin (or dies).
    let _ = std::io::stdin().read_to_end(&mut Vec::new());
    ExitCode::SUCCESS
}
