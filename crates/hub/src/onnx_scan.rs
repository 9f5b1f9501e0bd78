//! A streaming scanner for ONNX `ModelProto` files: checks that bytes are a model and extracts
//! a summary, without decoding tensors.
//!
//! A model file can be gigabytes of weights around a few kilobytes of structure. Decoding it with
//! a protobuf library would allocate every tensor; this scanner walks the protobuf wire format
//! over a [`BufRead`] + [`Seek`] source and skips tensor payloads (`raw_data`, `float_data`, …)
//! by seeking past them, so memory stays bounded by [`ScanLimits`] whatever the file's size.
//!
//! Field numbers are those of `onnx/onnx.proto` (IR version 11); unknown fields are skipped, as
//! protobuf requires, so newer files still scan. What is refused: bytes that are not a protobuf
//! message, a message without `ir_version` or `graph`, a known field with the wrong wire type,
//! tensors stored in external files (a model id must cover all its bytes, protocol.md §1), and
//! anything past a limit.

use std::{
    collections::{BTreeMap, HashSet},
    fs::File,
    io::{self, BufRead, BufReader, Cursor, Seek, SeekFrom},
    path::Path,
};

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest, Sha256};
use vouch_types::DType;

/// Bounds on what a scan may allocate or how deep it may recurse.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ScanLimits {
    /// Deepest nesting of graphs inside node attributes (`If`, `Loop`, `Scan` bodies).
    pub max_graph_depth: u32,
    /// Longest string kept (names, op types, domains, producer).
    pub max_string_bytes: u64,
    /// Most values listed as inputs or outputs of the main graph (before removing initializers).
    pub max_graph_values: usize,
    /// Most opset imports.
    pub max_opsets: usize,
    /// Most distinct `(domain, op_type)` pairs.
    pub max_distinct_ops: usize,
    /// Highest rank of a declared input or output shape.
    pub max_rank: usize,
    /// Most initializers across all graphs (their names are remembered, hashed).
    pub max_initializers: u64,
    /// Most bytes the summary may hold (names, shapes, operators), roughly as allocated:
    /// each bound above is per item, this one is for them all together.
    pub max_summary_bytes: usize,
}

impl Default for ScanLimits {
    fn default() -> Self {
        ScanLimits {
            max_graph_depth: 32,
            max_string_bytes: 4096,
            max_graph_values: 16_384,
            max_opsets: 256,
            max_distinct_ops: 4096,
            max_rank: 64,
            max_initializers: 1_000_000,
            max_summary_bytes: 4 << 20,
        }
    }
}

/// Why bytes were refused as an ONNX model.
#[derive(Debug, thiserror::Error)]
pub enum ScanError {
    /// Not valid protobuf, or a field of the wrong kind.
    #[error("not an ONNX model: malformed protobuf at byte {at}: {why}")]
    Malformed {
        /// Offset in the file.
        at: u64,
        /// What is wrong.
        why: String,
    },
    /// Valid protobuf, but not a usable `ModelProto`.
    #[error("not an ONNX model: {0}")]
    NotAModel(String),
    /// A tensor keeps its data in another file.
    #[error(
        "tensor {0:?} stores its data in an external file: models must be self-contained so their id covers every byte"
    )]
    ExternalData(String),
    /// A count or size past [`ScanLimits`].
    #[error("model refused: {0}")]
    Limit(String),
    /// Reading the source failed.
    #[error("reading the model: {0}")]
    Io(#[from] io::Error),
}

/// An ONNX element type (`TensorProto.DataType` code), shown by name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ElemType(pub u32);

/// Names for the codes Vouch's tensors don't cover (`DType` names the others).
const EXTRA_ELEM_TYPES: [(u32, &str); 11] = [
    (0, "undefined"),
    (14, "complex64"),
    (15, "complex128"),
    (16, "bfloat16"),
    (17, "float8e4m3fn"),
    (18, "float8e4m3fnuz"),
    (19, "float8e5m2"),
    (20, "float8e5m2fnuz"),
    (21, "uint4"),
    (22, "int4"),
    (23, "float4e2m1"),
];

/// Prefix of the name of a code without a name here.
const CODE_PREFIX: &str = "onnx_type_";

