//! The hub with blobs on disk: uploads, reads, corruption, persistence, publishing rules,
//! listing and version resolution.

mod common;

use std::{
    convert::Infallible,
    path::Path,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use bytes::Bytes;
use common::*;
use futures::{StreamExt, stream};
use vouch_hub::{Hub, HubConfig, HubError, ListQuery};
use vouch_types::{ModelId, Nonce, publish::SignedManifest, receipt::Signature65};

async fn open(dir: &Path) -> Hub {
    Hub::open(HubConfig::new(dir)).await.expect("open hub")
}

fn code<T: std::fmt::Debug>(r: Result<T, HubError>) -> &'static str {
    r.expect_err("should fail").code()
}

fn files_in(dir: &Path) -> Vec<String> {
    match std::fs::read_dir(dir) {
        Ok(rd) => rd
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect(),
        Err(_) => vec![],
    }
}

fn blob_path(dir: &Path, id: &ModelId) -> std::path::PathBuf {
    dir.join("blobs/sha256").join(hex::encode(id.digest()))
}

/// The node runs these futures in axum handlers, which must be `Send`: checked at compile time.
#[allow(dead_code)]
fn hub_and_its_futures_are_send(hub: Hub, id: ModelId, signed: SignedManifest) {
    fn send<T: Send + Sync>(_: &T) {}
    fn send_future<T: Send>(_: T) {}
    send(&hub);
    send_future(hub.put_model(body(b"", 1)));
    send_future(hub.model(&id));
    send_future(hub.model_bytes(&id));
    send_future(hub.model_stream(&id));
    send_future(hub.publish(signed, NOW));
    send_future(hub.list(&ListQuery::default()));
    send_future(hub.repo("a/b"));
    send_future(hub.resolve("a/b", None));
}

#[tokio::test]
async fn leftovers_in_tmp_are_removed_at_open() {
    let dir = tempfile::tempdir().unwrap();
    drop(open(dir.path()).await);
    std::fs::write(dir.path().join("tmp/upload-crashed"), b"partial").unwrap();
    std::fs::create_dir(dir.path().join("tmp/odd")).unwrap();
    let _hub = open(dir.path()).await;
    assert!(files_in(&dir.path().join("tmp")).is_empty());
}

#[tokio::test]
async fn uploads_are_scanned_stored_by_content_and_read_back() {
    let dir = tempfile::tempdir().unwrap();
    let hub = open(dir.path()).await;
    for name in ["iris_mlp.onnx", "mlp_784.onnx", "mnist_cnn.onnx"] {
        let bytes = fixture(name);
        let stored = hub.put_model(body(&bytes, 1000)).await.unwrap();
        let id = ModelId::of_bytes(&bytes);
        assert_eq!(stored.record.id, id, "{name}");
        assert!(!stored.existed);
        assert_eq!(stored.record.size, bytes.len() as u64);
        assert!(!stored.record.summary.inputs.is_empty());
        assert_eq!(std::fs::read(blob_path(dir.path(), &id)).unwrap(), bytes);

        assert_eq!(hub.model(&id).await.unwrap(), stored.record);
        assert_eq!(hub.model_bytes(&id).await.unwrap(), bytes);
        let (size, stream) = hub.model_stream(&id).await.unwrap();
        assert_eq!(size, bytes.len() as u64);
        assert_eq!(collect(stream).await.unwrap(), bytes);
    }
    assert!(files_in(&dir.path().join("tmp")).is_empty());
    let unknown = ModelId::of_bytes(b"unknown");
    assert_eq!(code(hub.model(&unknown).await), "not_found");
    assert_eq!(code(hub.model_bytes(&unknown).await), "not_found");
    assert_eq!(
        code(hub.model_stream(&unknown).await.map(|_| ())),
        "not_found"
    );
}

