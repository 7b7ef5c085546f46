//! TLS and mutual TLS over real sockets: certificates made here with
//! rcgen, a rustls client, and raw bytes where the test is about what the
//! server does with a misbehaving client.

mod common;

use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::routing;
use common::{NOON_SECS, TestServer};
use doppel_server::{ClientAuth, ClientCertificate, ServerConfig, ServerError, TlsConfig, serve_router};
use futures_util::{SinkExt, StreamExt};
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DistinguishedName, DnType, ExtendedKeyUsagePurpose,
    IsCa, KeyPair, KeyUsagePurpose, SanType,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio_rustls::client::TlsStream;

/// Longest any step of these tests waits for the server; far above what
/// each step needs, so it only bounds a failing test.
const PATIENCE: Duration = Duration::from_secs(10);

/// How often the reload test's server checks its certificate files.
const FAST_RELOAD_POLL: Duration = Duration::from_millis(50);

// ---------------------------------------------------------------------------
// Certificates

/// A certificate authority that issues server and client certificates.
struct Authority {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

/// A certificate and its key, as PEM.
struct Issued {
    certificate_pem: String,
    key_pem: String,
    der: Vec<u8>,
}

impl Authority {
    fn new(name: &str) -> Self {
        let mut params = CertificateParams::default();
        params.distinguished_name = distinguished_name(name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::DigitalSignature];
        Self { issuer: CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap() }
    }

    fn pem(&self) -> String {
        self.issuer.pem()
    }

    /// A server certificate for `localhost` and 127.0.0.1, named `name`.
    fn server(&self, name: &str) -> Issued {
        let mut params = CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
        params.subject_alt_names.push(SanType::IpAddress([127, 0, 0, 1].into()));
        params.distinguished_name = distinguished_name(name);
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        self.issue(params)
    }

    /// A device certificate with a common name, a DNS name and a URI.
    fn device(&self, name: &str) -> Issued {
        let mut params = CertificateParams::default();
        params.distinguished_name = distinguished_name(name);
        params.subject_alt_names = vec![
            SanType::DnsName(format!("{name}.devices.example").try_into().unwrap()),
            SanType::URI(format!("urn:doppel:device:{name}").try_into().unwrap()),
        ];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        self.issue(params)
    }