impl ElemType {
    /// The name: numpy's for Vouch's tensor types (`float32`), ONNX's lower-cased otherwise,
    /// `onnx_type_<code>` for codes unknown here.
    pub fn name(self) -> String {
        if let Some(d) = DType::from_code(self.0) {
            return d.name().to_string();
        }
        match EXTRA_ELEM_TYPES.iter().find(|(c, _)| *c == self.0) {
            Some((_, n)) => (*n).to_string(),
            None => format!("{CODE_PREFIX}{}", self.0),
        }
    }

    /// The inverse of [`ElemType::name`].
    pub fn from_name(s: &str) -> Option<ElemType> {
        if let Some(d) = DType::ALL.into_iter().find(|d| d.name() == s) {
            return Some(ElemType(d.code()));
        }
        if let Some((c, _)) = EXTRA_ELEM_TYPES.iter().find(|(_, n)| *n == s) {
            return Some(ElemType(*c));
        }
        let code: u32 = s.strip_prefix(CODE_PREFIX)?.parse().ok()?;
        // Only the spelling `name` would give, so each type has one name.
        (ElemType(code).name() == s).then_some(ElemType(code))
    }
}

impl Serialize for ElemType {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.name())
    }
}

impl<'de> Deserialize<'de> for ElemType {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        ElemType::from_name(&s)
            .ok_or_else(|| serde::de::Error::custom(format!("unknown element type {s:?}")))
    }
}

/// One dimension of a declared shape.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Dim {
    /// A fixed size (JSON number).
    Fixed(u64),
    /// A named symbolic size such as `batch` (JSON string).
    Symbolic(String),
    /// Neither given (JSON null).
    Unknown,
}

/// What kind of value a graph input or output is (`TypeProto`'s variants).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ValueKind {
    /// A dense tensor.
    Tensor,
    /// A sparse tensor.
    SparseTensor,
    /// A sequence.
    Sequence,
    /// A map.
    Map,
    /// An optional value.
    Optional,
    /// An opaque value.
    Opaque,
    /// No type given.
    Unknown,
}

/// A graph input or output.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ValueSummary {
    /// The value's name.
    pub name: String,
    /// Its kind.
    pub kind: ValueKind,
    /// Element type, for tensors.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub elem_type: Option<ElemType>,
    /// Declared shape, for tensors that declare one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shape: Option<Vec<Dim>>,
}

/// An operator set the model imports.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpsetImport {
    /// Domain; `""` is the default ONNX domain (`ai.onnx`).
    pub domain: String,
    /// Opset version.
    pub version: i64,
}

/// How many nodes use one operator.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OperatorCount {
    /// Domain; `""` is the default ONNX domain (`ai.onnx` is written as `""`).
    pub domain: String,
    /// Operator name.
    pub op_type: String,
    /// Nodes, subgraphs included.
    pub count: u64,
}

/// What a hub tells about a model without running it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OnnxSummary {
    /// `ModelProto.ir_version`.
    pub ir_version: i64,
    /// Tool that wrote the model.
    pub producer_name: String,
    /// Its version.
    pub producer_version: String,
    /// Operator sets imported.
    pub opset_imports: Vec<OpsetImport>,
    /// Main graph inputs that are not initializers, in file order.
    pub inputs: Vec<ValueSummary>,
    /// Main graph outputs, in file order.
    pub outputs: Vec<ValueSummary>,
    /// Operator histogram over the main graph and its subgraphs, sorted by domain then op type.
    pub operators: Vec<OperatorCount>,
    /// Nodes, subgraphs included.
    pub node_count: u64,
    /// Initializers (dense and sparse), subgraphs included.
    pub initializer_count: u64,
    /// Elements of all initializers (the product of each one's dims; sparse ones by their dense
    /// shape), saturating. Constants held in `Constant` nodes are not counted.
    pub parameter_count: u64,
    /// Model-local functions (`ModelProto.functions`).
    pub local_functions: u64,
}

/// Scans a model file.
pub fn scan_file(path: &Path, limits: &ScanLimits) -> Result<OnnxSummary, ScanError> {
    let file = File::open(path)?;
    let len = file.metadata()?.len();
    scan(BufReader::with_capacity(64 * 1024, file), len, limits)
}

