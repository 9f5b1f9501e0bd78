//! Scanner tests: the repository's fixture models, hand-built models for every path through
//! the scanner, and damaged or random bytes (no panic, a clear refusal).

use std::io::{BufRead, Cursor, Read, Seek, SeekFrom};

use proptest::prelude::*;

use super::*;

/// A minimal protobuf writer for building test models.
#[derive(Clone, Default)]
struct Msg(Vec<u8>);

fn put_varint(buf: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        buf.push((v as u8) | 0x80);
        v >>= 7;
    }
    buf.push(v as u8);
}

impl Msg {
    fn new() -> Self {
        Msg::default()
    }
    fn varint(mut self, field: u32, v: u64) -> Self {
        put_varint(&mut self.0, u64::from(field) << 3);
        put_varint(&mut self.0, v);
        self
    }
    fn bytes(mut self, field: u32, b: &[u8]) -> Self {
        put_varint(&mut self.0, (u64::from(field) << 3) | 2);
        put_varint(&mut self.0, b.len() as u64);
        self.0.extend_from_slice(b);
        self
    }
    fn str(self, field: u32, s: &str) -> Self {
        self.bytes(field, s.as_bytes())
    }
    fn msg(self, field: u32, m: Msg) -> Self {
        self.bytes(field, &m.0)
    }
    fn packed(self, field: u32, vs: &[u64]) -> Self {
        let mut body = Vec::new();
        for v in vs {
            put_varint(&mut body, *v);
        }
        self.bytes(field, &body)
    }
}

fn node(op: &str, domain: Option<&str>) -> Msg {
    let n = Msg::new().str(1, "in").str(2, "out").str(4, op);
    match domain {
        Some(d) => n.str(7, d),
        None => n,
    }
}

/// A `ValueInfoProto` of a float tensor with the given dims (numbers or names).
fn tensor_value(name: &str, dims: &[Result<u64, &str>]) -> Msg {
    let mut shape = Msg::new();
    for d in dims {
        let dim = match d {
            Ok(v) => Msg::new().varint(1, *v),
            Err(p) => Msg::new().str(2, p),
        };
        shape = shape.msg(1, dim);
    }
    let tensor_type = Msg::new().varint(1, 1).msg(2, shape);
    Msg::new()
        .str(1, name)
        .msg(2, Msg::new().msg(1, tensor_type))
}

fn initializer(name: &str, dims: &[u64], raw_bytes: usize) -> Msg {
    Msg::new()
        .packed(1, dims)
        .varint(2, 1)
        .str(8, name)
        .bytes(9, &vec![0u8; raw_bytes])
}

fn model(graph: Msg) -> Msg {
    Msg::new()
        .varint(1, 8)
        .str(2, "test")
        .str(3, "0.1")
        .msg(7, graph)
        .msg(8, Msg::new().str(1, "").varint(2, 17))
}

fn scan_ok(m: &Msg) -> OnnxSummary {
    scan_bytes(&m.0, &ScanLimits::default()).expect("scans")
}