    fn issue(&self, params: CertificateParams) -> Issued {
        let key = KeyPair::generate().unwrap();
        let certificate = params.signed_by(&key, &self.issuer).unwrap();
        Issued {
            certificate_pem: certificate.pem(),
            key_pem: key.serialize_pem(),
            der: certificate.der().to_vec(),
        }
    }
}

fn distinguished_name(common_name: &str) -> DistinguishedName {
    let mut name = DistinguishedName::new();
    name.push(DnType::CommonName, common_name);
    name
}

/// Certificate files in a temporary directory.
struct Files {
    dir: tempfile::TempDir,
}

impl Files {
    fn new() -> Self {
        Self { dir: tempfile::tempdir().unwrap() }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn write(&self, name: &str, contents: &str) -> PathBuf {
        let path = self.path(name);
        std::fs::write(&path, contents).unwrap();
        path
    }

    /// Writes the server's certificate and key, returning the TLS settings.
    fn server_tls(&self, server: &Issued) -> TlsConfig {
        TlsConfig::new(
            self.write("server.pem", &server.certificate_pem),
            self.write("server-key.pem", &server.key_pem),
        )
    }
}

// ---------------------------------------------------------------------------
// Client

/// A rustls client trusting `ca_pem`, presenting `identity` if given.
fn client(ca_pem: &str, identity: Option<&Issued>) -> tokio_rustls::TlsConnector {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    roots.add(CertificateDer::from_pem_slice(ca_pem.as_bytes()).unwrap()).unwrap();
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots);
    let config = match identity {
        Some(issued) => builder
            .with_client_auth_cert(
                vec![CertificateDer::from_pem_slice(issued.certificate_pem.as_bytes()).unwrap()],
                PrivateKeyDer::from_pem_slice(issued.key_pem.as_bytes()).unwrap(),
            )
            .unwrap(),
        None => builder.with_no_client_auth(),
    };
    tokio_rustls::TlsConnector::from(Arc::new(config))
}

async fn connect(
    addr: SocketAddr,
    connector: &tokio_rustls::TlsConnector,
) -> io::Result<TlsStream<TcpStream>> {
    let tcp = TcpStream::connect(addr).await?;
    let name = ServerName::try_from("localhost").unwrap();
    tokio::time::timeout(PATIENCE, connector.connect(name, tcp)).await.expect("TLS handshake ended in time")
}

/// An HTTP/1.1 answer: status and body.
#[derive(Debug)]
struct Answer {
    status: u16,
    body: String,
}

/// Sends `GET path` with `Connection: close` and reads the whole answer.
async fn get(addr: SocketAddr, connector: &tokio_rustls::TlsConnector, path: &str) -> io::Result<Answer> {
    request(addr, connector, "GET", path, "").await
}

/// Sends one request with `Connection: close` and reads the whole answer.
async fn request(
    addr: SocketAddr,
    connector: &tokio_rustls::TlsConnector,
    method: &str,
    path: &str,
    body: &str,
) -> io::Result<Answer> {
    let mut stream = connect(addr, connector).await?;
    let length = body.len();
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: localhost\r\nContent-Length: {length}\r\nConnection: close\r\n\r\n{body}"
    );
    stream.write_all(request.as_bytes()).await?;
    let raw = read_all(&mut stream).await?;
    parse_answer(&raw).ok_or_else(|| io::Error::other(format!("not an HTTP answer: {raw:?}")))
}

/// Reads until the peer closes, failing on any error.
async fn read_all(stream: &mut (impl AsyncReadExt + Unpin)) -> io::Result<Vec<u8>> {
    let mut raw = Vec::new();
    tokio::time::timeout(PATIENCE, stream.read_to_end(&mut raw)).await.expect("server closed in time")?;
    Ok(raw)
}

fn parse_answer(raw: &[u8]) -> Option<Answer> {
    let text = String::from_utf8_lossy(raw);
    let (head, body) = text.split_once("\r\n\r\n")?;
    let status = head.strip_prefix("HTTP/1.1 ")?.get(..3)?.parse().ok()?;
    Some(Answer { status, body: body.to_owned() })
}

/// Completes the handshake and waits for the server's first word without
/// sending a request: a server refusing the client's certificate says so
/// with an alert, and since the client sent nothing the server has
/// nothing unread when it closes (which would turn its alert into a reset).
async fn refusal(addr: SocketAddr, connector: &tokio_rustls::TlsConnector) -> rustls::Error {
    let outcome = match connect(addr, connector).await {
        Ok(mut stream) => read_all(&mut stream).await.map(|_| ()),
        Err(error) => Err(error),
    };
    let error = outcome.expect_err("the server accepted the client");
    error
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        .cloned()
        .unwrap_or_else(|| panic!("not a TLS error: {error:?}"))
}

/// The leaf certificate a fresh connection is served.
async fn served_certificate(addr: SocketAddr, connector: &tokio_rustls::TlsConnector) -> Vec<u8> {
    let stream = connect(addr, connector).await.unwrap();
    stream.get_ref().1.peer_certificates().unwrap()[0].to_vec()
}

// ---------------------------------------------------------------------------
// Servers

/// A server of a router that echoes the client certificate it sees.
struct EchoServer {
    addr: SocketAddr,
    shutdown: Option<oneshot::Sender<()>>,
    task: JoinHandle<Result<(), ServerError>>,
}

async fn whoami(client: Option<ClientCertificate>) -> Json<Value> {
    Json(client.map_or(Value::Null, |client| {
        json!({
            "common_name": client.common_name(),
            "dns_names": client.dns_names(),
            "uris": client.uris(),
            "sha256": client.fingerprint().to_string(),
        })
    }))
}

