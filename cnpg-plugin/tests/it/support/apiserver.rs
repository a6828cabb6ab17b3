//! A Kubernetes API stand-in: an HTTP/1.1 server on 127.0.0.1 that the real `kube` client
//! (in the tests and in the sidecar, through `KUBECONFIG`) talks to. Kubernetes itself cannot
//! run here; this serves the calls the instance sidecar makes, with the API's semantics where
//! the sidecar depends on them:
//!
//! - GET of a named object (ObjectStore, Secret, Cluster, Backup, Event, any plural);
//! - PUT of `…/NAME/status`, checked against the stored `resourceVersion` (409 Conflict on a
//!   mismatch), replacing only `status` (as the status subresource does: the stored `spec`
//!   and metadata stay) and bumping the version;
//! - LIST and DELETE (Backups), POST (Events), with `generateName`;
//! - errors as the API's `Status` JSON (404 NotFound, 403 Forbidden, 409 Conflict,
//!   401 without the bearer token, 405 for anything else, PATCH included: the plugin's Role
//!   grants no `patch`).
//!
//! Every request is recorded (method and path, query dropped) for the tests' counts; a named
//! Secret can be made to answer 403, and one 409 can be injected into the next status PUT.
//!
//! It runs on a thread of its own with its own runtime, so it answers whether the test is
//! async or blocks (on a child process, say). hyper's HTTP/1.1 server is used because it is
//! already in the lock file through kube and tonic: no new crate, and a real HTTP parser.

use std::collections::{BTreeMap, HashSet};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use serde_json::{Value, json};
use tempfile::TempDir;
use tokio::sync::oneshot;

/// The namespace the sidecar's tests use (`INSTANCE_ENV`).
pub(crate) const NAMESPACE: &str = "default";

/// The bearer token the kubeconfig carries and the stand-in requires.
pub(crate) const TOKEN: &str = "stand-in-token";

/// One request as the stand-in saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Seen {
    /// `GET`, `PUT`, …
    pub(crate) method: String,
    /// The path, without the query.
    pub(crate) path: String,
}

/// What the stand-in holds.
#[derive(Default)]
struct State {
    /// Objects by (API prefix, namespace, plural) and name. The prefix is `api/v1` or
    /// `apis/GROUP/VERSION`.
    objects: BTreeMap<(String, String, String), BTreeMap<String, Value>>,
    requests: Vec<Seen>,
    forbidden_secrets: HashSet<String>,
    conflicts_to_inject: usize,
    resource_version: u64,
    generated: u64,
}

impl State {
    fn next_version(&mut self) -> String {
        self.resource_version += 1;
        self.resource_version.to_string()
    }
}

/// The running stand-in; stopped when dropped.
pub(crate) struct ApiServer {
    state: Arc<Mutex<State>>,
    address: SocketAddr,
    _dir: TempDir,
    kubeconfig: PathBuf,
    stop: Option<oneshot::Sender<()>>,
}

