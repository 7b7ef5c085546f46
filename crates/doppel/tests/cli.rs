//! The `doppel` client commands against a real `doppel serve` child:
//! twin management, imports in every shape, queries in every format,
//! failures that must name what is wrong, help, and offline compaction.
//!
//! Output that is meant to be stable (tables, CSV, one-line messages) is
//! compared as exact text; JSON is compared parsed, so key order does not
//! matter.

mod common;

use std::io::Write as _;
use std::path::{Path, PathBuf};

use common::{CliOutput, Server, admin_client, admin_token, doppel, doppel_with_env, free_port};
use doppel_model::Timestamp;
use serde_json::{Value, json};

/// 2024-03-01T00:00:00Z, the day most test points fall on.
const DAY_START_SECS: i64 = 1_709_251_200;

/// The range flags covering all of 2024-03-01.
const DAY: [&str; 4] = ["--from", "2024-03-01T00:00:00Z", "--to", "2024-03-02T00:00:00Z"];

/// A server on a fresh data directory, and scratch space for input files.
struct Fixture {
    server: Server,
    dir: tempfile::TempDir,
}

impl Fixture {
    async fn start() -> Fixture {
        let dir = tempfile::tempdir().expect("tempdir");
        let server = Server::start(&dir.path().join("data"), &dir.path().join("server.log"), &[]).await;
        Fixture { server, dir }
    }

    fn url(&self) -> String {
        self.server.url("")
    }

    /// Runs `doppel ARGS --server URL --token ADMIN`.
    async fn run(&self, args: &[&str]) -> CliOutput {
        let url = self.url();
        let mut all: Vec<&str> = args.to_vec();
        all.extend(["--server", url.as_str(), "--token", admin_token()]);
        doppel(&all).await
    }

    /// Like [`Fixture::run`], asserting success and returning stdout.
    async fn ok(&self, args: &[&str]) -> String {
        let output = self.run(args).await;
        assert!(
            output.success,
            "doppel {args:?} failed:\n{}\nserver log:\n{}",
            output.stderr,
            self.server.log_tail()
        );
        output.stdout
    }

    fn file(&self, name: &str, contents: &[u8]) -> PathBuf {
        let path = self.dir.path().join(name);
        std::fs::write(&path, contents).expect("write input file");
        path
    }
}

fn path_str(path: &Path) -> &str {
    path.to_str().expect("tempdir paths are UTF-8")
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(data).expect("gzip");
    encoder.finish().expect("gzip")
}