impl EchoServer {
    async fn start(config: ServerConfig) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let app = Router::new().route("/whoami", routing::get(whoami));
        let (sender, receiver) = oneshot::channel::<()>();
        let task = tokio::spawn(serve_router(listener, app, config, async move {
            let _ = receiver.await;
        }));
        Self { addr, shutdown: Some(sender), task }
    }

    async fn shutdown(mut self) {
        if let Some(sender) = self.shutdown.take() {
            let _ = sender.send(());
        }
        tokio::time::timeout(PATIENCE, self.task).await.expect("shut down in time").unwrap().unwrap();
    }
}

fn tls_config(tls: TlsConfig) -> ServerConfig {
    ServerConfig { tls: Some(tls), ..ServerConfig::default() }
}

fn with_client_auth(
    files: &Files,
    ca: &Authority,
    mode: fn(PathBuf) -> ClientAuth,
    tls: TlsConfig,
) -> TlsConfig {
    TlsConfig { client_auth: mode(files.write("clients-ca.pem", &ca.pem())), ..tls }
}

fn required(ca_bundle: PathBuf) -> ClientAuth {
    ClientAuth::Required { ca_bundle }
}

fn optional(ca_bundle: PathBuf) -> ClientAuth {
    ClientAuth::Optional { ca_bundle }
}

// ---------------------------------------------------------------------------
// HTTPS

#[tokio::test]
async fn https_request_to_the_api_succeeds() {
    let ca = Authority::new("Doppel test CA");
    let files = Files::new();
    let server = TestServer::start_with(tls_config(files.server_tls(&ca.server("doppel"))), |_| {}).await;
    let answer = get(server.addr, &client(&ca.pem(), None), "/health").await.unwrap();
    assert_eq!(answer.status, 200, "{answer:?}");
    let health: Value = serde_json::from_str(&answer.body).unwrap();
    assert_eq!(health["status"], "ok", "{health}");
    server.shutdown().await;
}

#[tokio::test]
async fn plain_http_to_the_tls_port_gets_no_http_answer() {
    let ca = Authority::new("Doppel test CA");
    let files = Files::new();
    let server = TestServer::start_with(tls_config(files.server_tls(&ca.server("doppel"))), |_| {}).await;
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    stream.write_all(b"GET /health HTTP/1.1\r\nHost: localhost\r\n\r\n").await.unwrap();
    let mut raw = Vec::new();
    // The server answers with a TLS alert and closes, or resets: either
    // way, never with HTTP.
    let _ =
        tokio::time::timeout(PATIENCE, stream.read_to_end(&mut raw)).await.expect("server closed in time");
    assert!(!raw.starts_with(b"HTTP/"), "{:?}", String::from_utf8_lossy(&raw));
    // The server is still serving TLS clients.
    assert_eq!(get(server.addr, &client(&ca.pem(), None), "/health").await.unwrap().status, 200);
}

#[tokio::test]
async fn websocket_and_sse_work_over_tls() {
    let ca = Authority::new("Doppel test CA");
    let files = Files::new();
    let server = TestServer::start_with(tls_config(files.server_tls(&ca.server("doppel"))), |_| {}).await;
    let connector = client(&ca.pem(), None);

    let stream = connect(server.addr, &connector).await.unwrap();
    let url = format!("wss://localhost:{}/api/v1/stream", server.addr.port());
    let (mut socket, _) = tokio_tungstenite::client_async(url, stream).await.unwrap();
    let subscribe = json!({"subscribe": {"twins": ["alice"]}}).to_string();
    socket.send(tokio_tungstenite::tungstenite::Message::Text(subscribe.into())).await.unwrap();

    let mut sse = connect(server.addr, &connector).await.unwrap();
    sse.write_all(b"GET /api/v1/twins/alice/events HTTP/1.1\r\nHost: localhost\r\n\r\n").await.unwrap();
    let mut seen = String::new();
    read_until(&mut sse, &mut seen, "text/event-stream").await;

    let reply = tokio::time::timeout(PATIENCE, socket.next()).await.unwrap().unwrap().unwrap();
    assert!(reply.to_text().unwrap().contains("subscribed"), "{reply:?}");
    let line = format!("heart_rate,twin=alice value=61 {NOON_SECS}");
    let written = request(server.addr, &connector, "POST", "/api/v2/write?precision=s", &line).await.unwrap();
    assert_eq!(written.status, 204, "{written:?}");
    let event = tokio::time::timeout(PATIENCE, socket.next()).await.unwrap().unwrap().unwrap();
    let event: Value = serde_json::from_str(event.to_text().unwrap()).unwrap();
    assert_eq!(event["twin"], "alice", "{event}");
    read_until(&mut sse, &mut seen, "event: points").await;
    server.shutdown().await;
}