/// Scans a model held in memory.
pub fn scan_bytes(bytes: &[u8], limits: &ScanLimits) -> Result<OnnxSummary, ScanError> {
    scan(Cursor::new(bytes), bytes.len() as u64, limits)
}

/// Scans `len` bytes of a model from `source`, positioned at its start.
pub fn scan<R: BufRead + Seek>(
    source: R,
    len: u64,
    limits: &ScanLimits,
) -> Result<OnnxSummary, ScanError> {
    let mut s = Scanner {
        wire: Wire { r: source, pos: 0 },
        limits: *limits,
        ops: BTreeMap::new(),
        node_count: 0,
        initializer_count: 0,
        parameter_count: 0,
        main_initializers: HashSet::new(),
        kept_bytes: 0,
    };
    s.model(len)
}

/// Protobuf wire types.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum WireType {
    Varint,
    Fixed64,
    Len,
    Fixed32,
}

/// The wire-format layer: varints, keys, skips, with the position tracked for bounds and errors.
struct Wire<R> {
    r: R,
    pos: u64,
}

/// Lengths skipped by seeking rather than by reading through the buffer.
const SEEK_THRESHOLD: u64 = 64 * 1024;

impl<R: BufRead + Seek> Wire<R> {
    fn malformed(&self, why: impl Into<String>) -> ScanError {
        ScanError::Malformed {
            at: self.pos,
            why: why.into(),
        }
    }

    fn byte(&mut self, end: u64) -> Result<u8, ScanError> {
        if self.pos >= end {
            return Err(self.malformed("message ends inside a varint"));
        }
        let Some(b) = self.r.fill_buf()?.first().copied() else {
            return Err(self.malformed("file ends early"));
        };
        self.r.consume(1);
        self.pos += 1;
        Ok(b)
    }

