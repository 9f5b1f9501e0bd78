//! The hub with blobs in S3, against a real S3-compatible server: moto's `moto_server`, started
//! by the test on a free loopback port.
//!
//! Set `VOUCH_MOTO_SERVER` to the `moto_server` executable (`pip install "moto[server]"`);
//! without it the test is skipped with a message, unless `VOUCH_REQUIRE_S3=1`, which makes a
//! missing server a failure (CI). See docs/hub.md, "Running the S3 test".
#![cfg(feature = "s3")]

mod common;

use std::{
    io::{Read, Write},
    net::{TcpListener, TcpStream},
    path::Path,
    process::{Child, Command, Stdio},
    sync::Arc,
    time::{Duration, Instant},
};

use common::*;
use vouch_hub::{BlobConfig, Hub, HubConfig, HubError, S3Config};
use vouch_types::ModelId;

const BUCKET: &str = "vouch-hub-test";

/// A running moto server, killed when dropped.
struct Moto {
    child: Child,
    port: u16,
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What a raw HTTP request got back.
struct Response {
    status: u16,
    content_length: Option<u64>,
}

/// An `Authorization` header with a well-formed but meaningless signature: moto doesn't check
/// signatures (its IAM checks are off by default) but treats requests without one as anonymous,
/// which private objects refuse.
const FAKE_AUTH: &str = "AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/s3/aws4_request, \
                         SignedHeaders=host, Signature=00";

/// One HTTP/1.1 request, to set up the bucket and to inspect or damage objects behind the hub's
/// back.
fn request(port: u16, method: &str, path: &str, body: &[u8]) -> std::io::Result<Response> {
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: {}\r\n\
         Authorization: {FAKE_AUTH}\r\nConnection: close\r\n\r\n",
        body.len()
    )?;
    s.write_all(body)?;
    let mut response = Vec::new();
    s.read_to_end(&mut response)?;
    let text = String::from_utf8_lossy(&response);
    let head = text.split("\r\n\r\n").next().unwrap_or_default();
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| std::io::Error::other("no HTTP status line"))?;
    let content_length = head.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.eq_ignore_ascii_case("content-length")
            .then(|| v.trim().parse().ok())
            .flatten()
    });
    Ok(Response {
        status,
        content_length,
    })
}

fn http(port: u16, method: &str, path: &str) -> std::io::Result<u16> {
    request(port, method, path, b"").map(|r| r.status)
}

fn start_moto() -> Option<Moto> {
    let Some(exe) = std::env::var_os("VOUCH_MOTO_SERVER") else {
        if std::env::var("VOUCH_REQUIRE_S3").as_deref() == Ok("1") {
            panic!("VOUCH_REQUIRE_S3=1 but VOUCH_MOTO_SERVER is not set");
        }
        eprintln!(
            "skipping the S3 test: set VOUCH_MOTO_SERVER to a moto_server executable \
             (pip install \"moto[server]\"), see docs/hub.md"
        );
        return None;
    };
    // A port the OS picked; released just before moto binds it.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new(&exe)
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("starting {}: {e}", exe.to_string_lossy()));
    let mut moto = Moto { child, port };
    let deadline = Instant::now() + Duration::from_secs(60);
    while http(port, "GET", "/").is_err() {
        if let Some(status) = moto.child.try_wait().unwrap() {
            panic!("moto_server exited early: {status}");
        }
        assert!(Instant::now() < deadline, "moto_server not ready in 60 s");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(http(port, "PUT", &format!("/{BUCKET}")).unwrap(), 200);
    Some(moto)
}

fn s3_config(port: u16, prefix: &str) -> S3Config {
    S3Config {
        bucket: BUCKET.into(),
        endpoint: Some(format!("http://127.0.0.1:{port}")),
        region: "us-east-1".into(),
        access_key_id: "testing".into(),
        secret_access_key: "testing".into(),
        allow_http: true,
        prefix: prefix.into(),
    }
}

async fn open(dir: &Path, port: u16) -> Hub {
    let mut config = HubConfig::new(dir);
    config.blobs = BlobConfig::S3(s3_config(port, "vouch/test"));
    Hub::open(config).await.expect("open hub on S3")
}

