//! `vouch model push | ls | show | pull`: the node's model hub, from the command line.

use std::{
    fs,
    io::{Read, Write},
    path::PathBuf,
    time::Duration,
};

use base64::{Engine as _, engine::general_purpose::STANDARD as BASE64};
use clap::Args;
use serde_json::Value;
use vouch_types::{
    ModelId,
    hash::Sha256Stream,
    publish::{PublishManifest, SignedManifest},
};

use super::{infer::random_nonce, unix_now};
use crate::{
    KeyArgs,
    client::NodeClient,
    exit::{CliError, Exit, WithExit, fail},
    keys::{PasswordSource, default_key_path, load_keystore},
    print::json_out,
};

/// Where the node is.
#[derive(Args, Clone)]
pub struct NodeUrl {
    /// The node's base URL.
    #[arg(long, env = "VOUCH_NODE", default_value = "http://127.0.0.1:8080")]
    pub node: String,
    /// Longest a call to the node may take, in seconds.
    #[arg(long, default_value_t = 600)]
    pub timeout: u64,
}

impl NodeUrl {
    /// A client for it.
    pub fn client(&self) -> NodeClient {
        NodeClient::new(&self.node, Duration::from_secs(self.timeout))
    }
}

/// Arguments of `vouch model push`.
#[derive(Args)]
pub struct PushArgs {
    /// The ONNX file.
    file: PathBuf,
    /// Name, `owner/model` (the owner namespace belongs to the first key that publishes in it).
    #[arg(long)]
    name: String,
    /// Semantic version, e.g. 1.0.0.
    #[arg(long)]
    version: String,
    /// Description.
    #[arg(long, default_value = "")]
    description: String,
    /// Task, e.g. classification.
    #[arg(long, default_value = "")]
    task: String,
    /// SPDX licence expression.
    #[arg(long, default_value = "")]
    license: String,
    /// Tag (repeatable).
    #[arg(long = "tag")]
    tags: Vec<String>,
    #[command(flatten)]
    key: KeyArgs,
    #[command(flatten)]
    node: NodeUrl,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

/// Hashes a file in a streaming pass (the model may be larger than memory would like).
fn file_id(path: &std::path::Path) -> Result<(ModelId, u64), CliError> {
    let mut f =
        fs::File::open(path).exit_ctx(Exit::Io, || format!("opening {}", path.display()))?;
    let mut hasher = Sha256Stream::default();
    let mut buf = vec![0u8; 1 << 20];
    let mut total = 0u64;
    loop {
        let n = f
            .read(&mut buf)
            .exit_ctx(Exit::Io, || format!("reading {}", path.display()))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        total += n as u64;
    }
    Ok((ModelId::from_digest(hasher.finish()), total))
}

/// Reads the publisher's key (same keystore and password rules as the operator's).
fn publisher_key(k: &KeyArgs) -> Result<k256::ecdsa::SigningKey, CliError> {
    let path = k.key.clone().unwrap_or_else(default_key_path);
    let pw = PasswordSource {
        file: k.password_file.clone(),
        env: std::env::var("VOUCH_KEYSTORE_PASSWORD").ok(),
    }
    .read("Keystore password: ", false)?;
    load_keystore(&path, &pw)
}

/// Runs `vouch model push`.
pub fn push(a: PushArgs) -> Result<(), CliError> {
    let key = publisher_key(&a.key)?;
    let (id, size) = file_id(&a.file)?;
    // Refuse here what the node would refuse after the upload: a server that rejects a body
    // mid-stream can only close the connection, which reads as a broken pipe.
    let client = a.node.client();
    let limit = client.get_json("/healthz")?["limits"]["max_model_bytes"].as_u64();
    if let Some(max) = limit
        && size > max
    {
        return Err(fail(
            Exit::InvalidInput,
            format!(
                "{} is {size} bytes, over the node's {max}-byte upload limit (too_large)",
                a.file.display()
            ),
        ));
    }
    let manifest = PublishManifest {
        name: a.name.clone(),
        version: a.version.clone(),
        model: id,
        description: a.description,
        task: a.task,
        license: a.license,
        tags: a.tags,
        publisher: crate::keys::address(&key),
        timestamp: unix_now(),
        nonce: random_nonce(),
    };
    let signed = manifest.sign(&key).exit(Exit::InvalidInput)?;
    let header = BASE64.encode(serde_json::to_vec(&signed).expect("JSON"));
    let file =
        fs::File::open(&a.file).exit_ctx(Exit::Io, || format!("opening {}", a.file.display()))?;
    let bar = indicatif::ProgressBar::new(size);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{msg} {bar:40} {bytes}/{total_bytes} {bytes_per_sec} {eta}",
        )
        .expect("a valid template"),
    );
    bar.set_message(format!("uploading {}", a.file.display()));
    if a.json {
        bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    let answer = client.put_stream(
        &format!("/v1/models/{}/{}", a.name, a.version),
        &[(vouch_node::MANIFEST_HEADER, header)],
        size,
        bar.wrap_read(file),
    )?;
    bar.finish_and_clear();
    if a.json {
        json_out(&answer);
    } else {
        println!("published {}@{} = {id}", a.name, a.version);
        println!("publisher {}", signed.manifest.publisher.to_checksum(None));
    }
    Ok(())
}