    fn varint(&mut self, end: u64) -> Result<u64, ScanError> {
        let mut v = 0u64;
        for i in 0..10 {
            let b = self.byte(end)?;
            if i == 9 && b > 1 {
                return Err(self.malformed("varint longer than 64 bits"));
            }
            v |= u64::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(self.malformed("varint longer than 10 bytes"))
    }

    fn key(&mut self, end: u64) -> Result<(u32, WireType), ScanError> {
        let k = self.varint(end)?;
        let field = k >> 3;
        if field == 0 || field > (1 << 29) - 1 {
            return Err(self.malformed(format!("invalid field number {field}")));
        }
        let wt = match k & 7 {
            0 => WireType::Varint,
            1 => WireType::Fixed64,
            2 => WireType::Len,
            5 => WireType::Fixed32,
            // 3 and 4 are proto2 groups, which ONNX never uses; 6 and 7 don't exist.
            other => return Err(self.malformed(format!("unsupported wire type {other}"))),
        };
        Ok((field as u32, wt))
    }

    /// Reads a length prefix and returns where that field ends, inside `end`.
    fn len_end(&mut self, end: u64) -> Result<u64, ScanError> {
        let n = self.varint(end)?;
        match self.pos.checked_add(n) {
            Some(e) if e <= end => Ok(e),
            _ => Err(self.malformed(format!("a field of {n} bytes runs past its message"))),
        }
    }

    fn skip_bytes(&mut self, mut n: u64) -> Result<(), ScanError> {
        while n > 0 {
            let avail = self.r.fill_buf()?.len() as u64;
            if avail == 0 {
                return Err(self.malformed("file ends early"));
            }
            let take = avail.min(n);
            self.r.consume(take as usize);
            self.pos += take;
            n -= take;
            if n > SEEK_THRESHOLD {
                // Tensor payloads: seek past without reading. The caller has checked `n` against
                // the enclosing message, which lies inside the file's length.
                let to = i64::try_from(n).map_err(|_| self.malformed("field too long"))?;
                self.r.seek(SeekFrom::Current(to))?;
                self.pos += n;
                n = 0;
            }
        }
        Ok(())
    }

    fn skip(&mut self, wt: WireType, end: u64) -> Result<(), ScanError> {
        let n = match wt {
            WireType::Varint => return self.varint(end).map(drop),
            WireType::Fixed64 => 8,
            WireType::Fixed32 => 4,
            WireType::Len => {
                let e = self.len_end(end)?;
                e - self.pos
            }
        };
        if self.pos + n > end {
            return Err(self.malformed("a fixed-size field runs past its message"));
        }
        self.skip_bytes(n)
    }

    fn string(&mut self, end: u64, max: u64, what: &str) -> Result<String, ScanError> {
        let e = self.len_end(end)?;
        let n = e - self.pos;
        if n > max {
            return Err(ScanError::Limit(format!(
                "{what} of {n} bytes is longer than {max}"
            )));
        }
        let mut buf = vec![0u8; n as usize];
        self.r.read_exact(&mut buf).map_err(|e| {
            if e.kind() == io::ErrorKind::UnexpectedEof {
                self.malformed("file ends early")
            } else {
                ScanError::Io(e)
            }
        })?;
        self.pos = e;
        String::from_utf8(buf).map_err(|_| self.malformed(format!("{what} is not UTF-8")))
    }

    fn expect(&self, wt: WireType, want: WireType, what: &str) -> Result<(), ScanError> {
        if wt == want {
            Ok(())
        } else {
            Err(self.malformed(format!(
                "field {what} has wire type {wt:?}, expected {want:?}"
            )))
        }
    }

    fn finish(&self, end: u64) -> Result<(), ScanError> {
        if self.pos == end {
            Ok(())
        } else {
            Err(self.malformed("a field runs past its message"))
        }
    }
}

/// Everything a scan accumulates; per-graph details go through the recursion.
struct Scanner<R> {
    wire: Wire<R>,
    limits: ScanLimits,
    ops: BTreeMap<(String, String), u64>,
    node_count: u64,
    initializer_count: u64,
    parameter_count: u64,
    /// Truncated SHA-256 of each main-graph initializer name: older models list initializers
    /// among the graph's inputs, and they are not inputs a caller provides.
    main_initializers: HashSet<[u8; 16]>,
    /// What the summary holds so far, counted as [`ScanLimits::max_summary_bytes`] says.
    kept_bytes: usize,
}

/// The main graph's declared inputs and outputs.
#[derive(Default)]
struct GraphValues {
    inputs: Vec<ValueSummary>,
    outputs: Vec<ValueSummary>,
}

/// What a `TensorProto` says about itself.
struct TensorInfo {
    name: String,
    elements: u64,
}

fn name_key(name: &str) -> [u8; 16] {
    let d = Sha256::digest(name.as_bytes());
    let mut k = [0u8; 16];
    k.copy_from_slice(&d[..16]);
    k
}

/// Rough allocation of one kept item besides its strings.
const ITEM_OVERHEAD: usize = 32;

impl<R: BufRead + Seek> Scanner<R> {
    /// Accounts for `n` more bytes in the summary.
    fn keep(&mut self, n: usize) -> Result<(), ScanError> {
        self.kept_bytes = self.kept_bytes.saturating_add(n);
        if self.kept_bytes > self.limits.max_summary_bytes {
            return Err(ScanError::Limit(format!(
                "the model's names and shapes take more than {} bytes",
                self.limits.max_summary_bytes
            )));
        }
        Ok(())
    }