async fn read_until(stream: &mut TlsStream<TcpStream>, seen: &mut String, needle: &str) {
    let mut buffer = [0u8; 4096];
    while !seen.contains(needle) {
        let read = tokio::time::timeout(PATIENCE, stream.read(&mut buffer))
            .await
            .unwrap_or_else(|_| panic!("no {needle:?} in time; got {seen:?}"))
            .unwrap();
        assert!(read > 0, "stream ended before {needle:?}; got {seen:?}");
        seen.push_str(&String::from_utf8_lossy(&buffer[..read]));
    }
}

#[tokio::test]
async fn missing_certificate_file_stops_start_up_naming_it() {
    let files = Files::new();
    let missing = files.path("nowhere.pem");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let config = tls_config(TlsConfig::new(&missing, files.path("key.pem")));
    let result = serve_router(listener, Router::new(), config, std::future::pending()).await;
    let error = result.expect_err("start-up should fail");
    assert!(matches!(error, ServerError::TlsFile { ref path, .. } if path == &missing), "{error:?}");
    assert!(error.to_string().contains("nowhere.pem"), "{error}");
}

// ---------------------------------------------------------------------------
// Mutual TLS

#[tokio::test]
async fn required_client_auth_refuses_a_client_without_a_certificate() {
    let ca = Authority::new("Doppel test CA");
    let files = Files::new();
    let tls = with_client_auth(&files, &ca, required, files.server_tls(&ca.server("doppel")));
    let server = EchoServer::start(tls_config(tls)).await;
    let error = refusal(server.addr, &client(&ca.pem(), None)).await;
    assert_eq!(error, rustls::Error::AlertReceived(rustls::AlertDescription::CertificateRequired));
    server.shutdown().await;
}

#[tokio::test]
async fn required_client_auth_refuses_a_certificate_from_another_ca() {
    let ca = Authority::new("Doppel test CA");
    let stranger = Authority::new("Some other CA");
    let files = Files::new();
    let tls = with_client_auth(&files, &ca, required, files.server_tls(&ca.server("doppel")));
    let server = EchoServer::start(tls_config(tls)).await;
    let impostor = stranger.device("sensor-17");
    let error = refusal(server.addr, &client(&ca.pem(), Some(&impostor))).await;
    assert_eq!(error, rustls::Error::AlertReceived(rustls::AlertDescription::UnknownCA));
    server.shutdown().await;
}

#[tokio::test]
async fn required_client_auth_hands_the_verified_identity_to_handlers() {
    let ca = Authority::new("Doppel test CA");
    let files = Files::new();
    let tls = with_client_auth(&files, &ca, required, files.server_tls(&ca.server("doppel")));
    let server = EchoServer::start(tls_config(tls)).await;
    let device = ca.device("sensor-17");
    let answer = get(server.addr, &client(&ca.pem(), Some(&device)), "/whoami").await.unwrap();
    assert_eq!(answer.status, 200, "{answer:?}");
    let identity: Value = serde_json::from_str(&answer.body).unwrap();
    let fingerprint: String = ring::digest::digest(&ring::digest::SHA256, &device.der)
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(
        identity,
        json!({
            "common_name": "sensor-17",
            "dns_names": ["sensor-17.devices.example"],
            "uris": ["urn:doppel:device:sensor-17"],
            "sha256": fingerprint,
        })
    );
    server.shutdown().await;
}