#[tokio::test]
async fn uploading_the_same_bytes_again_says_it_existed() {
    let dir = tempfile::tempdir().unwrap();
    let hub = open(dir.path()).await;
    let bytes = fixture("iris_mlp.onnx");
    let first = upload(&hub, &bytes).await;
    let again = hub.put_model(body(&bytes, 7)).await.unwrap();
    assert!(again.existed);
    assert_eq!(again.record, first.record);
    assert!(files_in(&dir.path().join("tmp")).is_empty());
}

#[tokio::test]
async fn concurrent_uploads_of_the_same_bytes_are_safe() {
    let dir = tempfile::tempdir().unwrap();
    let hub = open(dir.path()).await;
    let bytes = Arc::new(sized_model(300_000, 3));
    let tasks: Vec<_> = (0..8)
        .map(|i| {
            let (hub, bytes) = (hub.clone(), Arc::clone(&bytes));
            tokio::spawn(async move { hub.put_model(body(&bytes, 1000 + i * 37)).await })
        })
        .collect();
    let mut fresh = 0;
    for t in tasks {
        let stored = t.await.unwrap().unwrap();
        fresh += usize::from(!stored.existed);
    }
    assert_eq!(fresh, 1, "exactly one upload stores the model");
    let id = ModelId::of_bytes(&bytes);
    assert_eq!(hub.model_bytes(&id).await.unwrap(), bytes.as_slice());
    assert!(files_in(&dir.path().join("tmp")).is_empty());
}

#[tokio::test]
async fn uploads_past_the_limit_stop_at_the_limit() {
    let dir = tempfile::tempdir().unwrap();
    let model = sized_model(2000, 1);
    let mut config = HubConfig::new(dir.path());
    config.max_model_bytes = model.len() as u64;
    let hub = Hub::open(config).await.unwrap();
    // Exactly at the limit is fine.
    upload(&hub, &model).await;

    // An endless body: the hub must stop pulling chunks once past the limit.
    let pulled = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&pulled);
    let endless = stream::repeat_with(move || {
        counter.fetch_add(1, Ordering::SeqCst);
        Ok::<_, Infallible>(Bytes::from_static(&[0u8; 100]))
    });
    let err = hub.put_model(endless).await.unwrap_err();
    assert_eq!(err.code(), "too_large");
    assert_eq!(err.http_status(), 413);
    let limit_chunks = model.len().div_ceil(100);
    assert!(pulled.load(Ordering::SeqCst) <= limit_chunks + 1);
    assert!(files_in(&dir.path().join("tmp")).is_empty());
}

#[tokio::test]
async fn refused_and_broken_uploads_leave_nothing_behind() {
    let dir = tempfile::tempdir().unwrap();
    let hub = open(dir.path()).await;

    let err = hub
        .put_model(body(b"definitely not a model", 5))
        .await
        .unwrap_err();
    assert_eq!((err.code(), err.http_status()), ("not_onnx", 422));
    assert_eq!(code(hub.put_model(body(&[], 1)).await), "not_onnx");
    let mut truncated = fixture("mnist_cnn.onnx");
    truncated.truncate(truncated.len() / 2);
    assert_eq!(code(hub.put_model(body(&truncated, 999)).await), "not_onnx");

    // The client's stream fails half-way.
    let broken = stream::iter(vec![
        Ok(Bytes::from_static(b"abc")),
        Err(std::io::Error::other("connection reset")),
    ]);
    let err = hub.put_model(broken).await.unwrap_err();
    assert_eq!(err.code(), "upload_interrupted");
    assert!(err.to_string().contains("connection reset"));

    // The caller gives up mid-upload (its future is dropped).
    let stalled = stream::iter(vec![Ok::<_, Infallible>(Bytes::from_static(b"abc"))])
        .chain(stream::pending());
    let gave_up =
        tokio::time::timeout(Duration::from_millis(200), hub.put_model(Box::pin(stalled))).await;
    assert!(gave_up.is_err());

    assert!(files_in(&dir.path().join("tmp")).is_empty());
    assert!(files_in(&dir.path().join("blobs/sha256")).is_empty());
}