/// Arguments of `vouch model ls`.
#[derive(Args)]
pub struct LsArgs {
    /// Text to find in names and descriptions.
    query: Option<String>,
    /// Only models with this tag.
    #[arg(long)]
    tag: Option<String>,
    /// Only models for this task.
    #[arg(long)]
    task: Option<String>,
    /// Only this owner's models.
    #[arg(long)]
    owner: Option<String>,
    /// Most results.
    #[arg(long, default_value_t = 50)]
    limit: u32,
    #[command(flatten)]
    node: NodeUrl,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

fn query_string(pairs: &[(&str, Option<String>)]) -> String {
    let parts: Vec<String> = pairs
        .iter()
        .filter_map(|(k, v)| v.as_ref().map(|v| format!("{k}={}", percent_encode(v))))
        .collect();
    if parts.is_empty() {
        String::new()
    } else {
        format!("?{}", parts.join("&"))
    }
}

/// Percent-encodes everything but unreserved characters (RFC 3986).
fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Runs `vouch model ls`.
pub fn ls(a: LsArgs) -> Result<(), CliError> {
    let q = query_string(&[
        ("q", a.query),
        ("tag", a.tag),
        ("task", a.task),
        ("owner", a.owner),
        ("limit", Some(a.limit.to_string())),
    ]);
    let answer = a.node.client().get_json(&format!("/v1/models{q}"))?;
    if a.json {
        json_out(&answer);
        return Ok(());
    }
    let models = answer["models"].as_array().cloned().unwrap_or_default();
    if models.is_empty() {
        println!("no models");
    }
    for m in models {
        println!(
            "{:<32} {:<12} {:<16} {}",
            m["name"].as_str().unwrap_or("?"),
            m["latest_version"]
                .as_str()
                .or(m["latest"].as_str())
                .unwrap_or("?"),
            m["task"].as_str().unwrap_or(""),
            m["description"].as_str().unwrap_or("")
        );
    }
    Ok(())
}

/// `owner/name[@version]` → (name, version or "latest").
fn split_ref(r: &str) -> (&str, &str) {
    r.split_once('@').unwrap_or((r, "latest"))
}

/// Fetches a version's record and checks its publisher's signature.
pub fn fetch_version(
    client: &NodeClient,
    reference: &str,
) -> Result<(Value, SignedManifest), CliError> {
    let (name, version) = split_ref(reference);
    vouch_types::publish::check_name(name).exit(Exit::InvalidInput)?;
    let answer = client.get_json(&format!("/v1/models/{name}/{version}"))?;
    let manifest: SignedManifest = serde_json::from_value(answer["version"]["manifest"].clone())
        .map_err(|e| {
            fail(
                Exit::VerificationFailed,
                format!("the node's version record has no valid manifest: {e}"),
            )
        })?;
    manifest.verify().map_err(|e| {
        fail(
            Exit::VerificationFailed,
            format!("publisher signature: {e}"),
        )
    })?;
    if manifest.manifest.name != name
        || (version != "latest" && manifest.manifest.version != version)
    {
        return Err(fail(
            Exit::VerificationFailed,
            format!(
                "asked for {reference}, the node answered with {}@{}",
                manifest.manifest.name, manifest.manifest.version
            ),
        ));
    }
    Ok((answer, manifest))
}

/// Arguments of `vouch model show`.
#[derive(Args)]
pub struct ShowArgs {
    /// `owner/name[@version]` (latest by default).
    reference: String,
    #[command(flatten)]
    node: NodeUrl,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

/// Runs `vouch model show`.
pub fn show(a: ShowArgs) -> Result<(), CliError> {
    let client = a.node.client();
    let (answer, signed) = fetch_version(&client, &a.reference)?;
    if a.json {
        json_out(&answer);
        return Ok(());
    }
    let m = &signed.manifest;
    println!("name        {}@{}", m.name, m.version);
    println!("model       {}", m.model);
    println!(
        "publisher   {} (signature checked)",
        m.publisher.to_checksum(None)
    );
    for (k, v) in [
        ("description", &m.description),
        ("task", &m.task),
        ("license", &m.license),
    ] {
        if !v.is_empty() {
            println!("{k:<11} {v}");
        }
    }
    if !m.tags.is_empty() {
        println!("tags        {}", m.tags.join(", "));
    }
    let summary = &answer["model"]["summary"];
    for (label, key) in [("inputs", "inputs"), ("outputs", "outputs")] {
        if let Some(list) = summary[key].as_array() {
            println!("{label}");
            for t in list {
                println!(
                    "  {:<20} {}",
                    t["name"].as_str().unwrap_or("?"),
                    signature(t)
                );
            }
        }
    }
    if let Some(size) = answer["model"]["size"].as_u64() {
        println!("size        {size} bytes");
    }
    Ok(())
}

fn signature(t: &Value) -> String {
    let dims: Vec<String> = t["shape"]
        .as_array()
        .map(|d| {
            d.iter()
                .map(|x| {
                    x.as_u64()
                        .map(|n| n.to_string())
                        .or(x.as_str().map(str::to_owned))
                        .unwrap_or("?".into())
                })
                .collect()
        })
        .unwrap_or_default();
    format!(
        "{}[{}]",
        t["elem_type"].as_str().unwrap_or("?"),
        dims.join(",")
    )
}

/// Arguments of `vouch model pull`.
#[derive(Args)]
pub struct PullArgs {
    /// `owner/name[@version]`, or a model id (`bafkrei…`).
    reference: String,
    /// Where to write the model [default: <name>-<version>.onnx or <id>.onnx].
    #[arg(short, long)]
    out: Option<PathBuf>,
    #[command(flatten)]
    node: NodeUrl,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

/// Runs `vouch model pull`: downloads, checks the bytes against the id, then moves into place.
pub fn pull(a: PullArgs) -> Result<(), CliError> {
    let client = a.node.client();
    let (id, default_name, manifest) = if a.reference.starts_with("baf") {
        let id: ModelId = a.reference.parse().exit(Exit::InvalidInput)?;
        (id, format!("{id}.onnx"), None)
    } else {
        let (_, signed) = fetch_version(&client, &a.reference)?;
        let m = &signed.manifest;
        (
            m.model,
            format!("{}-{}.onnx", m.name.replace('/', "_"), m.version),
            Some(signed),
        )
    };
    let out = a.out.unwrap_or_else(|| PathBuf::from(default_name));
    let response = client.get_stream(&format!("/v1/blobs/{id}"))?;
    let size = response
        .headers()
        .get("content-length")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok());
    let tmp = out.with_extension(format!("part-{}", std::process::id()));
    let result = (|| {
        let mut file =
            fs::File::create(&tmp).exit_ctx(Exit::Io, || format!("creating {}", tmp.display()))?;
        let bar = indicatif::ProgressBar::new(size.unwrap_or(0));
        if a.json {
            bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
        }
        let mut reader = bar.wrap_read(response.into_body().into_reader());
        let mut hasher = Sha256Stream::default();
        let mut buf = vec![0u8; 1 << 20];
        loop {
            let n = reader
                .read(&mut buf)
                .exit_ctx(Exit::Io, || "downloading".into())?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
            file.write_all(&buf[..n])
                .exit_ctx(Exit::Io, || format!("writing {}", tmp.display()))?;
        }
        file.sync_all()
            .exit_ctx(Exit::Io, || format!("writing {}", tmp.display()))?;
        bar.finish_and_clear();
        let got = ModelId::from_digest(hasher.finish());
        if got != id {
            return Err(fail(
                Exit::VerificationFailed,
                format!("the node sent bytes that hash to {got}, not {id}"),
            ));
        }
        fs::rename(&tmp, &out).exit_ctx(Exit::Io, || format!("writing {}", out.display()))
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result?;
    if a.json {
        json_out(
            &serde_json::json!({"model": id, "file": out.display().to_string(), "manifest": manifest}),
        );
    } else {
        println!(
            "pulled {id} -> {} (bytes checked against the id)",
            out.display()
        );
        if let Some(m) = manifest {
            println!(
                "published by {} (signature checked)",
                m.manifest.publisher.to_checksum(None)
            );
        }
    }
    Ok(())
}