#[tokio::test]
async fn optional_client_auth_serves_anonymous_clients_without_identity() {
    let ca = Authority::new("Doppel test CA");
    let files = Files::new();
    let tls = with_client_auth(&files, &ca, optional, files.server_tls(&ca.server("doppel")));
    let server = EchoServer::start(tls_config(tls)).await;
    let anonymous = get(server.addr, &client(&ca.pem(), None), "/whoami").await.unwrap();
    assert_eq!((anonymous.status, anonymous.body.as_str()), (200, "null"));
    let device = ca.device("watch-3");
    let known = get(server.addr, &client(&ca.pem(), Some(&device)), "/whoami").await.unwrap();
    let identity: Value = serde_json::from_str(&known.body).unwrap();
    assert_eq!(identity["common_name"], "watch-3", "{identity}");
    let impostor = Authority::new("Some other CA").device("watch-3");
    let error = refusal(server.addr, &client(&ca.pem(), Some(&impostor))).await;
    assert_eq!(error, rustls::Error::AlertReceived(rustls::AlertDescription::UnknownCA));
    server.shutdown().await;
}

#[tokio::test]
async fn without_client_auth_no_identity_reaches_handlers() {
    let ca = Authority::new("Doppel test CA");
    let files = Files::new();
    let server = EchoServer::start(tls_config(files.server_tls(&ca.server("doppel")))).await;
    // A client that would present a certificate is not asked for one.
    let answer = get(server.addr, &client(&ca.pem(), Some(&ca.device("sensor-1"))), "/whoami").await.unwrap();
    assert_eq!((answer.status, answer.body.as_str()), (200, "null"));
    server.shutdown().await;
}

// ---------------------------------------------------------------------------
// Reload

/// Writes `contents` to `path` through a temporary file and a rename, the
/// way certificate tools replace files, so the server never reads half.
fn replace(path: &Path, contents: &str) {
    let temporary = path.with_extension("new");
    std::fs::write(&temporary, contents).unwrap();
    std::fs::rename(&temporary, path).unwrap();
}

/// Connects until the served certificate is `expected`, for at most
/// [`PATIENCE`].
async fn wait_for_certificate(addr: SocketAddr, connector: &tokio_rustls::TlsConnector, expected: &[u8]) {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while served_certificate(addr, connector).await != expected {
        assert!(tokio::time::Instant::now() < deadline, "the new certificate was not served in time");
        tokio::time::sleep(FAST_RELOAD_POLL).await;
    }
}

#[tokio::test]
async fn replaced_certificate_files_are_served_without_a_restart() {
    let ca = Authority::new("Doppel test CA");
    let files = Files::new();
    let first = ca.server("first");
    let tls = TlsConfig { reload_poll: FAST_RELOAD_POLL, ..files.server_tls(&first) };
    let (certificate_path, key_path) = (tls.certificate_chain.clone(), tls.private_key.clone());
    let server = EchoServer::start(tls_config(tls)).await;
    let connector = client(&ca.pem(), None);
    assert_eq!(served_certificate(server.addr, &connector).await, first.der);

    // Certificate first, key a moment later: in between the pair does not
    // match and the first certificate must go on being served.
    let second = ca.server("second");
    replace(&certificate_path, &second.certificate_pem);
    assert_eq!(served_certificate(server.addr, &connector).await, first.der);
    replace(&key_path, &second.key_pem);
    wait_for_certificate(server.addr, &connector, &second.der).await;

    // A file that does not parse is ignored; the next good pair is served.
    replace(&certificate_path, "-----BEGIN CERTIFICATE-----\ngarbage\n-----END CERTIFICATE-----\n");
    assert_eq!(served_certificate(server.addr, &connector).await, second.der);
    let third = ca.server("third");
    replace(&key_path, &third.key_pem);
    replace(&certificate_path, &third.certificate_pem);
    wait_for_certificate(server.addr, &connector, &third.der).await;
    server.shutdown().await;
}