    fn model(&mut self, end: u64) -> Result<OnnxSummary, ScanError> {
        let max_str = self.limits.max_string_bytes;
        let mut ir_version = None;
        let mut producer_name = String::new();
        let mut producer_version = String::new();
        let mut opsets = Vec::new();
        let mut graph: Option<GraphValues> = None;
        let mut local_functions = 0u64;
        while self.wire.pos < end {
            let (field, wt) = self.wire.key(end)?;
            match field {
                1 => {
                    self.wire.expect(wt, WireType::Varint, "ir_version")?;
                    ir_version = Some(self.wire.varint(end)? as i64);
                }
                2 => {
                    self.wire.expect(wt, WireType::Len, "producer_name")?;
                    producer_name = self.wire.string(end, max_str, "producer_name")?;
                }
                3 => {
                    self.wire.expect(wt, WireType::Len, "producer_version")?;
                    producer_version = self.wire.string(end, max_str, "producer_version")?;
                }
                7 => {
                    self.wire.expect(wt, WireType::Len, "graph")?;
                    let e = self.wire.len_end(end)?;
                    // A repeated singular message merges into one, as protobuf specifies.
                    let values = graph.get_or_insert_with(GraphValues::default);
                    let mut taken = std::mem::take(values);
                    self.graph(e, 0, Some(&mut taken))?;
                    graph = Some(taken);
                }
                8 => {
                    self.wire.expect(wt, WireType::Len, "opset_import")?;
                    if opsets.len() >= self.limits.max_opsets {
                        return Err(ScanError::Limit(format!(
                            "more than {} opset imports",
                            self.limits.max_opsets
                        )));
                    }
                    let e = self.wire.len_end(end)?;
                    let o = self.opset(e)?;
                    self.keep(ITEM_OVERHEAD + o.domain.len())?;
                    opsets.push(o);
                }
                25 => {
                    self.wire.expect(wt, WireType::Len, "functions")?;
                    local_functions += 1;
                    self.wire.skip(wt, end)?;
                }
                _ => self.wire.skip(wt, end)?,
            }
        }
        self.wire.finish(end)?;
        let ir_version = match ir_version {
            Some(v) if v >= 1 => v,
            Some(v) => return Err(ScanError::NotAModel(format!("ir_version {v} is invalid"))),
            None => return Err(ScanError::NotAModel("no ir_version".into())),
        };
        let Some(values) = graph else {
            return Err(ScanError::NotAModel("no graph".into()));
        };
        // IR version 3 introduced opset imports and made them mandatory.
        if ir_version >= 3 && opsets.is_empty() {
            return Err(ScanError::NotAModel("no opset_import".into()));
        }
        let inputs = values
            .inputs
            .into_iter()
            .filter(|v| !self.main_initializers.contains(&name_key(&v.name)))
            .collect();
        let operators = std::mem::take(&mut self.ops)
            .into_iter()
            .map(|((domain, op_type), count)| OperatorCount {
                domain,
                op_type,
                count,
            })
            .collect();
        Ok(OnnxSummary {
            ir_version,
            producer_name,
            producer_version,
            opset_imports: opsets,
            inputs,
            outputs: values.outputs,
            operators,
            node_count: self.node_count,
            initializer_count: self.initializer_count,
            parameter_count: self.parameter_count,
            local_functions,
        })
    }

    fn opset(&mut self, end: u64) -> Result<OpsetImport, ScanError> {
        let mut o = OpsetImport {
            domain: String::new(),
            version: 0,
        };
        while self.wire.pos < end {
            let (field, wt) = self.wire.key(end)?;
            match field {
                1 => {
                    self.wire.expect(wt, WireType::Len, "opset domain")?;
                    o.domain =
                        self.wire
                            .string(end, self.limits.max_string_bytes, "opset domain")?;
                }
                2 => {
                    self.wire.expect(wt, WireType::Varint, "opset version")?;
                    o.version = self.wire.varint(end)? as i64;
                }
                _ => self.wire.skip(wt, end)?,
            }
        }
        self.wire.finish(end)?;
        Ok(o)
    }

