//! A fault-injecting HTTP proxy on loopback, in front of an object-store emulator: it forwards
//! requests as they are, except those a rule picks, which it answers with an error, cuts off,
//! stalls or truncates. Test-only; HTTP/1.1 with Content-Length bodies, which is what the
//! emulators and our clients speak.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::{Provider, Ran, Store, TestCommand, ours};

/// A store on S3 and a proxy in front of its endpoint.
pub fn behind_proxy() -> Option<(Store, FaultProxy)> {
    behind_proxy_on(Provider::S3)
}

/// A store on `provider` and a proxy in front of its endpoint.
pub fn behind_proxy_on(provider: Provider) -> Option<(Store, FaultProxy)> {
    let store = Store::new(provider)?;
    let proxy = FaultProxy::start(&store.endpoint());
    Some((store, proxy))
}

/// Runs one of our tools through the proxy: `options` before the URL and server name.
pub fn via(
    store: &Store,
    proxy: &FaultProxy,
    program: &str,
    options: &[&str],
    rest: &[&str],
) -> Ran {
    let proxied = store.through(&proxy.url);
    proxied
        .command(ours(program))
        .args(options)
        .arg(&proxied.url)
        .arg("pg")
        .args(rest)
        .ran()
}

/// What to do to a request a rule picks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Answer with this status and an S3-style error body, without forwarding.
    Status(u16),
    /// Read the request, then close the connection without answering.
    Drop,
    /// Forward, but wait this long before answering.
    Stall(Duration),
    /// Forward, but send only half of the response body, then close.
    Truncate,
    /// Forward, but send the response body one byte per this interval, like a server or a
    /// link that has all but stopped.
    Trickle(Duration),
}

/// A rule: requests whose method, request line and headers match get `fault`, `times` times
/// (or always with `None`).
#[derive(Debug, Clone)]
pub struct Rule {
    pub method: Option<&'static str>,
    pub target_contains: Option<String>,
    /// A fragment of one header line, lowercase (`content-encoding: aws-chunked`).
    pub header_contains: Option<String>,
    pub fault: Fault,
    pub times: Option<usize>,
}

impl Rule {
    pub fn new(fault: Fault) -> Rule {
        Rule {
            method: None,
            target_contains: None,
            header_contains: None,
            fault,
            times: None,
        }
    }

    pub fn method(mut self, method: &'static str) -> Rule {
        self.method = Some(method);
        self
    }

    pub fn target(mut self, fragment: &str) -> Rule {
        self.target_contains = Some(fragment.to_string());
        self
    }

    pub fn header(mut self, fragment: &str) -> Rule {
        self.header_contains = Some(fragment.to_ascii_lowercase());
        self
    }

    pub fn times(mut self, n: usize) -> Rule {
        self.times = Some(n);
        self
    }
}

#[derive(Default)]
struct State {
    rules: Vec<Rule>,
    /// Faults applied, for assertions.
    injected: usize,
}

/// The running proxy; it stops with the test process.
#[derive(Clone)]
pub struct FaultProxy {
    pub url: String,
    state: Arc<Mutex<State>>,
}

impl FaultProxy {
    /// Starts a proxy to `upstream` (`http://127.0.0.1:PORT`) on a thread of its own.
    pub fn start(upstream: &str) -> FaultProxy {
        let upstream: SocketAddr = upstream
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .parse()
            .expect("an http://IP:PORT upstream");
        let state = Arc::new(Mutex::new(State::default()));
        let (tx, rx) = std::sync::mpsc::channel();
        let shared = state.clone();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
                tx.send(listener.local_addr().unwrap()).unwrap();
                loop {
                    let Ok((client, _)) = listener.accept().await else {
                        continue;
                    };
                    tokio::spawn(serve(client, upstream, shared.clone()));
                }
            });
        });
        let addr = rx.recv().unwrap();
        FaultProxy {
            url: format!("http://{addr}"),
            state,
        }
    }

    /// Replaces the rules.
    pub fn set(&self, rules: Vec<Rule>) {
        let mut s = self.state.lock().unwrap();
        s.rules = rules;
        s.injected = 0;
    }

    /// How many faults were applied since the last [`FaultProxy::set`].
    pub fn injected(&self) -> usize {
        self.state.lock().unwrap().injected
    }
}

/// One HTTP message: its head and body.
struct Message {
    head: Vec<u8>,
    body: Vec<u8>,
}

impl Message {
    fn first_line(&self) -> String {
        String::from_utf8_lossy(&self.head)
            .lines()
            .next()
            .unwrap_or_default()
            .to_string()
    }
}