fn parse_json(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}):\n{text}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twin_create_show_and_list_agree_in_table_json_and_csv() {
    let f = Fixture::start().await;
    f.ok(&["twin", "create", "zed"]).await;
    let created = f
        .ok(&[
            "twin",
            "create",
            "alice",
            "--model",
            "person",
            "-p",
            "birth_year=1985",
            "--property",
            "sex=female",
            "-p",
            "height_cm=168.5",
        ])
        .await;

    let alice = parse_json(&f.ok(&["twin", "show", "alice", "--format", "json"]).await);
    let alice_created = alice["created"].as_str().expect("created is a string").to_owned();
    assert!(Timestamp::parse(&alice_created).is_some(), "created {alice_created:?} is not RFC 3339");
    assert_eq!(
        alice,
        json!({
            "id": "alice",
            "model": "person",
            "created": alice_created,
            "properties": {"birth_year": 1985, "sex": "female", "height_cm": 168.5},
            "signals": [],
        })
    );

    let table = format!(
        "twin alice  model person  created {alice_created}\n\
         \n\
         property    value\n\
         birth_year  1985\n\
         height_cm   168.5\n\
         sex         female\n"
    );
    assert_eq!(created, table, "`twin create` prints the twin it made");
    assert_eq!(f.ok(&["twin", "show", "alice"]).await, table);

    let zed = parse_json(&f.ok(&["twin", "show", "zed", "--format", "json"]).await);
    let zed_created = zed["created"].as_str().expect("created is a string").to_owned();
    assert_eq!(
        f.ok(&["twin", "show", "zed"]).await,
        format!("twin zed  model person  created {zed_created}\n")
    );

    assert_eq!(
        f.ok(&["twin", "list"]).await,
        format!("id     model   created\nalice  person  {alice_created}\nzed    person  {zed_created}\n")
    );
    assert_eq!(
        f.ok(&["twin", "list", "--format", "csv"]).await,
        format!("id,model,created\nalice,person,{alice_created}\nzed,person,{zed_created}\n")
    );
    assert_eq!(
        parse_json(&f.ok(&["twin", "list", "--format", "json"]).await),
        json!({"next": null, "twins": [
            {"id": "alice", "model": "person", "created": alice_created},
            {"id": "zed", "model": "person", "created": zed_created},
        ]})
    );
    assert_eq!(
        parse_json(&f.ok(&["twin", "list", "--limit", "1", "--format", "json"]).await),
        json!({"next": "alice", "twins": [{"id": "alice", "model": "person", "created": alice_created}]})
    );

    assert_eq!(f.ok(&["twin", "delete", "zed"]).await, "deleted twin zed and all its data\n");
    let gone = f.run(&["twin", "show", "zed"]).await;
    assert!(!gone.success);
    assert_eq!(gone.stderr, "error: server answered 404 Not Found: twin \"zed\" does not exist\n");
    assert_eq!(
        f.ok(&["twin", "list", "--format", "csv"]).await,
        format!("id,model,created\nalice,person,{alice_created}\n")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twin_create_refuses_a_property_without_a_value_before_calling_the_server() {
    let f = Fixture::start().await;
    let output = f.run(&["twin", "create", "alice", "-p", "novalue"]).await;
    assert!(!output.success);
    assert_eq!(output.stderr, "error: property \"novalue\" is not key=value\n");
    assert_eq!(f.ok(&["twin", "list", "--format", "csv"]).await, "id,model,created\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_import_with_a_row_ten_years_ahead_is_refused_naming_it() {
    let f = Fixture::start().await;
    let csv = f.file(
        "ahead.csv",
        b"time,twin,signal,value\n2024-03-01T12:00:00Z,alice,heart_rate,62\n2200-01-01T00:00:00Z,alice,heart_rate,63\n",
    );
    let output = f.run(&["import", path_str(&csv)]).await;
    assert!(!output.success);
    assert!(
        output.stderr.contains("2: time 2200-01-01T00:00:00Z is more than 1h ahead")
            && output.stderr.contains("(future_horizon)"),
        "{}",
        output.stderr
    );
    assert_eq!(
        f.ok(&["twin", "list", "--format", "csv"]).await,
        "id,model,created\n",
        "nothing was imported"
    );
}

/// The small, exactly known dataset: a long CSV with tags, a wide CSV
/// with --twin, and gzip-compressed line protocol.
async fn import_small_dataset(f: &Fixture) {
    let long = f.file(
        "alice.csv",
        b"time,twin,signal,value,device\n\
          2024-03-01T12:00:00Z,alice,heart_rate,62,watch\n\
          2024-03-01T12:01:00Z,alice,heart_rate,64.5,watch\n\
          2024-03-01T12:02:30.5Z,alice,heart_rate,65.5,ring\n\
          2024-03-01T12:00:00Z,alice,sleep_stage,deep,\n",
    );
    assert_eq!(
        f.ok(&["import", path_str(&long)]).await,
        format!("imported 4 points from {}\n", long.display())
    );

    let wide = f.file("bob.csv", b"time,heart_rate,steps\n1709294400,62,\n1709294460,64,12\n");
    assert_eq!(
        f.ok(&["import", path_str(&wide), "--twin", "bob", "--precision", "s"]).await,
        format!("imported 3 points from {}\n", wide.display())
    );

    let lp = f.file(
        "carol.lp.gz",
        &gzip(
            b"spo2,twin=carol value=97 1709294400000000000\n\
              spo2,twin=carol,device=ring value=96.5 1709294460000000000\n",
        ),
    );
    assert_eq!(f.ok(&["import", path_str(&lp)]).await, format!("imported 2 points from {}\n", lp.display()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn imported_points_read_back_exactly_as_csv_table_and_json() {
    let f = Fixture::start().await;
    import_small_dataset(&f).await;

    let query = |twin: &'static str, signal: &'static str, format: &'static str| {
        let mut args = vec!["query", twin, signal, "--format", format];
        args.extend(DAY);
        args
    };

    assert_eq!(
        f.ok(&query("alice", "heart_rate", "csv")).await,
        "time,value\n\
         2024-03-01T12:00:00Z,62\n\
         2024-03-01T12:01:00Z,64.5\n\
         2024-03-01T12:02:30.5Z,65.5\n"
    );
    assert_eq!(
        f.ok(&query("alice", "heart_rate", "table")).await,
        "time                    value  label  source\n\
         2024-03-01T12:00:00Z    62            device=watch\n\
         2024-03-01T12:01:00Z    64.5          device=watch\n\
         2024-03-01T12:02:30.5Z  65.5          device=ring\n"
    );
    assert_eq!(
        parse_json(&f.ok(&query("alice", "heart_rate", "json")).await),
        json!({
            "twin": "alice",
            "signal": "heart_rate",
            "unit": "bpm",
            "points": [
                {"time": "2024-03-01T12:00:00Z", "value": 62, "provenance": "device=watch"},
                {"time": "2024-03-01T12:01:00Z", "value": 64.5, "provenance": "device=watch"},
                {"time": "2024-03-01T12:02:30.5Z", "value": 65.5, "provenance": "device=ring"},
            ],
        })
    );
    // Table is the default format; category signals show their label.
    let mut sleep = vec!["query", "alice", "sleep_stage"];
    sleep.extend(DAY);
    assert_eq!(
        f.ok(&sleep).await,
        "time                  value  label  source\n\
         2024-03-01T12:00:00Z  2      deep\n"
    );

    assert_eq!(
        f.ok(&query("bob", "heart_rate", "csv")).await,
        "time,value\n2024-03-01T12:00:00Z,62\n2024-03-01T12:01:00Z,64\n"
    );
    // The empty `steps` cell of the first row is skipped, not zero.
    assert_eq!(f.ok(&query("bob", "steps", "csv")).await, "time,value\n2024-03-01T12:01:00Z,12\n");

    assert_eq!(
        f.ok(&query("carol", "spo2", "csv")).await,
        "time,value\n2024-03-01T12:00:00Z,97\n2024-03-01T12:01:00Z,96.5\n"
    );
    assert_eq!(
        f.ok(&query("carol", "spo2", "table")).await,
        "time                  value  label  source\n\
         2024-03-01T12:00:00Z  97\n\
         2024-03-01T12:01:00Z  96.5          device=ring\n"
    );
    // Only the ring's series.
    let mut ring = query("carol", "spo2", "csv");
    ring.extend(["--source", "device=ring"]);
    assert_eq!(f.ok(&ring).await, "time,value\n2024-03-01T12:01:00Z,96.5\n");

    // `twin show` adds each signal's last value and its shortest window.
    let alice = parse_json(&f.ok(&["twin", "show", "alice", "--format", "json"]).await);
    let created = alice["created"].as_str().expect("created is a string");
    assert_eq!(
        f.ok(&["twin", "show", "alice"]).await,
        format!(
            "twin alice  model person  created {created}\n\
             \n\
             signal       last  unit  at                      window  mean  min  max\n\
             heart_rate   65.5  bpm   2024-03-01T12:02:30.5Z  5m      64    62   65.5\n\
             sleep_stage  deep        2024-03-01T12:00:00Z\n"
        )
    );

    let mut hourly = query("alice", "heart_rate", "csv");
    hourly.extend(["--every", "1h", "--agg", "mean,max"]);
    assert_eq!(f.ok(&hourly).await, "time,mean,max\n2024-03-01T12:00:00Z,64,65.5\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aggregate_table_columns_follow_the_requested_order() {
    let f = Fixture::start().await;
    import_small_dataset(&f).await;
    let mut args = vec!["query", "alice", "heart_rate", "--every", "1h", "--agg", "mean,max"];
    args.extend(DAY);
    // The server answers buckets as {time, count, mean, max} in the order
    // asked for, and CSV keeps it (`time,mean,max`); the table must too.
    assert_eq!(
        f.ok(&args).await,
        "time                  count  mean  max\n\
         2024-03-01T12:00:00Z  3      64    65.5\n"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_csv_import_in_several_requests_arrives_whole() {
    let f = Fixture::start().await;
    const TWINS: usize = 3;
    const MINUTES: i64 = 3_000;
    let mut csv = String::from("time,twin,signal,value,device\n");
    for twin in 0..TWINS {
        for minute in 0..MINUTES {
            let time = Timestamp::from_secs(DAY_START_SECS + minute * 60).to_rfc3339();
            let device = if minute % 2 == 0 { "watch" } else { "" };
            csv.push_str(&format!("{time},walker-{twin},heart_rate,{},{device}\n", 60 + minute % 40));
        }
    }
    let path = f.file("walkers.csv", csv.as_bytes());
    let total = TWINS as i64 * MINUTES;
    assert_eq!(
        f.ok(&["import", path_str(&path), "--batch-lines", "4000"]).await,
        format!("imported {total} points from {}\n", path.display())
    );
    // 3,000 minutes from midnight: two whole days and two hours. Values
    // cycle 60..=99 every 40 minutes, so every day's mean is 79.5.
    for twin in 0..TWINS {
        let name = format!("walker-{twin}");
        let args = [
            "query",
            name.as_str(),
            "heart_rate",
            "--from",
            "2024-03-01T00:00:00Z",
            "--to",
            "2024-03-04T00:00:00Z",
            "--every",
            "1d",
            "--agg",
            "count,mean,max",
            "--format",
            "csv",
        ];
        assert_eq!(
            f.ok(&args).await,
            "time,count,mean,max\n\
             2024-03-01T00:00:00Z,1440,79.5,99\n\
             2024-03-02T00:00:00Z,1440,79.5,99\n\
             2024-03-03T00:00:00Z,120,79.5,99\n",
            "{name}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_csv_with_bad_lines_names_every_bad_line_and_imports_nothing() {
    let f = Fixture::start().await;
    f.ok(&["twin", "create", "dave"]).await;
    let path = f.file(
        "bad.csv",
        b"time,twin,signal,value\n\
          2024-03-01T12:00:00Z,dave,heart_rate,62\n\
          not-a-time,dave,heart_rate,63\n\
          2024-03-01T12:02:00Z,dave,heart_rate,NaN\n\
          2024-03-01T12:03:00Z,dave,heart_rate,65\n\
          2024-03-01T12:04:00Z,,heart_rate,65\n",
    );
    let output = f.run(&["import", path_str(&path)]).await;
    assert!(!output.success, "a file with bad lines must fail: {output:?}");
    assert_eq!(output.stdout, "");
    assert_eq!(
        output.stderr,
        "error: the file has 3 bad line(s); nothing was imported\n\
         \x20 line 3: column \"time\": \"not-a-time\" is neither RFC 3339 nor an integer (in ns)\n\
         \x20 line 4: column \"value\": \"NaN\" is not a finite number\n\
         \x20 line 6: column \"twin\": empty, and no twin given (pass --twin)\n"
    );
    let mut args = vec!["query", "dave", "heart_rate", "--format", "csv"];
    args.extend(DAY);
    assert_eq!(f.ok(&args).await, "time,value\n", "good lines of a refused file must not be imported");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_line_protocol_import_names_bad_lines_by_their_line_in_the_file() {
    let f = Fixture::start().await;
    let path = f.file(
        "erin.lp",
        b"spo2,twin=erin value=97 1709294400000000000\n\
          spo2,twin=erin value=98 1709294460000000000\n\
          spo2,twin=erin value=99 1709294520000000000\n\
          spo2,twin=erin value=96 1709294580000000000\n\
          spo2,twin=erin valu 1709294640000000000\n\
          spo2 value=95 1709294700000000000\n",
    );
    let output = f.run(&["import", path_str(&path), "--batch-lines", "3"]).await;
    assert!(!output.success, "{output:?}");
    let stderr = &output.stderr;
    assert!(stderr.contains("\n  line 5: field \"valu\" has no '='"), "{stderr}");
    assert!(stderr.contains("\n  line 6: missing tag 'twin'"), "{stderr}");
    assert!(stderr.contains("lines before 4 were imported"), "{stderr}");
    // Lines 1 to 5 of the file other than 5 are fine; a message naming
    // one of them by number sends the reader to the wrong line.
    for good in ["line 1:", "line 2:", "line 3:", "line 4:"] {
        assert!(!stderr.contains(good), "stderr names good {good} (a batch-relative number?):\n{stderr}");
    }
    let mut args = vec!["query", "erin", "spo2", "--format", "csv"];
    args.extend(DAY);
    assert_eq!(
        f.ok(&args).await,
        "time,value\n2024-03-01T12:00:00Z,97\n2024-03-01T12:01:00Z,98\n2024-03-01T12:02:00Z,99\n",
        "the first batch was imported, the refused one not at all"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn query_parameter_errors_name_the_parameter() {
    let f = Fixture::start().await;
    f.ok(&["twin", "create", "alice"]).await;
    let cases: [(&[&str], &str); 4] = [
        (&["--every", "5x"], "query parameter `every` is invalid: invalid duration \"5x\""),
        (&["--agg", "mean,mode"], "query parameter `agg` is invalid: \"mode\" is not an aggregate"),
        (&["--from", "yesterday"], "query parameter `from` is invalid: \"yesterday\""),
        (&["--source", "device"], "query parameter `source` is invalid"),
    ];
    for (flags, expected) in cases {
        let mut args = vec!["query", "alice", "heart_rate"];
        args.extend(flags);
        let output = f.run(&args).await;
        assert!(!output.success, "{flags:?} must fail");
        assert!(output.stderr.starts_with("error: server answered 400 Bad Request: "), "{}", output.stderr);
        assert!(output.stderr.contains(expected), "{flags:?}: {}", output.stderr);
        assert_eq!(output.stdout, "");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_client_command_without_a_server_says_it_cannot_be_reached() {
    let dir = tempfile::tempdir().expect("tempdir");
    let csv = dir.path().join("ok.csv");
    std::fs::write(&csv, "time,twin,signal,value\n2024-03-01T12:00:00Z,alice,heart_rate,62\n")
        .expect("write");
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}");
    let commands: [&[&str]; 6] = [
        &["twin", "list"],
        &["twin", "show", "alice"],
        &["twin", "create", "alice"],
        &["twin", "delete", "alice"],
        &["query", "alice", "heart_rate"],
        &["import", path_str(&csv)],
    ];
    for command in commands {
        let mut args = command.to_vec();
        args.extend(["--server", url.as_str()]);
        let output = doppel(&args).await;
        assert!(!output.success, "{command:?} must fail without a server");
        let expected = format!("error: cannot reach Doppel at {url}: is `doppel serve` running there?");
        assert!(output.stderr.starts_with(&expected), "{command:?}: {}", output.stderr);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn help_lists_every_subcommand_and_flag() {
    let top = doppel(&["--help"]).await;
    assert!(top.success);
    assert!(top.stdout.contains("Usage: doppel [OPTIONS] <COMMAND>"), "{}", top.stdout);
    for command in ["serve", "demo", "query", "twin", "import", "compact", "token", "audit", "bench", "help"]
    {
        assert!(top.stdout.contains(&format!("\n  {command} ")), "`{command}` missing from:\n{}", top.stdout);
    }

    let serve = doppel(&["serve", "--help"]).await;
    assert!(serve.success);
    for flag in [
        "--data <DATA>",
        "--listen <LISTEN>",
        "--config <CONFIG>",
        "--strict",
        "--models <MODELS>",
        "--tls-cert <TLS_CERT>",
        "--tls-key <TLS_KEY>",
        "--tls-client-ca <TLS_CLIENT_CA>",
        "--tls-client-auth <TLS_CLIENT_AUTH>",
        "--no-auth",
        "--insecure",
    ] {
        assert!(serve.stdout.contains(flag), "`{flag}` missing from:\n{}", serve.stdout);
    }
    for variable in
        ["DOPPEL_DATA", "DOPPEL_LISTEN", "DOPPEL_CONFIG", "DOPPEL_TLS_CERT", "DOPPEL_TLS_CLIENT_AUTH"]
    {
        assert!(serve.stdout.contains(variable), "`{variable}` missing from:\n{}", serve.stdout);
    }

    let twin = doppel(&["twin", "--help"]).await;
    for command in ["list", "show", "create", "delete"] {
        assert!(
            twin.stdout.contains(&format!("\n  {command} ")),
            "`{command}` missing from:\n{}",
            twin.stdout
        );
    }

    let query = doppel(&["query", "--help"]).await;
    for flag in ["--from", "--to", "--every", "--agg", "--source", "--format", "--server", "--token"] {
        assert!(query.stdout.contains(flag), "`{flag}` missing from:\n{}", query.stdout);
    }

    let version = doppel(&["--version"]).await;
    assert_eq!(version.stdout, format!("doppel {}\n", env!("CARGO_PKG_VERSION")));

    let unknown = doppel(&["frobnicate"]).await;
    assert!(!unknown.success);
    assert!(unknown.stderr.contains("unrecognized subcommand 'frobnicate'"), "{}", unknown.stderr);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compact_of_a_stopped_servers_directory_prints_json_stats_and_keeps_the_data() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let log = dir.path().join("server.log");
    let mut server = Server::start(&data, &log, &[]).await;
    let lines = "heart_rate,twin=alice value=62 1709294400000000000\n\
                 heart_rate,twin=alice value=64 1709294460000000000\n\
                 spo2,twin=alice value=97 1709294400000000000\n\
                 heart_rate,twin=bob value=70 1709294400000000000\n";
    let response = admin_client(std::time::Duration::from_secs(60))
        .post(server.url("/api/v2/write?precision=ns"))
        .body(lines)
        .send()
        .await
        .expect("write");
    assert_eq!(response.status(), 204);

    let data_arg = data.to_str().expect("UTF-8 path");
    let busy = doppel(&["compact", "--data", data_arg]).await;
    assert!(!busy.success, "compact must refuse a directory a server holds");
    assert!(busy.stderr.contains("another process"), "{}", busy.stderr);

    let status = server.terminate();
    assert!(
        status.success(),
        "doppel serve must exit 0 on SIGTERM, got {status}; log:\n{}",
        server.log_tail()
    );

    for run in ["first", "second"] {
        let output = doppel(&["compact", "--data", data_arg]).await;
        assert!(output.success, "{run} compact failed: {}", output.stderr);
        let stats = parse_json(&output.stdout);
        let mut keys: Vec<&String> = stats.as_object().expect("stats object").keys().collect();
        keys.sort();
        assert_eq!(keys, ["segment_bytes", "segments", "series", "wal_bytes"], "{run}: {stats}");
        assert_eq!(stats["series"], 3, "{run}: {stats}");
        assert_eq!(stats["segments"], 1, "{run}: {stats}");
        assert!(stats["segment_bytes"].as_u64().is_some_and(|b| b > 0), "{run}: {stats}");
        assert_eq!(stats["wal_bytes"], 0, "{run}: everything was flushed: {stats}");
    }

    let server = Server::start(&data, &log, &[]).await;
    let url = server.url("");
    let mut args = vec![
        "query",
        "alice",
        "heart_rate",
        "--format",
        "csv",
        "--server",
        url.as_str(),
        "--token",
        admin_token(),
    ];
    args.extend(DAY);
    let output = doppel(&args).await;
    assert!(output.success, "{}", output.stderr);
    assert_eq!(output.stdout, "time,value\n2024-03-01T12:00:00Z,62\n2024-03-01T12:01:00Z,64\n");

    let missing = dir.path().join("nowhere");
    let output = doppel(&["compact", "--data", missing.to_str().expect("UTF-8 path")]).await;
    assert!(!output.success);
    assert_eq!(output.stderr, format!("error: {} is not a data directory\n", missing.display()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_with_an_unreadable_certificate_fails_naming_the_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let missing = dir.path().join("no-such-cert.pem");
    let key = dir.path().join("key.pem");
    std::fs::write(&key, "not a key").expect("write key");
    let output = doppel(&[
        "serve",
        "--data",
        path_str(&data),
        "--listen",
        "127.0.0.1:0",
        "--tls-cert",
        path_str(&missing),
        "--tls-key",
        path_str(&key),
    ])
    .await;
    assert!(!output.success, "serve must fail: {}", output.stderr);
    assert!(output.stderr.contains("no-such-cert.pem"), "{}", output.stderr);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_with_a_key_but_no_certificate_is_refused_before_starting() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let output = doppel(&["serve", "--data", path_str(&data), "--tls-key", "key.pem"]).await;
    assert!(!output.success);
    assert!(output.stderr.contains("cert (--tls-cert) is not"), "{}", output.stderr);
    assert!(!data.exists(), "the data directory was created before the settings were checked");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_with_tls_logs_an_https_address() {
    let dir = tempfile::tempdir().expect("tempdir");
    let key = rcgen::KeyPair::generate().expect("key");
    let certificate = rcgen::CertificateParams::new(vec!["localhost".to_owned()])
        .expect("params")
        .self_signed(&key)
        .expect("certificate");
    let cert_path = dir.path().join("cert.pem");
    let key_path = dir.path().join("key.pem");
    std::fs::write(&cert_path, certificate.pem()).expect("write certificate");
    std::fs::write(&key_path, key.serialize_pem()).expect("write key");
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let data = dir.path().join("data");
    let mut child = LoggedChild::spawn(
        &dir.path().join("server.log"),
        &["serve", "--data", path_str(&data), "--listen", &listen],
        &["--tls-cert", path_str(&cert_path), "--tls-key", path_str(&key_path)],
    );
    let text = child.output_once_it_says("doppel API listening", common::STARTUP_TIMEOUT_MS).await;
    child.stop();
    let expected = format!("https://127.0.0.1:{port}");
    assert!(text.contains("doppel API listening") && text.contains(&expected), "log:\n{text}");
}

/// A `doppel` process whose stdout and stderr go to a log file, killed on
/// drop, for commands that run until stopped.
struct LoggedChild {
    child: std::process::Child,
    log: PathBuf,
}

impl LoggedChild {
    fn spawn(log: &Path, args: &[&str], more: &[&str]) -> LoggedChild {
        let out = std::fs::File::create(log).expect("create log");
        let err = out.try_clone().expect("clone log handle");
        let child = std::process::Command::new(common::DOPPEL)
            .args(args)
            .args(more)
            .env_remove("DOPPEL_CONFIG")
            .env_remove("DOPPEL_LOG")
            .stdin(std::process::Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .expect("spawn doppel");
        LoggedChild { child, log: log.to_owned() }
    }

    /// What it printed once the output holds `needle`, or once it exited
    /// or `timeout_ms` passed (the caller's assertion then shows why).
    async fn output_once_it_says(&mut self, needle: &str, timeout_ms: u64) -> String {
        let deadline = std::time::Instant::now() + std::time::Duration::from_millis(timeout_ms);
        loop {
            let text = std::fs::read_to_string(&self.log).unwrap_or_default();
            let exited = self.child.try_wait().expect("poll child").is_some();
            if text.contains(needle) || exited || std::time::Instant::now() > deadline {
                return text;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }

    fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for LoggedChild {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The command README.md starts with, scaled down: history is generated in
/// batches of thousands of points and must pass the ingest caps a real
/// writer meets, then the server goes live and serves the twins it made.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_loads_its_history_and_goes_live() {
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let mut child = LoggedChild::spawn(
        &dir.path().join("demo.log"),
        &["demo", "--people", "3", "--days", "1", "--speed", "60", "--listen", &listen],
        &[],
    );
    let text = child.output_once_it_says("admin token:", 2 * common::STARTUP_TIMEOUT_MS).await;
    let token = text
        .lines()
        .find_map(|line| line.trim().strip_prefix("admin token:"))
        .map(|token| token.trim().to_owned());
    let twin = match &token {
        Some(token) => reqwest::Client::new()
            .get(format!("http://127.0.0.1:{port}/api/v1/twins/p0001"))
            .bearer_auth(token)
            .send()
            .await
            .ok(),
        None => None,
    };
    child.stop();
    assert!(text.contains("is live at") && token.is_some(), "the demo did not go live; output:\n{text}");
    let twin = twin.expect("the demo answers");
    assert_eq!(twin.status(), 200, "output:\n{text}");
    let body: Value = twin.json().await.expect("twin JSON");
    assert_eq!(body["id"], "p0001", "{body}");
}

// ------------------------------------------------------------ authentication

/// The admin tokens shown in a server log's bootstrap boxes.
fn boxed_tokens(log: &str) -> Vec<String> {
    log.lines()
        .filter_map(|line| line.trim_matches(|c: char| c == '|' || c.is_whitespace()).strip_prefix("dpl_"))
        .map(|rest| format!("dpl_{rest}"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn first_start_prints_an_admin_token_once_and_it_works() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (data, log) = (dir.path().join("data"), dir.path().join("server.log"));
    let mut server = Server::start_with_env(&data, &log, &[], &[]).await;
    let printed = std::fs::read_to_string(&log).expect("server log");
    assert!(printed.contains("will not be shown again"), "{printed}");
    let tokens = boxed_tokens(&printed);
    assert_eq!(tokens.len(), 1, "{printed}");
    let url = server.url("");
    let listed = doppel(&["twin", "list", "--server", &url, "--token", &tokens[0]]).await;
    assert!(listed.success, "{}", listed.stderr);

    server.terminate();
    let server = Server::start_with_env(&data, &log, &[], &[]).await;
    let printed = std::fs::read_to_string(&log).expect("server log");
    assert_eq!(boxed_tokens(&printed).len(), 1, "a second start must not make another token:\n{printed}");
    let url = server.url("");
    assert!(doppel(&["twin", "list", "--server", &url, "--token", &tokens[0]]).await.success);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_generated_token_set_as_doppel_admin_token_is_the_admin_credential() {
    let generated = doppel(&["token", "generate"]).await;
    assert!(generated.success, "{}", generated.stderr);
    let token = generated.stdout.trim().to_owned();
    assert!(token.starts_with("dpl_") && token.len() == 60, "{token:?}");
    let dir = tempfile::tempdir().expect("tempdir");
    let (data, log) = (dir.path().join("data"), dir.path().join("server.log"));
    let server = Server::start_with_env(&data, &log, &[], &[("DOPPEL_ADMIN_TOKEN", &token)]).await;
    let printed = std::fs::read_to_string(&log).expect("server log");
    assert!(boxed_tokens(&printed).is_empty(), "no token is printed when one is given:\n{printed}");
    let url = server.url("");
    let listed = doppel_with_env(&["token", "list", "--server", &url], &[("DOPPEL_TOKEN", &token)]).await;
    assert!(listed.success, "{}", listed.stderr);
    assert!(listed.stdout.contains("bootstrap-admin"), "{}", listed.stdout);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_create_list_and_revoke_manage_a_users_credential() {
    let f = Fixture::start().await;
    let created =
        f.ok(&["token", "create", "--name", "phone", "--user", "alice", "--scopes", "read,write"]).await;
    let token = created.lines().next().expect("the token on the first line").to_owned();
    assert!(token.starts_with("dpl_"), "{created}");
    assert!(created.contains("shown this once"), "{created}");
    let id = &token[4..16];

    let listed = f.ok(&["token", "list"]).await;
    let row = listed
        .lines()
        .find(|line| line.starts_with(id))
        .unwrap_or_else(|| panic!("{id} not listed:\n{listed}"));
    assert!(
        row.contains("phone")
            && row.contains("alice")
            && row.contains("read write")
            && row.contains("active"),
        "{row}"
    );
    assert!(!listed.contains(&token[17..]), "the secret must never be listed:\n{listed}");

    let url = f.url();
    let as_alice = ["twin", "list", "--server", url.as_str(), "--token", token.as_str()];
    assert!(doppel(&as_alice).await.success);
    assert_eq!(
        f.ok(&["token", "revoke", id]).await,
        format!("revoked token {id}: it no longer authenticates\n")
    );
    let refused = doppel(&as_alice).await;
    assert!(!refused.success);
    // Every 401 reads the same, so a client cannot tell a revoked token
    // from an unknown one.
    assert!(
        refused.stderr.contains("401") && refused.stderr.contains("authentication required"),
        "{}",
        refused.stderr
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_command_without_a_credential_is_told_how_to_send_one() {
    let f = Fixture::start().await;
    let url = f.url();
    let output = doppel(&["twin", "list", "--server", &url]).await;
    assert!(!output.success);
    assert!(output.stderr.contains("401"), "{}", output.stderr);
    assert!(output.stderr.contains("--token") && output.stderr.contains("DOPPEL_TOKEN"), "{}", output.stderr);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_refuses_to_expose_an_unauthenticated_server_without_insecure() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let listen = format!("0.0.0.0:{}", free_port());
    let output = doppel(&["serve", "--no-auth", "--listen", &listen, "--data", path_str(&data)]).await;
    assert!(!output.success, "serve must refuse:\n{}", output.stderr);
    assert!(output.stderr.contains(&listen) && output.stderr.contains("--insecure"), "{}", output.stderr);
    assert!(!data.exists(), "nothing is opened before the refusal");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twin_share_lets_a_coach_read_heart_rate_until_unshared() {
    let f = Fixture::start().await;
    let csv = f.file("day.csv", b"time,twin,signal,value\n2024-03-01T12:00:00Z,alice,heart_rate,62\n");
    f.ok(&["import", path_str(&csv)]).await;
    let created =
        f.ok(&["token", "create", "--name", "coach-laptop", "--user", "coach", "--scopes", "read"]).await;
    let coach = created.lines().next().expect("the token").to_owned();
    let url = f.url();
    let mut read =
        vec!["query", "alice", "heart_rate", "--format", "csv", "--server", url.as_str(), "--token", &coach];
    read.extend(DAY);

    let refused = doppel(&read).await;
    assert!(!refused.success && refused.stderr.contains("404"), "{}", refused.stderr);

    let shared = f
        .ok(&[
            "twin",
            "share",
            "alice",
            "--with",
            "user:coach",
            "--resource",
            "signals:heart_rate",
            "--ttl",
            "90d",
        ])
        .await;
    assert!(
        shared.starts_with("grant 1 on twin alice: user:coach may read signals:heart_rate until 20"),
        "{shared}"
    );
    let allowed = doppel(&read).await;
    assert!(allowed.success, "{}", allowed.stderr);
    assert_eq!(allowed.stdout, "time,value\n2024-03-01T12:00:00Z,62\n");
    let grants = f.ok(&["twin", "grants", "alice"]).await;
    assert!(grants.starts_with("twin alice  owner nobody"), "{grants}");
    assert!(grants.contains("user:coach") && grants.contains("signals:heart_rate"), "{grants}");

    assert_eq!(f.ok(&["twin", "unshare", "alice", "1"]).await, "revoked grant 1 on twin alice\n");
    let refused = doppel(&read).await;
    assert!(!refused.success && refused.stderr.contains("404"), "{}", refused.stderr);
}

/// Every file under `dir`, recursively.
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).expect("read_dir") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            out.extend(files_under(&path));
        } else {
            out.push(path);
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_served_data_directory_holds_no_twin_id_property_device_or_token_owner_in_plaintext() {
    let f = Fixture::start().await;
    f.ok(&["twin", "create", "patient-5e1f0c", "-p", "diagnosis=rare-condition-xq"]).await;
    let lines = "glucose,twin=patient-5e1f0c,device=cgm-SN4411 value=141.25 1709251200000000000\n\
                 glucose,twin=patient-5e1f0c,device=cgm-SN4411 value=152.75 1709251500000000000\n";
    let file = f.file("points.lp", lines.as_bytes());
    f.ok(&["import", path_str(&file)]).await;
    f.ok(&["token", "create", "--name", "phone-of-someone", "--user", "user-ab12cd"]).await;
    let mut query = vec!["query", "patient-5e1f0c", "glucose", "--format", "csv"];
    query.extend(DAY);
    let shown = f.ok(&query).await;
    assert!(shown.contains("141.25") && shown.contains("152.75"), "{shown}");

    let data = f.dir.path().join("data");
    let keyring = f.dir.path().join("data.keys");
    assert!(keyring.is_dir(), "the keyring lives beside the data directory, not in it");
    assert!(
        !data.join("privacy").join("pseudonym.key").exists(),
        "the pseudonym secret is derived from the keyring"
    );
    let needles: [&[u8]; 6] = [
        b"patient-5e1f0c",
        b"rare-condition-xq",
        b"cgm-SN4411",
        b"user-ab12cd",
        b"phone-of-someone",
        b"152.75",
    ];
    let files = files_under(&data);
    assert!(files.iter().any(|p| p.extension().is_some_and(|e| e == "wal")), "no WAL file in {files:?}");
    for path in files {
        let bytes = std::fs::read(&path).expect("read data file");
        for needle in needles {
            let found = bytes.windows(needle.len()).any(|w| w == needle);
            assert!(!found, "{} is in plaintext in {}", String::from_utf8_lossy(needle), path.display());
        }
        let value = 152.75f64.to_le_bytes();
        assert!(!bytes.windows(8).any(|w| w == value), "a value's bytes are in {}", path.display());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_list_shows_what_was_done_and_verify_vouches_for_the_chain_until_tampered() {
    let mut f = Fixture::start().await;
    f.ok(&["twin", "create", "alice"]).await;
    f.ok(&["twin", "share", "alice", "--with", "user:coach", "--resource", "signals:heart_rate"]).await;
    let listed = f.ok(&["audit", "list", "--twin", "alice", "--format", "csv"]).await;
    let rows: Vec<Vec<&str>> = listed.lines().skip(1).map(|line| line.split(',').collect()).collect();
    let summary: Vec<(&str, &str, &str)> = rows.iter().map(|row| (row[3], row[4], row[7])).collect();
    assert_eq!(summary, [("create", "alice", "201"), ("share", "alice", "201")], "{listed}");
    assert!(rows[0][2].starts_with("user admin (token "), "{listed}");

    let status = f.server.terminate();
    assert!(status.success(), "{}", f.server.log_tail());
    let data = f.dir.path().join("data");
    let data_arg = path_str(&data);
    let verified = doppel(&["audit", "verify", "--data", data_arg]).await;
    assert!(verified.success, "{}", verified.stderr);
    let audit_dir = data.join("audit");
    assert!(
        verified.stdout.starts_with(&format!(
            "audit log OK: 3 records in 1 file ({})\nhead: record 3 sha256 ",
            audit_dir.display()
        )),
        "{}",
        verified.stdout
    );

    // One byte of the second record changed: verification names the file
    // and the record, and fails.
    let file =
        std::fs::read_dir(&audit_dir).expect("audit dir").next().expect("a file").expect("entry").path();
    let mut bytes = std::fs::read(&file).expect("read");
    let first_length = u32::from_le_bytes(bytes[49..53].try_into().expect("4 bytes")) as usize;
    let second = 49 + 4 + first_length + 32;
    bytes[second + 4 + 30] ^= 0x20;
    std::fs::write(&file, bytes).expect("write");
    let broken = doppel(&["audit", "verify", "--data", data_arg]).await;
    assert!(!broken.success);
    assert!(
        broken.stderr.contains("broken at record 2") && broken.stderr.contains(path_str(&file)),
        "{}",
        broken.stderr
    );

    let missing = doppel(&["audit", "verify", "--data", path_str(&f.dir.path().join("nowhere"))]).await;
    assert!(!missing.success);
    assert!(missing.stderr.contains("holds no audit log"), "{}", missing.stderr);
}

#[test]
fn switch_variables_accept_the_usual_spellings_of_yes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let missing = dir.path().join("nowhere");
    for value in ["1", "true", "yes", "on"] {
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_doppel"))
            .args(["compact", "--data", path_str(&missing)])
            .env("DOPPEL_NO_ENCRYPTION", value)
            .output()
            .expect("run doppel");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains("is not a data directory"), "DOPPEL_NO_ENCRYPTION={value}: {stderr}");
    }
}