impl ApiServer {
    /// Starts a stand-in with no objects and writes its kubeconfig.
    pub(crate) fn start() -> Self {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        listener
            .set_nonblocking(true)
            .expect("non-blocking listener");
        let address = listener.local_addr().expect("the stand-in's address");
        let state = Arc::new(Mutex::new(State::default()));
        let (stop, stopped) = oneshot::channel::<()>();
        let shared = Arc::clone(&state);
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("the stand-in's runtime");
            runtime.block_on(serve(listener, shared, stopped));
        });
        let dir = tempfile::tempdir().expect("make a temp dir");
        let kubeconfig = dir.path().join("kubeconfig");
        std::fs::write(&kubeconfig, kubeconfig_text(address)).expect("write the kubeconfig");
        Self {
            state,
            address,
            _dir: dir,
            kubeconfig,
            stop: Some(stop),
        }
    }

    /// `http://127.0.0.1:PORT`.
    pub(crate) fn url(&self) -> String {
        format!("http://{}", self.address)
    }

    /// The kubeconfig file naming this server, its token and namespace `default`.
    pub(crate) fn kubeconfig(&self) -> &std::path::Path {
        &self.kubeconfig
    }

    /// The `kube` settings of that kubeconfig, for a library `Kubernetes` in the test.
    pub(crate) async fn config(&self) -> kube::Config {
        let kubeconfig =
            kube::config::Kubeconfig::read_from(&self.kubeconfig).expect("read the kubeconfig");
        kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
            .await
            .expect("kube settings from the kubeconfig")
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().expect("the stand-in's state")
    }

    /// Stores `object` (its `apiVersion`, `kind`, `metadata.name` and namespace, default
    /// `default`, say where), giving it a `resourceVersion` and a `uid` when it has none.
    /// Replaces an object of the same name.
    pub(crate) fn put(&self, mut object: Value) {
        let (prefix, namespace, plural) = collection_of(&object);
        let name = object["metadata"]["name"]
            .as_str()
            .expect("an object with metadata.name")
            .to_owned();
        let mut state = self.state();
        let metadata = object["metadata"]
            .as_object_mut()
            .expect("metadata is an object");
        metadata
            .entry("namespace")
            .or_insert_with(|| json!(namespace));
        metadata
            .entry("uid")
            .or_insert_with(|| json!(format!("uid-{name}")));
        if !metadata.contains_key("resourceVersion") {
            let version = state.next_version();
            metadata.insert("resourceVersion".into(), json!(version));
        }
        state
            .objects
            .entry((prefix, namespace, plural))
            .or_default()
            .insert(name, object);
    }

    /// Stores a Secret `name` with these keys (values base64-encoded, as the API stores
    /// them).
    pub(crate) fn put_secret(&self, name: &str, data: &[(&str, &[u8])]) {
        let secret = Secret {
            data: Some(
                data.iter()
                    .map(|(key, value)| ((*key).to_owned(), ByteString(value.to_vec())))
                    .collect(),
            ),
            ..Secret::default()
        };
        let mut object = serde_json::to_value(secret).expect("a Secret as JSON");
        object["apiVersion"] = json!("v1");
        object["kind"] = json!("Secret");
        object["metadata"] = json!({"name": name, "namespace": NAMESPACE});
        self.put(object);
    }

    /// Stores an ObjectStore `name` in `default` with this `spec.configuration`.
    pub(crate) fn put_object_store(&self, name: &str, configuration: Value) {
        self.put(json!({
            "apiVersion": "barmancloud.cnpg.io/v1",
            "kind": "ObjectStore",
            "metadata": {"name": name, "namespace": NAMESPACE},
            "spec": {"configuration": configuration},
        }));
    }

    /// The stored object `name` of `plural` (`objectstores`, `secrets`, `backups`, …) in
    /// `default`, if any.
    pub(crate) fn object(&self, plural: &str, name: &str) -> Option<Value> {
        let state = self.state();
        state
            .objects
            .iter()
            .filter(|((_, namespace, kind), _)| namespace == NAMESPACE && kind == plural)
            .find_map(|(_, objects)| objects.get(name).cloned())
    }

    /// Every stored object of `plural` in `default`, by name.
    pub(crate) fn objects(&self, plural: &str) -> Vec<Value> {
        let state = self.state();
        state
            .objects
            .iter()
            .filter(|((_, namespace, kind), _)| namespace == NAMESPACE && kind == plural)
            .flat_map(|(_, objects)| objects.values().cloned())
            .collect()
    }

    /// Changes the stored object as another writer would: `change` edits it, and its
    /// `resourceVersion` is bumped.
    pub(crate) fn modify(&self, plural: &str, name: &str, change: impl FnOnce(&mut Value)) {
        let mut state = self.state();
        let version = state.next_version();
        let object = state
            .objects
            .iter_mut()
            .filter(|((_, namespace, kind), _)| namespace == NAMESPACE && kind == plural)
            .find_map(|(_, objects)| objects.get_mut(name))
            .unwrap_or_else(|| panic!("no {plural} {name} in the stand-in"));
        change(object);
        object["metadata"]["resourceVersion"] = json!(version);
    }

    /// From now on a GET of the Secret `name` answers 403, as when the plugin's Role does
    /// not list it yet.
    pub(crate) fn forbid_secret(&self, name: &str) {
        self.state().forbidden_secrets.insert(name.to_owned());
    }

    /// The next `count` status PUTs answer 409 Conflict whatever their `resourceVersion`
    /// (and change nothing), as when another writer got there first.
    pub(crate) fn inject_conflicts(&self, count: usize) {
        self.state().conflicts_to_inject = count;
    }

    /// Every request so far, in order.
    pub(crate) fn requests(&self) -> Vec<Seen> {
        self.state().requests.clone()
    }

    /// How many requests had this method and path.
    pub(crate) fn count(&self, method: &str, path: &str) -> usize {
        self.state()
            .requests
            .iter()
            .filter(|seen| seen.method == method && seen.path == path)
            .count()
    }

    /// Forgets the recorded requests.
    pub(crate) fn clear_requests(&self) {
        self.state().requests.clear();
    }
}