/// Reads one message; `None` at a clean end of stream.
async fn read_message(
    stream: &mut TcpStream,
    buffer: &mut Vec<u8>,
    response_to_head: bool,
) -> Option<Message> {
    let head_end = loop {
        if let Some(i) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let mut chunk = [0u8; 16384];
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buffer.extend_from_slice(&chunk[..n]);
    };
    let head: Vec<u8> = buffer.drain(..head_end).collect();
    let text = String::from_utf8_lossy(&head).to_ascii_lowercase();
    if !response_to_head && text.contains("transfer-encoding: chunked") {
        let body = read_chunked(stream, buffer).await?;
        return Some(Message { head, body });
    }
    let length: usize = if response_to_head {
        0
    } else {
        text.lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0)
    };
    fill(stream, buffer, length).await?;
    let body = buffer.drain(..length).collect();
    Some(Message { head, body })
}

/// Reads until `buffer` holds at least `len` bytes.
async fn fill(stream: &mut TcpStream, buffer: &mut Vec<u8>, len: usize) -> Option<()> {
    while buffer.len() < len {
        let mut chunk = vec![0u8; (len - buffer.len()).clamp(16384, 1 << 20)];
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buffer.extend_from_slice(&chunk[..n]);
    }
    Some(())
}

/// A chunked body, kept in its wire form (size lines included) so it is forwarded as is.
async fn read_chunked(stream: &mut TcpStream, buffer: &mut Vec<u8>) -> Option<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let line_end = loop {
            if let Some(i) = buffer.windows(2).position(|w| w == b"\r\n") {
                break i + 2;
            }
            let len = buffer.len() + 1;
            fill(stream, buffer, len).await?;
        };
        let size_line = String::from_utf8_lossy(&buffer[..line_end - 2]).to_string();
        let size = usize::from_str_radix(size_line.split(';').next()?.trim(), 16).ok()?;
        // The chunk, its CRLF; the last (empty) chunk is followed by a final CRLF.
        let total = line_end + size + 2;
        fill(stream, buffer, total).await?;
        body.extend(buffer.drain(..total));
        if size == 0 {
            return Some(body);
        }
    }
}

fn pick(state: &Mutex<State>, request: &Message) -> Option<Fault> {
    let request_line = &request.first_line();
    let head = String::from_utf8_lossy(&request.head).to_ascii_lowercase();
    let mut s = state.lock().unwrap();
    let method = request_line
        .split(' ')
        .next()
        .unwrap_or_default()
        .to_string();
    let index = s.rules.iter().position(|r| {
        r.method.is_none_or(|m| m == method)
            && r.target_contains
                .as_deref()
                .is_none_or(|t| request_line.contains(t))
            && r.header_contains
                .as_deref()
                .is_none_or(|h| head.lines().any(|l| l.contains(h)))
            && r.times != Some(0)
    })?;
    let rule = &mut s.rules[index];
    if let Some(n) = rule.times.as_mut() {
        *n -= 1;
    }
    let fault = rule.fault;
    s.injected += 1;
    Some(fault)
}

async fn serve(mut client: TcpStream, upstream: SocketAddr, state: Arc<Mutex<State>>) {
    let Ok(mut server) = TcpStream::connect(upstream).await else {
        return;
    };
    let (mut from_client, mut from_server) = (Vec::new(), Vec::new());
    while let Some(request) = read_message(&mut client, &mut from_client, false).await {
        let line = request.first_line();
        let fault = pick(&state, &request);
        match fault {
            Some(Fault::Status(code)) => {
                // Quoting the request target, XML-escaped, as S3's <Resource> and some
                // servers' messages do: with a SAS token, credentials are in it.
                let target = line.split(' ').nth(1).unwrap_or_default();
                let resource = target
                    .replace('&', "&amp;")
                    .replace('<', "&lt;")
                    .replace('>', "&gt;");
                let body = format!(
                    "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>{}</Code>\
                     <Message>injected fault</Message><Resource>{resource}</Resource></Error>",
                    if code == 503 {
                        "SlowDown"
                    } else {
                        "InternalError"
                    }
                );
                let reply = format!(
                    "HTTP/1.1 {code} Injected\r\nContent-Type: application/xml\r\n\
                     Content-Length: {}\r\n\r\n{body}",
                    body.len()
                );
                if client.write_all(reply.as_bytes()).await.is_err() {
                    return;
                }
                continue;
            }
            Some(Fault::Drop) => return,
            _ => {}
        }
        if server.write_all(&request.head).await.is_err()
            || server.write_all(&request.body).await.is_err()
        {
            return;
        }
        let is_head = line.starts_with("HEAD ");
        let Some(response) = read_message(&mut server, &mut from_server, is_head).await else {
            return;
        };
        if let Some(Fault::Stall(pause)) = fault {
            tokio::time::sleep(pause).await;
        }
        let body: &[u8] = if fault == Some(Fault::Truncate) {
            &response.body[..response.body.len() / 2]
        } else {
            &response.body
        };
        if client.write_all(&response.head).await.is_err() {
            return;
        }
        if let Some(Fault::Trickle(interval)) = fault {
            for byte in body {
                tokio::time::sleep(interval).await;
                if client.write_all(&[*byte]).await.is_err() {
                    return;
                }
            }
            continue;
        }
        if client.write_all(body).await.is_err() {
            return;
        }
        if fault == Some(Fault::Truncate) {
            return;
        }
    }
}
