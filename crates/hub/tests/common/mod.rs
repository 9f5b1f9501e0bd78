//! Helpers shared by the integration tests: fixtures, upload bodies, keys and manifests.
#![allow(dead_code)] // each test binary uses a different subset

use std::{convert::Infallible, path::PathBuf};

use bytes::Bytes;
use futures::{Stream, StreamExt, stream};
use k256::ecdsa::SigningKey;
use vouch_hub::{Hub, StoredModel};
use vouch_types::{
    Address, ModelId, Nonce,
    publish::{PublishManifest, SignedManifest},
};

/// A fixed "now" for publishing tests.
pub const NOW: u64 = 1_800_000_000;

pub fn fixture(name: &str) -> Vec<u8> {
    let path: PathBuf = [
        env!("CARGO_MANIFEST_DIR"),
        "..",
        "..",
        "tests",
        "fixtures",
        "models",
        name,
    ]
    .iter()
    .collect();
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// An upload body: `bytes` in chunks of `chunk` bytes.
pub fn body(bytes: &[u8], chunk: usize) -> impl Stream<Item = Result<Bytes, Infallible>> + Unpin {
    let chunks: Vec<Result<Bytes, Infallible>> = bytes
        .chunks(chunk.max(1))
        .map(|c| Ok(Bytes::copy_from_slice(c)))
        .collect();
    stream::iter(chunks)
}

pub async fn upload(hub: &Hub, bytes: &[u8]) -> StoredModel {
    hub.put_model(body(bytes, 4096)).await.expect("upload")
}

fn put_varint(buf: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        buf.push((v as u8) | 0x80);
        v >>= 7;
    }
    buf.push(v as u8);
}

fn field(buf: &mut Vec<u8>, number: u64, payload: &[u8]) {
    put_varint(buf, (number << 3) | 2);
    put_varint(buf, payload.len() as u64);
    buf.extend_from_slice(payload);
}

/// A valid ONNX model (one Identity node) with a float initializer of `payload` bytes, so tests
/// can make models of any size; `salt` changes the bytes (and so the id).
pub fn sized_model(payload: usize, salt: u8) -> Vec<u8> {
    let mut init = Vec::new();
    put_varint(&mut init, 1 << 3); // dims
    put_varint(&mut init, (payload / 4) as u64);
    put_varint(&mut init, 2 << 3); // data_type float
    put_varint(&mut init, 1);
    field(&mut init, 8, b"w");
    field(&mut init, 9, &vec![salt; payload]);
    let mut node = Vec::new();
    field(&mut node, 1, b"x");
    field(&mut node, 2, b"y");
    field(&mut node, 4, b"Identity");
    let mut graph = Vec::new();
    field(&mut graph, 1, &node);
    field(&mut graph, 5, &init);
    let mut opset = Vec::new();
    put_varint(&mut opset, 2 << 3);
    put_varint(&mut opset, 17);
    let mut model = Vec::new();
    put_varint(&mut model, 1 << 3); // ir_version
    put_varint(&mut model, 8);
    field(&mut model, 7, &graph);
    field(&mut model, 8, &opset);
    model
}

pub fn key(n: u8) -> SigningKey {
    SigningKey::from_slice(&[n; 32]).expect("valid test key")
}

pub fn address(key: &SigningKey) -> Address {
    Address::from_private_key(key)
}

/// A manifest for `name@version` of `model`, signed by `key`, nonce derived from `nonce`.
pub fn manifest(name: &str, version: &str, model: ModelId, key: &SigningKey) -> PublishManifest {
    PublishManifest {
        name: name.into(),
        version: version.into(),
        model,
        description: format!("{name} for tests"),
        task: "classification".into(),
        license: "Apache-2.0".into(),
        tags: vec!["test".into()],
        publisher: address(key),
        timestamp: NOW,
        nonce: Nonce(rand::random()),
    }
}

pub fn sign(m: PublishManifest, key: &SigningKey) -> SignedManifest {
    m.sign(key).expect("sign")
}

/// Collects a download.
pub async fn collect<S, E>(mut s: S) -> Result<Vec<u8>, E>
where
    S: Stream<Item = Result<Bytes, E>> + Unpin,
{
    let mut out = Vec::new();
    while let Some(chunk) = s.next().await {
        out.extend_from_slice(&chunk?);
    }
    Ok(out)
}