impl Drop for ApiServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// The URL path of an object's named resource: `/api/v1/namespaces/default/secrets/NAME`,
/// `/apis/barmancloud.cnpg.io/v1/namespaces/default/objectstores/NAME`.
pub(crate) fn object_path(api_version: &str, plural: &str, name: &str) -> String {
    let prefix = api_prefix(api_version);
    format!("/{prefix}/namespaces/{NAMESPACE}/{plural}/{name}")
}

fn api_prefix(api_version: &str) -> String {
    if api_version.contains('/') {
        format!("apis/{api_version}")
    } else {
        format!("api/{api_version}")
    }
}

/// Where an object lives, from its `apiVersion`, `kind` and namespace.
fn collection_of(object: &Value) -> (String, String, String) {
    let api_version = object["apiVersion"].as_str().expect("an apiVersion");
    let kind = object["kind"].as_str().expect("a kind");
    let plural = match kind {
        "ObjectStore" => "objectstores".to_owned(),
        "Secret" => "secrets".to_owned(),
        "Cluster" => "clusters".to_owned(),
        "Backup" => "backups".to_owned(),
        "Event" => "events".to_owned(),
        other => format!("{}s", other.to_lowercase()),
    };
    let namespace = object["metadata"]["namespace"]
        .as_str()
        .unwrap_or(NAMESPACE)
        .to_owned();
    (api_prefix(api_version), namespace, plural)
}

fn kubeconfig_text(address: SocketAddr) -> String {
    format!(
        "apiVersion: v1
kind: Config
clusters:
- name: stand-in
  cluster:
    server: http://{address}
contexts:
- name: stand-in
  context:
    cluster: stand-in
    user: sidecar
    namespace: {NAMESPACE}
current-context: stand-in
users:
- name: sidecar
  user:
    token: {TOKEN}
"
    )
}

async fn serve(
    listener: std::net::TcpListener,
    state: Arc<Mutex<State>>,
    mut stopped: oneshot::Receiver<()>,
) {
    let listener = tokio::net::TcpListener::from_std(listener).expect("a tokio listener");
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = &mut stopped => return,
        };
        let Ok((stream, _)) = accepted else { continue };
        let state = Arc::clone(&state);
        tokio::spawn(async move {
            let service = service_fn(move |request| {
                let state = Arc::clone(&state);
                async move { Ok::<_, Infallible>(handle(&state, request).await) }
            });
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

/// A parsed request path.
struct Target {
    prefix: String,
    namespace: String,
    plural: String,
    name: Option<String>,
    subresource: Option<String>,
}

/// `/api/v1/namespaces/NS/PLURAL[/NAME[/SUB]]` or `/apis/G/V/namespaces/NS/PLURAL[/…]`.
fn parse_path(path: &str) -> Option<Target> {
    let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
    let (prefix, rest) = match parts.as_slice() {
        ["api", version, rest @ ..] => (format!("api/{version}"), rest),
        ["apis", group, version, rest @ ..] => (format!("apis/{group}/{version}"), rest),
        _ => return None,
    };
    match rest {
        ["namespaces", namespace, plural, tail @ ..] if tail.len() <= 2 => Some(Target {
            prefix,
            namespace: (*namespace).to_owned(),
            plural: (*plural).to_owned(),
            name: tail.first().map(|name| (*name).to_owned()),
            subresource: tail.get(1).map(|sub| (*sub).to_owned()),
        }),
        _ => None,
    }
}

/// The API's error object.
fn status(
    code: StatusCode,
    reason: &str,
    message: String,
    details: Value,
) -> Response<Full<Bytes>> {
    respond(
        code,
        &json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": message,
            "reason": reason,
            "details": details,
            "code": code.as_u16(),
        }),
    )
}