#[tokio::test]
async fn corrupted_blobs_are_errors_never_served() {
    let dir = tempfile::tempdir().unwrap();
    let hub = open(dir.path()).await;
    let bytes = fixture("mnist_cnn.onnx");
    let id = upload(&hub, &bytes).await.record.id;
    let path = blob_path(dir.path(), &id);

    // One flipped bit, same size.
    let mut bad = bytes.clone();
    bad[bytes.len() / 2] ^= 1;
    std::fs::write(&path, &bad).unwrap();
    let err = hub.model_bytes(&id).await.unwrap_err();
    assert_eq!((err.code(), err.http_status()), ("corrupt_blob", 500));
    let (_, stream) = hub.model_stream(&id).await.unwrap();
    assert_eq!(collect(stream).await.unwrap_err().code(), "corrupt_blob");

    // Shorter and longer.
    std::fs::write(&path, &bytes[..100]).unwrap();
    assert_eq!(code(hub.model_bytes(&id).await), "corrupt_blob");
    std::fs::write(&path, [&bytes[..], b"x"].concat()).unwrap();
    assert_eq!(code(hub.model_bytes(&id).await), "corrupt_blob");

    // Missing.
    std::fs::remove_file(&path).unwrap();
    assert_eq!(
        code(hub.model_stream(&id).await.map(|_| ())),
        "corrupt_blob"
    );

    // Uploading the bytes again repairs it.
    assert!(upload(&hub, &bytes).await.existed);
    assert_eq!(hub.model_bytes(&id).await.unwrap(), bytes);
}

#[tokio::test]
async fn everything_persists_across_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let (k1, k2) = (key(1), key(2));
    let bytes = fixture("iris_mlp.onnx");
    let (stored, version, nonce) = {
        let hub = open(dir.path()).await;
        let stored = upload(&hub, &bytes).await;
        let m = manifest("acme/iris", "1.0.0", stored.record.id, &k1);
        let nonce = m.nonce;
        let version = hub.publish(sign(m, &k1), NOW).await.unwrap();
        (stored, version, nonce)
    };
    let hub = open(dir.path()).await;
    let id = stored.record.id;
    assert_eq!(hub.model(&id).await.unwrap(), stored.record);
    assert_eq!(hub.model_bytes(&id).await.unwrap(), bytes);
    assert_eq!(hub.resolve("acme/iris", None).await.unwrap(), version);
    assert_eq!(hub.repo("acme/iris").await.unwrap().latest, version);
    assert_eq!(hub.list(&ListQuery::default()).await.unwrap().len(), 1);
    // Ownership and nonces survive too.
    let other = sign(manifest("acme/other", "1.0.0", id, &k2), &k2);
    assert_eq!(code(hub.publish(other, NOW).await), "not_owner");
    let mut replay = manifest("acme/iris", "1.0.1", id, &k1);
    replay.nonce = nonce;
    assert_eq!(code(hub.publish(sign(replay, &k1), NOW).await), "replayed");
}

#[tokio::test]
async fn one_hub_per_data_dir() {
    let dir = tempfile::tempdir().unwrap();
    let hub = open(dir.path()).await;
    let err = Hub::open(HubConfig::new(dir.path())).await.err().unwrap();
    assert_eq!(err.code(), "config");
    drop(hub);
    open(dir.path()).await;
}