fn fixture(name: &str) -> Vec<u8> {
    let path = format!(
        "{}/../../tests/fixtures/models/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn op(domain: &str, op_type: &str, count: u64) -> OperatorCount {
    OperatorCount {
        domain: domain.into(),
        op_type: op_type.into(),
        count,
    }
}

fn float_value(name: &str, shape: Vec<Dim>) -> ValueSummary {
    ValueSummary {
        name: name.into(),
        kind: ValueKind::Tensor,
        elem_type: Some(ElemType(1)),
        shape: Some(shape),
    }
}

// Expected values read with the onnx Python package from the same files.

#[test]
fn iris_mlp_fixture() {
    let s = scan_bytes(&fixture("iris_mlp.onnx"), &ScanLimits::default()).unwrap();
    assert_eq!(s.ir_version, 7);
    assert_eq!(s.producer_name, "vouch-fixtures (skl2onnx)");
    assert_eq!(s.producer_version, "1.20.0");
    assert_eq!(
        s.opset_imports,
        vec![
            OpsetImport {
                domain: "".into(),
                version: 13
            },
            OpsetImport {
                domain: "ai.onnx.ml".into(),
                version: 1
            }
        ]
    );
    assert_eq!(
        s.inputs,
        vec![float_value("X", vec![Dim::Unknown, Dim::Fixed(4)])]
    );
    assert_eq!(
        s.outputs,
        vec![
            ValueSummary {
                name: "label".into(),
                kind: ValueKind::Tensor,
                elem_type: Some(ElemType(7)),
                shape: Some(vec![Dim::Unknown]),
            },
            float_value("probabilities", vec![Dim::Unknown, Dim::Fixed(3)]),
        ]
    );
    assert_eq!(
        s.operators,
        vec![
            op("", "Add", 2),
            op("", "ArgMax", 1),
            op("", "Cast", 2),
            op("", "Identity", 1),
            op("", "MatMul", 2),
            op("", "Relu", 1),
            op("", "Reshape", 1),
            op("", "Softmax", 1),
            op("ai.onnx.ml", "ArrayFeatureExtractor", 1),
        ]
    );
    assert_eq!(
        (s.node_count, s.initializer_count, s.parameter_count),
        (12, 6, 135)
    );
    assert_eq!(s.local_functions, 0);
}

#[test]
fn mlp_784_and_mnist_cnn_fixtures() {
    let batch = || Dim::Symbolic("batch".into());
    let s = scan_bytes(&fixture("mlp_784.onnx"), &ScanLimits::default()).unwrap();
    assert_eq!(s.ir_version, 8);
    assert_eq!(
        s.inputs,
        vec![float_value("x", vec![batch(), Dim::Fixed(784)])]
    );
    assert_eq!(
        s.outputs,
        vec![float_value("y", vec![batch(), Dim::Fixed(10)])]
    );
    assert_eq!(
        s.operators,
        vec![
            op("", "Add", 3),
            op("", "MatMul", 3),
            op("", "Relu", 2),
            op("", "Softmax", 1)
        ]
    );
    assert_eq!((s.node_count, s.parameter_count), (9, 109_386));

    let s = scan_bytes(&fixture("mnist_cnn.onnx"), &ScanLimits::default()).unwrap();
    assert_eq!(
        s.inputs,
        vec![float_value(
            "image",
            vec![batch(), Dim::Fixed(1), Dim::Fixed(28), Dim::Fixed(28)]
        )]
    );
    assert_eq!(
        (s.node_count, s.initializer_count, s.parameter_count),
        (9, 7, 5996)
    );
    assert_eq!(s.operators.iter().map(|o| o.count).sum::<u64>(), 9);
}

#[test]
fn subgraphs_initializers_and_value_kinds() {
    let then_branch = Msg::new()
        .msg(1, node("Relu", None))
        .msg(1, node("Relu", Some("ai.onnx")))
        .msg(5, initializer("t_w", &[2, 3], 24));
    let loop_body = Msg::new().msg(1, node("Custom", Some("com.example")));
    let else_branch = Msg::new().msg(
        1,
        node("Loop", None).msg(5, Msg::new().str(1, "body").msg(6, loop_body)),
    );
    let if_node = node("If", None).msg(
        5,
        Msg::new()
            .str(1, "then_branch")
            .msg(6, then_branch)
            .varint(20, 5),
    );
    let if_node = if_node.msg(
        5,
        Msg::new()
            .str(1, "else_branch")
            .msg(11, else_branch)
            .varint(20, 10),
    );
    let sparse = Msg::new()
        .msg(1, initializer("s", &[2], 8))
        .msg(2, Msg::new().packed(1, &[2]).varint(2, 7))
        .packed(3, &[10, 10]);
    let sequence_out = Msg::new()
        .str(1, "seq")
        .msg(2, Msg::new().msg(4, Msg::new().msg(1, Msg::new())));
    let graph = Msg::new()
        .msg(1, node("MatMul", None))
        .msg(1, if_node)
        // Unpacked dims, as some writers emit them.
        .msg(
            5,
            Msg::new()
                .varint(1, 4)
                .varint(1, 5)
                .str(8, "w")
                .bytes(9, &[0; 80]),
        )
        .msg(15, sparse)
        // Old-style: initializers also listed as inputs.
        .msg(11, tensor_value("x", &[Err("n"), Ok(4)]))
        .msg(11, tensor_value("w", &[Ok(4), Ok(5)]))
        .msg(11, tensor_value("s", &[Ok(10), Ok(10)]))
        .msg(12, tensor_value("y", &[Err("n"), Ok(5)]))
        .msg(12, sequence_out)
        .msg(12, Msg::new().str(1, "untyped"));
    let m = model(graph).msg(25, Msg::new().str(1, "f"));
    let s = scan_ok(&m);
    assert_eq!(
        s.inputs,
        vec![float_value(
            "x",
            vec![Dim::Symbolic("n".into()), Dim::Fixed(4)]
        )]
    );
    assert_eq!(s.outputs.len(), 3);
    assert_eq!(s.outputs[1].kind, ValueKind::Sequence);
    assert_eq!(s.outputs[1].elem_type, None);
    assert_eq!(s.outputs[2].kind, ValueKind::Unknown);
    assert_eq!(
        s.operators,
        vec![
            op("", "If", 1),
            op("", "Loop", 1),
            op("", "MatMul", 1),
            op("", "Relu", 2),
            op("com.example", "Custom", 1),
        ]
    );
    assert_eq!(s.node_count, 6);
    // w: 4x5, sparse s: dense 10x10, then-branch t_w: 2x3.
    assert_eq!((s.initializer_count, s.parameter_count), (3, 20 + 100 + 6));
    assert_eq!(s.local_functions, 1);
}

#[test]
fn refuses_what_is_not_a_model() {
    let limits = ScanLimits::default();
    let not_models: Vec<(&str, Vec<u8>)> = vec![
        ("empty", vec![]),
        ("text", b"hello, world".to_vec()),
        ("json", br#"{"graph": {}}"#.to_vec()),
        ("a tensor", initializer("w", &[2], 8).0),
        ("no graph", Msg::new().varint(1, 8).0),
        ("no ir_version", Msg::new().msg(7, Msg::new()).0),
        ("no opset", Msg::new().varint(1, 8).msg(7, Msg::new()).0),
        ("graph as a varint", Msg::new().varint(1, 8).varint(7, 1).0),
        (
            "node without op_type",
            model(Msg::new().msg(1, Msg::new().str(1, "x"))).0,
        ),
        ("a group", vec![0x08, 0x08, 0x3b, 0x3c]),
        (
            "overlong varint",
            vec![
                0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f,
            ],
        ),
        ("length past the end", vec![0x08, 0x08, 0x3a, 0x7f, 0x00]),
    ];
    for (what, bytes) in not_models {
        match scan_bytes(&bytes, &limits) {
            Err(ScanError::Malformed { .. } | ScanError::NotAModel(_)) => {}
            other => panic!("{what}: {other:?}"),
        }
    }
    let bad_utf8 = model(Msg::new().msg(1, Msg::new().bytes(4, &[0xff, 0xfe])));
    assert!(matches!(
        scan_bytes(&bad_utf8.0, &limits),
        Err(ScanError::Malformed { .. })
    ));
}

#[test]
fn refuses_external_data() {
    let located = Msg::new().str(8, "w").varint(14, 1);
    let listed = Msg::new()
        .msg(13, Msg::new().str(1, "location").str(2, "w.bin"))
        .str(8, "w2");
    for (t, name) in [(located, "w"), (listed, "w2")] {
        let m = model(Msg::new().msg(5, t));
        match scan_bytes(&m.0, &ScanLimits::default()) {
            Err(ScanError::ExternalData(n)) => assert_eq!(n, name),
            other => panic!("{other:?}"),
        }
    }
    // In a node attribute too.
    let attr = Msg::new().str(1, "value").msg(5, Msg::new().varint(14, 1));
    let m = model(Msg::new().msg(1, node("Constant", None).msg(5, attr)));
    assert!(matches!(
        scan_bytes(&m.0, &ScanLimits::default()),
        Err(ScanError::ExternalData(_))
    ));
}

#[test]
fn limits_are_enforced() {
    let limits = ScanLimits {
        max_graph_depth: 3,
        max_string_bytes: 16,
        max_graph_values: 2,
        max_opsets: 1,
        max_distinct_ops: 2,
        max_rank: 2,
        max_initializers: 1,
        max_summary_bytes: 1 << 20,
    };
    let mut nested = Msg::new().msg(1, node("Relu", None));
    for _ in 0..4 {
        nested = Msg::new().msg(
            1,
            node("If", None).msg(5, Msg::new().str(1, "g").msg(6, nested)),
        );
    }
    let cases = [
        ("depth", model(nested)),
        (
            "string",
            model(Msg::new().msg(1, node(&"R".repeat(17), None))),
        ),
        (
            "inputs",
            model(
                Msg::new()
                    .msg(11, tensor_value("a", &[]))
                    .msg(11, tensor_value("b", &[]))
                    .msg(11, tensor_value("c", &[])),
            ),
        ),
        (
            "opsets",
            model(Msg::new()).msg(8, Msg::new().str(1, "x").varint(2, 1)),
        ),
        (
            "distinct ops",
            model(
                Msg::new()
                    .msg(1, node("A", None))
                    .msg(1, node("B", None))
                    .msg(1, node("C", None)),
            ),
        ),
        (
            "rank",
            model(Msg::new().msg(11, tensor_value("a", &[Ok(1), Ok(2), Ok(3)]))),
        ),
        (
            "initializers",
            model(
                Msg::new()
                    .msg(5, initializer("a", &[1], 4))
                    .msg(5, initializer("b", &[1], 4)),
            ),
        ),
    ];
    for (what, m) in cases {
        match scan_bytes(&m.0, &limits) {
            Err(ScanError::Limit(_)) => {}
            other => panic!("{what}: {other:?}"),
        }
    }
    let budget = ScanLimits {
        max_summary_bytes: 200,
        ..ScanLimits::default()
    };
    let long_names = model(
        Msg::new()
            .msg(11, tensor_value(&"a".repeat(100), &[Err(&"n".repeat(100))]))
            .msg(12, tensor_value("b", &[])),
    );
    assert!(matches!(
        scan_bytes(&long_names.0, &budget),
        Err(ScanError::Limit(_))
    ));

    // Three levels are fine.
    let mut ok = Msg::new().msg(1, node("Relu", None));
    for _ in 0..3 {
        ok = Msg::new().msg(
            1,
            node("If", None).msg(5, Msg::new().str(1, "g").msg(6, ok)),
        );
    }
    scan_bytes(&model(ok).0, &limits).unwrap();
}

/// A source that counts the bytes actually read, to show payloads are seeked past.
struct Counting<'a> {
    inner: Cursor<&'a [u8]>,
    read: u64,
    window: usize,
}

impl Read for Counting<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.fill_buf()?.len().min(buf.len());
        buf[..n].copy_from_slice(&self.fill_buf()?[..n]);
        self.consume(n);
        Ok(n)
    }
}