fn respond(code: StatusCode, body: &Value) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body.to_string())));
    *response.status_mut() = code;
    response.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    response
}

/// `objectstores.barmancloud.cnpg.io`, `secrets`: the resource as the API names it.
fn resource_name(target: &Target) -> String {
    match target.prefix.strip_prefix("apis/") {
        Some(group_version) => {
            let group = group_version.split('/').next().unwrap_or_default();
            format!("{}.{group}", target.plural)
        }
        None => target.plural.clone(),
    }
}

fn group_of(target: &Target) -> String {
    target
        .prefix
        .strip_prefix("apis/")
        .and_then(|group_version| group_version.split('/').next())
        .unwrap_or_default()
        .to_owned()
}

fn not_found(target: &Target, name: &str) -> Response<Full<Bytes>> {
    status(
        StatusCode::NOT_FOUND,
        "NotFound",
        format!("{} \"{name}\" not found", resource_name(target)),
        json!({"name": name, "group": group_of(target), "kind": target.plural}),
    )
}

async fn handle(state: &Mutex<State>, request: Request<Incoming>) -> Response<Full<Bytes>> {
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let authorized = request
        .headers()
        .get(hyper::header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        == Some(&format!("Bearer {TOKEN}"));
    let body = match request.into_body().collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(_) => Bytes::new(),
    };
    let mut state = state.lock().expect("the stand-in's state");
    state.requests.push(Seen {
        method: method.to_string(),
        path: path.clone(),
    });
    if !authorized {
        return status(
            StatusCode::UNAUTHORIZED,
            "Unauthorized",
            "Unauthorized".into(),
            json!({}),
        );
    }
    let Some(target) = parse_path(&path) else {
        return status(
            StatusCode::NOT_FOUND,
            "NotFound",
            "the server could not find the requested resource".into(),
            json!({}),
        );
    };
    let key = (
        target.prefix.clone(),
        target.namespace.clone(),
        target.plural.clone(),
    );
    let verb = match method {
        Method::GET if target.name.is_some() => "get",
        Method::GET => "list",
        Method::PUT => "update",
        Method::POST => "create",
        Method::DELETE => "delete",
        Method::PATCH => "patch",
        _ => "other",
    };
    if target.plural == "secrets"
        && let Some(name) = &target.name
        && state.forbidden_secrets.contains(name)
    {
        return status(
            StatusCode::FORBIDDEN,
            "Forbidden",
            format!(
                "secrets \"{name}\" is forbidden: User \"system:serviceaccount:{}:pg\" cannot \
                 {verb} resource \"secrets\" in API group \"\" in the namespace \"{}\"",
                target.namespace, target.namespace
            ),
            json!({"name": name, "kind": "secrets"}),
        );
    }
    match (&method, &target.name, &target.subresource) {
        (&Method::GET, Some(name), None) => {
            match state
                .objects
                .get(&key)
                .and_then(|objects| objects.get(name))
            {
                Some(object) => respond(StatusCode::OK, object),
                None => not_found(&target, name),
            }
        }
        (&Method::GET, None, None) => {
            let items: Vec<Value> = state
                .objects
                .get(&key)
                .map(|objects| objects.values().cloned().collect())
                .unwrap_or_default();
            let version = state.resource_version.to_string();
            respond(
                StatusCode::OK,
                &json!({
                    "apiVersion": target.prefix.trim_start_matches("apis/").trim_start_matches("api/"),
                    "kind": "List",
                    "metadata": {"resourceVersion": version},
                    "items": items,
                }),
            )
        }
        (&Method::DELETE, Some(name), None) => {
            match state
                .objects
                .get_mut(&key)
                .and_then(|objects| objects.remove(name))
            {
                Some(object) => respond(StatusCode::OK, &object),
                None => not_found(&target, name),
            }
        }
        (&Method::POST, None, None) => {
            let Ok(mut object) = serde_json::from_slice::<Value>(&body) else {
                return status(
                    StatusCode::BAD_REQUEST,
                    "BadRequest",
                    "the body is not JSON".into(),
                    json!({}),
                );
            };
            let name = match object["metadata"]["name"].as_str() {
                Some(name) => name.to_owned(),
                None => {
                    let Some(base) = object["metadata"]["generateName"].as_str() else {
                        return status(
                            StatusCode::UNPROCESSABLE_ENTITY,
                            "Invalid",
                            "name or generateName is required".into(),
                            json!({}),
                        );
                    };
                    state.generated += 1;
                    format!("{base}{:05}", state.generated)
                }
            };
            if state
                .objects
                .get(&key)
                .is_some_and(|objects| objects.contains_key(&name))
            {
                return status(
                    StatusCode::CONFLICT,
                    "AlreadyExists",
                    format!("{} \"{name}\" already exists", resource_name(&target)),
                    json!({"name": name, "kind": target.plural}),
                );
            }
            let version = state.next_version();
            object["metadata"]["name"] = json!(name);
            object["metadata"]["namespace"] = json!(target.namespace);
            object["metadata"]["resourceVersion"] = json!(version);
            object["metadata"]["uid"] = json!(format!("uid-{name}"));
            state
                .objects
                .entry(key)
                .or_default()
                .insert(name, object.clone());
            respond(StatusCode::CREATED, &object)
        }
        (&Method::PUT, Some(name), Some(sub)) if sub == "status" => {
            put_status(&mut state, &key, &target, name, &body)
        }
        _ => status(
            StatusCode::METHOD_NOT_ALLOWED,
            "MethodNotAllowed",
            format!("the stand-in does not serve {method} {path}"),
            json!({}),
        ),
    }
}