#[tokio::test]
async fn publishing_rules() {
    let dir = tempfile::tempdir().unwrap();
    let hub = open(dir.path()).await;
    let (alice, bob) = (key(1), key(2));
    let model = upload(&hub, &fixture("iris_mlp.onnx")).await.record.id;

    // Accepted, and verifiable offline from the record alone.
    let first = sign(manifest("acme/iris", "1.0.0", model, &alice), &alice);
    let v = hub.publish(first.clone(), NOW).await.unwrap();
    assert_eq!(
        (v.name.as_str(), v.version.as_str(), v.model, v.publisher),
        ("acme/iris", "1.0.0", model, address(&alice))
    );
    assert_eq!(v.published_at, NOW);
    assert_eq!(v.manifest, first);
    v.manifest.verify().unwrap();

    // The identical signed manifest again: the same answer, even after the window.
    assert_eq!(hub.publish(first.clone(), NOW + 10_000).await.unwrap(), v);

    // Wrong signer: signed by alice, claims bob.
    let mut forged = sign(manifest("acme/iris", "1.0.1", model, &alice), &alice);
    forged.manifest.publisher = address(&bob);
    assert_eq!(code(hub.publish(forged, NOW).await), "bad_signature");
    // Tampered after signing.
    let mut tampered = sign(manifest("acme/iris", "1.0.1", model, &alice), &alice);
    tampered.manifest.description.push('!');
    let err = hub.publish(tampered, NOW).await.unwrap_err();
    assert_eq!((err.code(), err.http_status()), ("bad_signature", 401));

    // Timestamps: the window is inclusive.
    for (ts, ok) in [
        (NOW - 300, true),
        (NOW + 300, true),
        (NOW - 301, false),
        (NOW + 301, false),
    ] {
        let mut m = manifest("acme/clock", &format!("1.0.{}", ts % 1000), model, &alice);
        m.timestamp = ts;
        let r = hub.publish(sign(m, &alice), NOW).await;
        if ok {
            r.unwrap();
        } else {
            assert_eq!(code(r), "stale_timestamp", "{ts}");
        }
    }

    // Replay: an accepted nonce under another manifest.
    let mut replay = manifest("acme/iris", "1.0.2", model, &alice);
    replay.nonce = first.manifest.nonce;
    assert_eq!(
        code(hub.publish(sign(replay, &alice), NOW).await),
        "replayed"
    );

    // A model the hub doesn't hold; a refused manifest doesn't use up its nonce.
    let later_bytes = fixture("mlp_784.onnx");
    let later = ModelId::of_bytes(&later_bytes);
    let pending = sign(manifest("acme/mlp", "0.1.0", later, &alice), &alice);
    let err = hub.publish(pending.clone(), NOW).await.unwrap_err();
    assert_eq!((err.code(), err.http_status()), ("unknown_model", 422));
    upload(&hub, &later_bytes).await;
    hub.publish(pending, NOW).await.unwrap();

    // Namespaces: acme is alice's; bob claims his own.
    let intruder = sign(manifest("acme/iris", "9.0.0", model, &bob), &bob);
    let err = hub.publish(intruder, NOW).await.unwrap_err();
    assert_eq!((err.code(), err.http_status()), ("not_owner", 403));
    hub.publish(sign(manifest("bob/iris", "1.0.0", model, &bob), &bob), NOW)
        .await
        .unwrap();

    // Versions are immutable.
    let again = sign(manifest("acme/iris", "1.0.0", model, &alice), &alice);
    let err = hub.publish(again, NOW).await.unwrap_err();
    assert_eq!((err.code(), err.http_status()), ("version_exists", 409));

    // Invalid names and versions, signed without the client-side checks.
    for (name, version) in [
        ("Acme/iris", "1.0.0"),
        ("acme", "1.0.0"),
        ("acme/iris", "1.0"),
        ("acme/iris", "v1.0.0"),
        ("acme/iris", "1.0.0-01"),
    ] {
        let m = manifest(name, version, model, &alice);
        let signature = Signature65::sign_prehash(&alice, &m.signing_hash()).unwrap();
        let signed = SignedManifest {
            manifest: m,
            signature,
        };
        let err = hub.publish(signed, NOW).await.unwrap_err();
        assert_eq!(err.code(), "invalid_manifest", "{name}@{version}: {err}");
    }
}

