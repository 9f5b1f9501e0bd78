//! A small blocking client for a node's HTTP API, with timeouts on every call.

use std::{io::Read, time::Duration};

use serde_json::Value;

use crate::exit::{CliError, Exit, fail};

/// Longest a response body read into memory may be (JSON answers; downloads stream instead).
const MAX_JSON_RESPONSE: u64 = 64 << 20;

/// A node's API.
pub struct NodeClient {
    base: String,
    agent: ureq::Agent,
}

/// An error answer from the node: its HTTP status, stable code and message.
pub fn api_error(status: u16, body: &str) -> CliError {
    let v: Value = serde_json::from_str(body).unwrap_or(Value::Null);
    let code = v["error"]["code"].as_str().unwrap_or("unknown");
    let message = v["error"]["message"]
        .as_str()
        .map(str::to_owned)
        .unwrap_or_else(|| body.chars().take(300).collect());
    let exit = match (status, code) {
        (404, _) => Exit::InvalidInput,
        (400 | 413 | 422, _) => Exit::InvalidInput,
        (401 | 403, _) => Exit::Key,
        _ => Exit::Io,
    };
    fail(
        exit,
        format!("the node answered {status} {code}: {message}"),
    )
}

impl NodeClient {
    /// A client for `base` (e.g. `http://127.0.0.1:8080`). `timeout` bounds each whole call.
    pub fn new(base: &str, timeout: Duration) -> NodeClient {
        let config = ureq::Agent::config_builder()
            .timeout_connect(Some(Duration::from_secs(10)))
            .timeout_global(Some(timeout))
            .http_status_as_error(false)
            .build();
        NodeClient {
            base: base.trim_end_matches('/').to_string(),
            agent: config.into(),
        }
    }

    /// The full URL of a path.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    fn transport(&self, e: ureq::Error) -> CliError {
        fail(
            Exit::Io,
            format!("cannot reach the node at {}: {e}", self.base),
        )
    }

    fn json_response(&self, r: ureq::http::Response<ureq::Body>) -> Result<Value, CliError> {
        let status = r.status().as_u16();
        let mut body = String::new();
        r.into_body()
            .into_reader()
            .take(MAX_JSON_RESPONSE)
            .read_to_string(&mut body)
            .map_err(|e| fail(Exit::Io, format!("reading the node's answer: {e}")))?;
        if !(200..300).contains(&status) {
            return Err(api_error(status, &body));
        }
        serde_json::from_str(&body)
            .map_err(|e| fail(Exit::Io, format!("the node's answer is not JSON: {e}")))
    }

    /// `GET path`, JSON answer.
    pub fn get_json(&self, path: &str) -> Result<Value, CliError> {
        let r = self
            .agent
            .get(&self.url(path))
            .call()
            .map_err(|e| self.transport(e))?;
        self.json_response(r)
    }

    /// `POST path` with a JSON body, JSON answer.
    pub fn post_json(&self, path: &str, body: &Value) -> Result<Value, CliError> {
        let r = self
            .agent
            .post(&self.url(path))
            .header("content-type", "application/json")
            .send(serde_json::to_vec(body).expect("JSON"))
            .map_err(|e| self.transport(e))?;
        self.json_response(r)
    }

    /// `PUT path` streaming `reader` of `len` bytes, with extra headers; JSON answer.
    pub fn put_stream(
        &self,
        path: &str,
        headers: &[(&str, String)],
        len: u64,
        reader: impl Read + Send,
    ) -> Result<Value, CliError> {
        let mut req = self
            .agent
            .put(&self.url(path))
            .header("content-type", "application/octet-stream")
            .header("content-length", len.to_string());
        for (k, v) in headers {
            req = req.header(*k, v);
        }
        let r = req
            .send(ureq::SendBody::from_reader(&mut { reader }))
            .map_err(|e| self.transport(e))?;
        self.json_response(r)
    }

    /// `GET path` as a byte stream: the response, checked to be a success.
    pub fn get_stream(&self, path: &str) -> Result<ureq::http::Response<ureq::Body>, CliError> {
        let r = self
            .agent
            .get(&self.url(path))
            .call()
            .map_err(|e| self.transport(e))?;
        let status = r.status().as_u16();
        if !(200..300).contains(&status) {
            let mut body = String::new();
            let _ = r
                .into_body()
                .into_reader()
                .take(1 << 16)
                .read_to_string(&mut body);
            return Err(api_error(status, &body));
        }
        Ok(r)
    }
}