impl BufRead for Counting<'_> {
    fn fill_buf(&mut self) -> std::io::Result<&[u8]> {
        let pos = self.inner.position() as usize;
        let data = *self.inner.get_ref();
        let end = (pos + self.window).min(data.len());
        Ok(&data[pos.min(end)..end])
    }
    fn consume(&mut self, n: usize) {
        self.read += n as u64;
        self.inner.set_position(self.inner.position() + n as u64);
    }
}

impl Seek for Counting<'_> {
    fn seek(&mut self, pos: SeekFrom) -> std::io::Result<u64> {
        self.inner.seek(pos)
    }
}

#[test]
fn tensor_payloads_are_skipped_not_read() {
    let big = 8 << 20;
    let m = model(Msg::new().msg(5, initializer("w", &[big as u64 / 4], big)));
    let mut src = Counting {
        inner: Cursor::new(&m.0),
        read: 0,
        window: 4096,
    };
    let s = scan(&mut src, m.0.len() as u64, &ScanLimits::default()).unwrap();
    assert_eq!(s.parameter_count, big as u64 / 4);
    assert!(src.read < 64 * 1024, "read {} bytes", src.read);
}

#[test]
fn truncated_files_never_panic_and_only_cut_at_opsets_can_pass() {
    let bytes = fixture("iris_mlp.onnx");
    let full = scan_bytes(&bytes, &ScanLimits::default()).unwrap();
    for n in 0..bytes.len() {
        if let Ok(s) = scan_bytes(&bytes[..n], &ScanLimits::default()) {
            // Protobuf writers put opset_import (8) after graph (7): a cut between two imports
            // is a valid, smaller model.
            assert!(
                s.opset_imports.len() < full.opset_imports.len(),
                "cut at {n}"
            );
            assert_eq!(s.inputs, full.inputs);
        }
    }
}