// ---------------------------------------------------------------------------
// Slow and oversized clients

fn short_header_timeout() -> ServerConfig {
    ServerConfig { header_read_timeout: Duration::from_millis(200), ..ServerConfig::default() }
}

/// Reads until the server closes the connection: `Ok` with whatever it
/// sent (nothing, for a plain close), or the reset.
async fn until_closed(stream: &mut TcpStream) -> io::Result<Vec<u8>> {
    let mut raw = Vec::new();
    tokio::time::timeout(PATIENCE, stream.read_to_end(&mut raw))
        .await
        .expect("the server closed the connection in time")?;
    Ok(raw)
}

#[tokio::test]
async fn client_sending_half_a_request_line_is_disconnected() {
    let server = TestServer::start_with(short_header_timeout(), |_| {}).await;
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    stream.write_all(b"GET /health HT").await.unwrap();
    let sent = until_closed(&mut stream).await;
    assert!(sent.as_ref().is_ok_and(Vec::is_empty) || sent.is_err(), "{sent:?}");
    server.shutdown().await;
}

#[tokio::test]
async fn silent_connection_is_disconnected() {
    let server = TestServer::start_with(short_header_timeout(), |_| {}).await;
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    let sent = until_closed(&mut stream).await;
    assert!(sent.as_ref().is_ok_and(Vec::is_empty) || sent.is_err(), "{sent:?}");
    server.shutdown().await;
}

#[tokio::test]
async fn client_that_never_finishes_the_tls_handshake_is_disconnected() {
    let ca = Authority::new("Doppel test CA");
    let files = Files::new();
    let config = ServerConfig { tls: Some(files.server_tls(&ca.server("doppel"))), ..short_header_timeout() };
    let server = TestServer::start_with(config, |_| {}).await;
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    // The start of a TLS record header, then nothing.
    stream.write_all(&[0x16, 0x03, 0x01]).await.unwrap();
    let sent = until_closed(&mut stream).await;
    assert!(sent.as_ref().is_ok_and(Vec::is_empty) || sent.is_err(), "{sent:?}");
    server.shutdown().await;
}

#[tokio::test]
async fn request_head_over_the_limit_gets_431() {
    let config = ServerConfig { max_header_bytes: 16 * 1024, ..ServerConfig::default() };
    let server = TestServer::start_with(config, |_| {}).await;
    let request = |padding: usize| {
        format!(
            "GET /health HTTP/1.1\r\nHost: x\r\nX-Padding: {}\r\nConnection: close\r\n\r\n",
            "a".repeat(padding)
        )
    };

    let mut fits = TcpStream::connect(server.addr).await.unwrap();
    fits.write_all(request(12 * 1024).as_bytes()).await.unwrap();
    let answer = parse_answer(&until_closed(&mut fits).await.unwrap()).unwrap();
    assert_eq!(answer.status, 200, "{answer:?}");

    let mut too_large = TcpStream::connect(server.addr).await.unwrap();
    too_large.write_all(request(20 * 1024).as_bytes()).await.unwrap();
    let raw = until_closed(&mut too_large).await.unwrap();
    let answer = parse_answer(&raw).unwrap();
    assert_eq!(answer.status, 431, "{answer:?}");
    server.shutdown().await;
}

#[tokio::test]
async fn header_limit_below_hyper_minimum_stops_start_up() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let config = ServerConfig { max_header_bytes: 1024, ..ServerConfig::default() };
    let result = serve_router(listener, Router::new(), config, std::future::pending()).await;
    assert!(
        matches!(result, Err(ServerError::HeaderLimitTooSmall { bytes: 1024, minimum: 8192 })),
        "{result:?}"
    );
}