    /// A `GraphProto`; `values` is `Some` for the main graph only, whose inputs and outputs are
    /// listed.
    fn graph(
        &mut self,
        end: u64,
        depth: u32,
        mut values: Option<&mut GraphValues>,
    ) -> Result<(), ScanError> {
        if depth > self.limits.max_graph_depth {
            return Err(ScanError::Limit(format!(
                "subgraphs nested deeper than {}",
                self.limits.max_graph_depth
            )));
        }
        let main = values.is_some();
        while self.wire.pos < end {
            let (field, wt) = self.wire.key(end)?;
            match field {
                1 => {
                    self.wire.expect(wt, WireType::Len, "node")?;
                    let e = self.wire.len_end(end)?;
                    self.node(e, depth)?;
                }
                5 => {
                    self.wire.expect(wt, WireType::Len, "initializer")?;
                    let e = self.wire.len_end(end)?;
                    let t = self.tensor(e, "initializer")?;
                    self.count_initializer(t.elements)?;
                    if main {
                        self.main_initializers.insert(name_key(&t.name));
                    }
                }
                15 => {
                    self.wire.expect(wt, WireType::Len, "sparse_initializer")?;
                    let e = self.wire.len_end(end)?;
                    let (name, elements) = self.sparse_tensor(e)?;
                    self.count_initializer(elements)?;
                    if main {
                        self.main_initializers.insert(name_key(&name));
                    }
                }
                11 | 12 if values.is_some() => {
                    let what = if field == 11 { "input" } else { "output" };
                    self.wire.expect(wt, WireType::Len, what)?;
                    let e = self.wire.len_end(end)?;
                    let v = self.value_info(e)?;
                    let dims = v.shape.iter().flatten();
                    let dim_bytes: usize = dims
                        .map(|d| match d {
                            Dim::Symbolic(p) => ITEM_OVERHEAD + p.len(),
                            _ => ITEM_OVERHEAD,
                        })
                        .sum();
                    self.keep(ITEM_OVERHEAD + v.name.len() + dim_bytes)?;
                    let vals = values.as_deref_mut().expect("checked by the guard");
                    let list = if field == 11 {
                        &mut vals.inputs
                    } else {
                        &mut vals.outputs
                    };
                    if list.len() >= self.limits.max_graph_values {
                        return Err(ScanError::Limit(format!(
                            "more than {} graph {what}s",
                            self.limits.max_graph_values
                        )));
                    }
                    list.push(v);
                }
                _ => self.wire.skip(wt, end)?,
            }
        }
        self.wire.finish(end)
    }

    fn count_initializer(&mut self, elements: u64) -> Result<(), ScanError> {
        self.initializer_count += 1;
        if self.initializer_count > self.limits.max_initializers {
            return Err(ScanError::Limit(format!(
                "more than {} initializers",
                self.limits.max_initializers
            )));
        }
        self.parameter_count = self.parameter_count.saturating_add(elements);
        Ok(())
    }

    fn node(&mut self, end: u64, depth: u32) -> Result<(), ScanError> {
        let max_str = self.limits.max_string_bytes;
        let mut op_type = String::new();
        let mut domain = String::new();
        while self.wire.pos < end {
            let (field, wt) = self.wire.key(end)?;
            match field {
                4 => {
                    self.wire.expect(wt, WireType::Len, "op_type")?;
                    op_type = self.wire.string(end, max_str, "op_type")?;
                }
                7 => {
                    self.wire.expect(wt, WireType::Len, "node domain")?;
                    domain = self.wire.string(end, max_str, "node domain")?;
                }
                5 => {
                    self.wire.expect(wt, WireType::Len, "attribute")?;
                    let e = self.wire.len_end(end)?;
                    self.attribute(e, depth)?;
                }
                _ => self.wire.skip(wt, end)?,
            }
        }
        self.wire.finish(end)?;
        if op_type.is_empty() {
            return Err(ScanError::NotAModel("a node has no op_type".into()));
        }
        if domain == "ai.onnx" {
            domain.clear();
        }
        self.node_count += 1;
        let key = (domain, op_type);
        if let Some(n) = self.ops.get_mut(&key) {
            *n += 1;
        } else {
            if self.ops.len() >= self.limits.max_distinct_ops {
                return Err(ScanError::Limit(format!(
                    "more than {} distinct operators",
                    self.limits.max_distinct_ops
                )));
            }
            self.keep(ITEM_OVERHEAD + key.0.len() + key.1.len())?;
            self.ops.insert(key, 1);
        }
        Ok(())
    }

    /// An `AttributeProto`: subgraphs are scanned (their nodes and initializers count), tensors
    /// are checked for external data, everything else skipped.
    fn attribute(&mut self, end: u64, depth: u32) -> Result<(), ScanError> {
        while self.wire.pos < end {
            let (field, wt) = self.wire.key(end)?;
            match field {
                // g, graphs
                6 | 11 => {
                    self.wire.expect(wt, WireType::Len, "attribute graph")?;
                    let e = self.wire.len_end(end)?;
                    self.graph(e, depth + 1, None)?;
                }
                // t, tensors
                5 | 10 => {
                    self.wire.expect(wt, WireType::Len, "attribute tensor")?;
                    let e = self.wire.len_end(end)?;
                    self.tensor(e, "attribute tensor")?;
                }
                // sparse_tensor, sparse_tensors
                22 | 23 => {
                    self.wire
                        .expect(wt, WireType::Len, "attribute sparse tensor")?;
                    let e = self.wire.len_end(end)?;
                    self.sparse_tensor(e)?;
                }
                _ => self.wire.skip(wt, end)?,
            }
        }
        self.wire.finish(end)
    }