fn code<T: std::fmt::Debug>(r: Result<T, HubError>) -> &'static str {
    r.expect_err("should fail").code()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_backend_against_moto() {
    let Some(moto) = start_moto() else { return };
    let port = moto.port;
    let dir = tempfile::tempdir().unwrap();
    // Where the hub must put a blob, under its prefix.
    let object = |id: &ModelId| {
        format!(
            "/{BUCKET}/vouch/test/blobs/sha256/{}",
            hex::encode(id.digest())
        )
    };
    let head = |id: &ModelId| request(port, "HEAD", &object(id), b"").unwrap();
    let put = |id: &ModelId, bytes: &[u8]| {
        assert_eq!(
            request(port, "PUT", &object(id), bytes).unwrap().status,
            200
        );
    };

    let hub = open(dir.path(), port).await;
    // Small models go up in one PUT, a 12 MiB one as a multipart upload.
    let big = sized_model(12 << 20, 9);
    let models = [
        fixture("iris_mlp.onnx"),
        fixture("mlp_784.onnx"),
        big.clone(),
    ];
    for bytes in &models {
        let stored = hub.put_model(body(bytes, 64 * 1024)).await.unwrap();
        let id = ModelId::of_bytes(bytes);
        assert_eq!(stored.record.id, id);
        assert!(!stored.existed);
        let stored_object = head(&id);
        assert_eq!(stored_object.status, 200);
        assert_eq!(stored_object.content_length, Some(bytes.len() as u64));
        assert_eq!(hub.model_bytes(&id).await.unwrap(), bytes.as_slice());
        let (size, stream) = hub.model_stream(&id).await.unwrap();
        assert_eq!(size, bytes.len() as u64);
        assert_eq!(collect(stream).await.unwrap(), *bytes);
        assert!(upload(&hub, bytes).await.existed);
    }
    assert!(
        std::fs::read_dir(dir.path().join("tmp"))
            .unwrap()
            .next()
            .is_none()
    );

    // Concurrent uploads of the same new bytes.
    let same = Arc::new(sized_model(9 << 20, 4));
    let tasks: Vec<_> = (0..4)
        .map(|_| {
            let (hub, bytes) = (hub.clone(), Arc::clone(&same));
            tokio::spawn(async move { hub.put_model(body(&bytes, 1 << 20)).await })
        })
        .collect();
    let mut fresh = 0;
    for t in tasks {
        fresh += usize::from(!t.await.unwrap().unwrap().existed);
    }
    assert_eq!(fresh, 1);
    let same_id = ModelId::of_bytes(&same);
    assert_eq!(hub.model_bytes(&same_id).await.unwrap(), same.as_slice());

    // Refused uploads put nothing in the bucket.
    assert_eq!(
        code(hub.put_model(body(b"not a model", 4)).await),
        "not_onnx"
    );
    let junk = ModelId::of_bytes(b"not a model");
    assert_eq!(head(&junk).status, 404);

    // Publishing works the same over S3 blobs.
    let alice = key(1);
    let iris = ModelId::of_bytes(&models[0]);
    let v = hub
        .publish(
            sign(manifest("acme/iris", "1.0.0", iris, &alice), &alice),
            NOW,
        )
        .await
        .unwrap();

    // Persistence: the catalog on disk, the blobs in the bucket.
    drop(hub);
    let hub = open(dir.path(), port).await;
    assert_eq!(hub.resolve("acme/iris", None).await.unwrap(), v);
    let big_id = ModelId::of_bytes(&big);
    assert_eq!(hub.model_bytes(&big_id).await.unwrap(), big.as_slice());

    // Corruption in the bucket is detected: other bytes of the same size, then of another
    // size, then a missing object.
    let mut bad = models[1].clone();
    bad[1000] ^= 0x40;
    let mlp = ModelId::of_bytes(&models[1]);
    put(&mlp, &bad);
    assert_eq!(code(hub.model_bytes(&mlp).await), "corrupt_blob");
    let (_, stream) = hub.model_stream(&mlp).await.unwrap();
    assert_eq!(collect(stream).await.unwrap_err().code(), "corrupt_blob");
    put(&mlp, b"short");
    assert_eq!(code(hub.model_bytes(&mlp).await), "corrupt_blob");
    assert_eq!(
        request(port, "DELETE", &object(&mlp), b"").unwrap().status,
        204
    );
    assert_eq!(code(hub.model_bytes(&mlp).await), "corrupt_blob");
    // Uploading the bytes again restores the object.
    assert!(upload(&hub, &models[1]).await.existed);
    assert_eq!(hub.model_bytes(&mlp).await.unwrap(), models[1]);

    // A prefix that could escape its folder is refused at open, and so is a missing bucket.
    drop(hub);
    let mut config = HubConfig::new(dir.path());
    config.blobs = BlobConfig::S3(s3_config(port, "../elsewhere"));
    assert_eq!(code(Hub::open(config).await.map(drop)), "config");
    let mut missing = s3_config(port, "");
    missing.bucket = "no-such-bucket".into();
    let mut config = HubConfig::new(dir.path());
    config.blobs = BlobConfig::S3(missing);
    assert_eq!(code(Hub::open(config).await.map(drop)), "storage");

    drop(moto);
}