fn put_status(
    state: &mut State,
    key: &(String, String, String),
    target: &Target,
    name: &str,
    body: &[u8],
) -> Response<Full<Bytes>> {
    let Ok(sent) = serde_json::from_slice::<Value>(body) else {
        return status(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            "the body is not JSON".into(),
            json!({}),
        );
    };
    let conflict = |name: &str| {
        status(
            StatusCode::CONFLICT,
            "Conflict",
            format!(
                "Operation cannot be fulfilled on {} \"{name}\": the object has been modified; \
                 please apply your changes to the latest version and try again",
                resource_name(target)
            ),
            json!({"name": name, "group": group_of(target), "kind": target.plural}),
        )
    };
    if state.conflicts_to_inject > 0 {
        state.conflicts_to_inject -= 1;
        return conflict(name);
    }
    let version = state.resource_version + 1;
    let Some(stored) = state
        .objects
        .get_mut(key)
        .and_then(|objects| objects.get_mut(name))
    else {
        return not_found(target, name);
    };
    if sent["metadata"]["resourceVersion"] != stored["metadata"]["resourceVersion"] {
        return conflict(name);
    }
    // The status subresource takes only `status` from the body.
    stored["status"] = sent["status"].clone();
    stored["metadata"]["resourceVersion"] = json!(version.to_string());
    let answer = stored.clone();
    state.resource_version = version;
    respond(StatusCode::OK, &answer)
}