    /// A `TensorProto`: its name and element count; the payload is skipped.
    fn tensor(&mut self, end: u64, what: &str) -> Result<TensorInfo, ScanError> {
        let mut name = String::new();
        let mut elements = 1u64;
        while self.wire.pos < end {
            let (field, wt) = self.wire.key(end)?;
            match field {
                1 => {
                    // dims: packed or not
                    for d in self.int64s(wt, end, "dims")? {
                        let d = u64::try_from(d)
                            .map_err(|_| self.wire.malformed(format!("{what} dimension {d}")))?;
                        elements = elements.saturating_mul(d);
                    }
                }
                8 => {
                    self.wire.expect(wt, WireType::Len, "tensor name")?;
                    name = self
                        .wire
                        .string(end, self.limits.max_string_bytes, "tensor name")?;
                }
                13 => {
                    self.wire.skip(wt, end)?;
                    return Err(self.external(name, end));
                }
                14 => {
                    self.wire.expect(wt, WireType::Varint, "data_location")?;
                    if self.wire.varint(end)? == 1 {
                        return Err(self.external(name, end));
                    }
                }
                _ => self.wire.skip(wt, end)?,
            }
        }
        self.wire.finish(end)?;
        Ok(TensorInfo { name, elements })
    }

    /// The error for a tensor with external data, named if its name comes before the marker.
    fn external(&mut self, name: String, end: u64) -> ScanError {
        // Best effort: the name may come later in the message.
        let mut name = name;
        while name.is_empty() && self.wire.pos < end {
            match self.wire.key(end) {
                Ok((8, WireType::Len)) => {
                    name = self
                        .wire
                        .string(end, self.limits.max_string_bytes, "tensor name")
                        .unwrap_or_default();
                    break;
                }
                Ok((_, wt)) if self.wire.skip(wt, end).is_ok() => {}
                _ => break,
            }
        }
        ScanError::ExternalData(name)
    }

    /// A `SparseTensorProto`: the name of its values tensor and its dense element count.
    fn sparse_tensor(&mut self, end: u64) -> Result<(String, u64), ScanError> {
        let mut name = String::new();
        let mut elements = 1u64;
        while self.wire.pos < end {
            let (field, wt) = self.wire.key(end)?;
            match field {
                1 | 2 => {
                    self.wire.expect(wt, WireType::Len, "sparse tensor part")?;
                    let e = self.wire.len_end(end)?;
                    let t = self.tensor(e, "sparse tensor")?;
                    if field == 1 {
                        name = t.name;
                    }
                }
                3 => {
                    for d in self.int64s(wt, end, "sparse dims")? {
                        let d = u64::try_from(d)
                            .map_err(|_| self.wire.malformed(format!("sparse dimension {d}")))?;
                        elements = elements.saturating_mul(d);
                    }
                }
                _ => self.wire.skip(wt, end)?,
            }
        }
        self.wire.finish(end)?;
        Ok((name, elements))
    }

    /// A repeated int64 field occurrence, packed or not. Packed runs are consumed lazily by the
    /// caller's loop, so this never allocates more than the run's count of values (bounded by
    /// its byte length).
    fn int64s(&mut self, wt: WireType, end: u64, what: &str) -> Result<Vec<i64>, ScanError> {
        match wt {
            WireType::Varint => Ok(vec![self.wire.varint(end)? as i64]),
            WireType::Len => {
                let e = self.wire.len_end(end)?;
                if e - self.wire.pos > 64 * 10 {
                    return Err(ScanError::Limit(format!("{what}: more than 64 dimensions")));
                }
                let mut v = Vec::new();
                while self.wire.pos < e {
                    v.push(self.wire.varint(e)? as i64);
                }
                Ok(v)
            }
            _ => Err(self
                .wire
                .malformed(format!("field {what} has wire type {wt:?}"))),
        }
    }