#[test]
fn damaged_bytes_never_panic() {
    let bytes = fixture("mnist_cnn.onnx");
    for i in 0..bytes.len() {
        for flip in [0x01u8, 0x80, 0xff] {
            let mut b = bytes.clone();
            b[i] ^= flip;
            let _ = scan_bytes(&b, &ScanLimits::default());
        }
    }
}

#[test]
fn elem_type_names_round_trip() {
    for code in 0..40u32 {
        let t = ElemType(code);
        assert_eq!(ElemType::from_name(&t.name()), Some(t), "{code}");
        let json = serde_json::to_string(&t).unwrap();
        assert_eq!(serde_json::from_str::<ElemType>(&json).unwrap(), t);
    }
    assert_eq!(ElemType(1).name(), "float32");
    assert_eq!(ElemType(16).name(), "bfloat16");
    assert_eq!(ElemType(99).name(), "onnx_type_99");
    assert_eq!(ElemType::from_name("onnx_type_1"), None);
    assert_eq!(ElemType::from_name("onnx_type_099"), None);
    let dims = vec![Dim::Fixed(3), Dim::Symbolic("n".into()), Dim::Unknown];
    let json = serde_json::to_string(&dims).unwrap();
    assert_eq!(json, r#"[3,"n",null]"#);
    assert_eq!(serde_json::from_str::<Vec<Dim>>(&json).unwrap(), dims);
}

proptest! {
    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        let _ = scan_bytes(&bytes, &ScanLimits::default());
    }

    #[test]
    fn spliced_fixture_bytes_never_panic(
        at in 0usize..1588,
        junk in proptest::collection::vec(any::<u8>(), 1..32),
    ) {
        let mut bytes = fixture("iris_mlp.onnx");
        let at = at.min(bytes.len());
        bytes.splice(at..at, junk);
        let _ = scan_bytes(&bytes, &ScanLimits::default());
    }
}