async fn publish(hub: &Hub, name: &str, version: &str, tags: &[&str], task: &str, desc: &str) {
    let owner = name.split('/').next().unwrap();
    let k = key(owner.len() as u8 + owner.as_bytes()[0]);
    let model = upload(hub, &sized_model(64, version.len() as u8))
        .await
        .record
        .id;
    let mut m = manifest(name, version, model, &k);
    m.tags = tags.iter().map(|t| t.to_string()).collect();
    m.task = task.into();
    m.description = desc.into();
    m.nonce = Nonce(rand::random());
    hub.publish(sign(m, &k), NOW).await.unwrap();
}

fn names(list: &[vouch_hub::RepoSummary]) -> Vec<&str> {
    list.iter().map(|r| r.name.as_str()).collect()
}

#[tokio::test]
async fn listing_filters_pages_and_bounds() {
    let dir = tempfile::tempdir().unwrap();
    let hub = open(dir.path()).await;
    publish(
        &hub,
        "acme/iris",
        "1.0.0",
        &["tabular", "old"],
        "classification",
        "Iris MLP",
    )
    .await;
    publish(
        &hub,
        "acme/iris",
        "1.1.0",
        &["tabular"],
        "classification",
        "Iris MLP, better",
    )
    .await;
    publish(
        &hub,
        "acme/mnist",
        "1.0.0",
        &["vision"],
        "classification",
        "Digits CNN",
    )
    .await;
    publish(
        &hub,
        "zed/resnet",
        "0.1.0",
        &["vision"],
        "image-classification",
        "ResNet",
    )
    .await;
    publish(
        &hub,
        "zed/tiny-llm",
        "0.0.1",
        &["text"],
        "generation",
        "A tiny LM",
    )
    .await;

    let q = |f: fn(&mut ListQuery)| {
        let mut q = ListQuery::default();
        f(&mut q);
        q
    };
    let all = hub.list(&ListQuery::default()).await.unwrap();
    assert_eq!(
        names(&all),
        ["acme/iris", "acme/mnist", "zed/resnet", "zed/tiny-llm"]
    );
    let iris = &all[0];
    assert_eq!(
        (
            iris.latest_version.as_str(),
            iris.version_count,
            iris.description.as_str()
        ),
        ("1.1.0", 2, "Iris MLP, better")
    );

    let text = hub
        .list(&q(|q| q.text = Some("DIGITS".into())))
        .await
        .unwrap();
    assert_eq!(names(&text), ["acme/mnist"]);
    let text = hub.list(&q(|q| q.text = Some("res".into()))).await.unwrap();
    assert_eq!(names(&text), ["zed/resnet"]);
    let tag = hub
        .list(&q(|q| q.tag = Some("vision".into())))
        .await
        .unwrap();
    assert_eq!(names(&tag), ["acme/mnist", "zed/resnet"]);
    // Only the latest version's tags count.
    assert!(
        hub.list(&q(|q| q.tag = Some("old".into())))
            .await
            .unwrap()
            .is_empty()
    );
    let task = hub
        .list(&q(|q| q.task = Some("classification".into())))
        .await
        .unwrap();
    assert_eq!(names(&task), ["acme/iris", "acme/mnist"]);
    let owner = hub
        .list(&q(|q| q.owner = Some("zed".into())))
        .await
        .unwrap();
    assert_eq!(names(&owner), ["zed/resnet", "zed/tiny-llm"]);
    let both = q(|q| {
        q.owner = Some("zed".into());
        q.tag = Some("vision".into());
    });
    assert_eq!(names(&hub.list(&both).await.unwrap()), ["zed/resnet"]);

    let page = |limit, offset| ListQuery {
        limit: Some(limit),
        offset,
        ..ListQuery::default()
    };
    assert_eq!(
        names(&hub.list(&page(2, 0)).await.unwrap()),
        ["acme/iris", "acme/mnist"]
    );
    assert_eq!(
        names(&hub.list(&page(2, 2)).await.unwrap()),
        ["zed/resnet", "zed/tiny-llm"]
    );
    assert!(hub.list(&page(2, 4)).await.unwrap().is_empty());
    hub.list(&page(100, 0)).await.unwrap();

    for bad in [
        page(0, 0),
        page(101, 0),
        page(10, 100_001),
        q(|q| q.text = Some("x".repeat(129))),
        q(|q| q.tag = Some(String::new())),
    ] {
        let err = hub.list(&bad).await.unwrap_err();
        assert_eq!((err.code(), err.http_status()), ("invalid_argument", 400));
    }
}