    fn value_info(&mut self, end: u64) -> Result<ValueSummary, ScanError> {
        let mut v = ValueSummary {
            name: String::new(),
            kind: ValueKind::Unknown,
            elem_type: None,
            shape: None,
        };
        while self.wire.pos < end {
            let (field, wt) = self.wire.key(end)?;
            match field {
                1 => {
                    self.wire.expect(wt, WireType::Len, "value name")?;
                    v.name = self
                        .wire
                        .string(end, self.limits.max_string_bytes, "value name")?;
                }
                2 => {
                    self.wire.expect(wt, WireType::Len, "value type")?;
                    let e = self.wire.len_end(end)?;
                    self.type_proto(e, &mut v)?;
                }
                _ => self.wire.skip(wt, end)?,
            }
        }
        self.wire.finish(end)?;
        Ok(v)
    }

    /// A `TypeProto`: tensor and sparse tensor types are read; other kinds are only named.
    fn type_proto(&mut self, end: u64, v: &mut ValueSummary) -> Result<(), ScanError> {
        while self.wire.pos < end {
            let (field, wt) = self.wire.key(end)?;
            let kind = match field {
                1 => ValueKind::Tensor,
                8 => ValueKind::SparseTensor,
                4 => ValueKind::Sequence,
                5 => ValueKind::Map,
                7 => ValueKind::Opaque,
                9 => ValueKind::Optional,
                _ => {
                    self.wire.skip(wt, end)?;
                    continue;
                }
            };
            self.wire.expect(wt, WireType::Len, "type")?;
            v.kind = kind;
            if matches!(kind, ValueKind::Tensor | ValueKind::SparseTensor) {
                let e = self.wire.len_end(end)?;
                self.tensor_type(e, v)?;
            } else {
                self.wire.skip(wt, end)?;
            }
        }
        self.wire.finish(end)
    }

    fn tensor_type(&mut self, end: u64, v: &mut ValueSummary) -> Result<(), ScanError> {
        while self.wire.pos < end {
            let (field, wt) = self.wire.key(end)?;
            match field {
                1 => {
                    self.wire.expect(wt, WireType::Varint, "elem_type")?;
                    let code = self.wire.varint(end)?;
                    let code = u32::try_from(code)
                        .map_err(|_| self.wire.malformed(format!("elem_type {code}")))?;
                    v.elem_type = Some(ElemType(code));
                }
                2 => {
                    self.wire.expect(wt, WireType::Len, "shape")?;
                    let e = self.wire.len_end(end)?;
                    let shape = v.shape.get_or_insert_with(Vec::new);
                    let mut dims = std::mem::take(shape);
                    self.shape(e, &mut dims)?;
                    v.shape = Some(dims);
                }
                _ => self.wire.skip(wt, end)?,
            }
        }
        self.wire.finish(end)
    }

    fn shape(&mut self, end: u64, dims: &mut Vec<Dim>) -> Result<(), ScanError> {
        while self.wire.pos < end {
            let (field, wt) = self.wire.key(end)?;
            if field != 1 {
                self.wire.skip(wt, end)?;
                continue;
            }
            self.wire.expect(wt, WireType::Len, "dim")?;
            if dims.len() >= self.limits.max_rank {
                return Err(ScanError::Limit(format!(
                    "a shape of rank above {}",
                    self.limits.max_rank
                )));
            }
            let e = self.wire.len_end(end)?;
            let mut dim = Dim::Unknown;
            while self.wire.pos < e {
                let (f, wt) = self.wire.key(e)?;
                match f {
                    1 => {
                        self.wire.expect(wt, WireType::Varint, "dim_value")?;
                        // Some exporters write -1 for "unknown".
                        let d = self.wire.varint(e)? as i64;
                        dim = u64::try_from(d).map_or(Dim::Unknown, Dim::Fixed);
                    }
                    2 => {
                        self.wire.expect(wt, WireType::Len, "dim_param")?;
                        let p = self
                            .wire
                            .string(e, self.limits.max_string_bytes, "dim_param")?;
                        dim = Dim::Symbolic(p);
                    }
                    _ => self.wire.skip(wt, e)?,
                }
            }
            self.wire.finish(e)?;
            dims.push(dim);
        }
        self.wire.finish(end)
    }
}

#[cfg(test)]
mod tests;