#[tokio::test]
async fn latest_is_the_highest_release_by_semver() {
    let dir = tempfile::tempdir().unwrap();
    let hub = open(dir.path()).await;
    for v in ["1.0.0", "1.10.0", "1.2.0", "2.0.0-rc.1", "0.9.0"] {
        publish(&hub, "acme/m", v, &[], "t", "d").await;
    }
    assert_eq!(hub.resolve("acme/m", None).await.unwrap().version, "1.10.0");
    assert_eq!(
        hub.resolve("acme/m", Some("1.2.0")).await.unwrap().version,
        "1.2.0"
    );
    let repo = hub.repo("acme/m").await.unwrap();
    assert_eq!(repo.latest.version, "1.10.0");
    assert_eq!(repo.owner, "acme");
    let order: Vec<_> = repo.versions.iter().map(|v| v.version.as_str()).collect();
    assert_eq!(order, ["2.0.0-rc.1", "1.10.0", "1.2.0", "1.0.0", "0.9.0"]);

    // Only pre-releases: the highest of them.
    for v in ["1.0.0-alpha", "1.0.0-beta.2", "1.0.0-beta.11"] {
        publish(&hub, "acme/pre", v, &[], "t", "d").await;
    }
    assert_eq!(
        hub.resolve("acme/pre", None).await.unwrap().version,
        "1.0.0-beta.11"
    );

    assert_eq!(
        code(hub.resolve("acme/m", Some("3.0.0")).await),
        "not_found"
    );
    assert_eq!(code(hub.resolve("acme/none", None).await), "not_found");
    assert_eq!(code(hub.repo("acme/none").await), "not_found");
    assert_eq!(
        code(hub.resolve("acme/m", Some("latest")).await),
        "invalid_argument"
    );
    assert_eq!(code(hub.repo("NotAName").await), "invalid_argument");
}

#[tokio::test]
async fn records_serialize_for_clients() {
    let dir = tempfile::tempdir().unwrap();
    let hub = open(dir.path()).await;
    let alice = key(1);
    let stored = upload(&hub, &fixture("mlp_784.onnx")).await;
    let json = serde_json::to_value(&stored).unwrap();
    assert_eq!(json["existed"], false);
    assert_eq!(json["id"], stored.record.id.to_string());
    assert_eq!(
        json["summary"]["inputs"][0]["shape"],
        serde_json::json!(["batch", 784])
    );
    assert_eq!(json["summary"]["inputs"][0]["elem_type"], "float32");

    let signed = sign(
        manifest("acme/mlp", "1.0.0", stored.record.id, &alice),
        &alice,
    );
    let v = hub.publish(signed, NOW).await.unwrap();
    let json = serde_json::to_value(&v).unwrap();
    assert_eq!(json["publisher"], address(&alice).to_checksum(None));
    assert_eq!(
        json["manifest"]["manifest"]["model"],
        stored.record.id.to_string()
    );
    let back: vouch_hub::VersionRecord = serde_json::from_value(json).unwrap();
    assert_eq!(back, v);
    back.manifest.verify().unwrap();
    let repo = hub.repo("acme/mlp").await.unwrap();
    let back: vouch_hub::RepoRecord =
        serde_json::from_str(&serde_json::to_string(&repo).unwrap()).unwrap();
    assert_eq!(back, repo);
}
