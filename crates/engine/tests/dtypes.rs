//! Element types through the engine: every Vouch dtype survives a model unchanged, and a model
//! whose declared types don't match its data, or that uses a type Vouch lacks, fails with an
//! error naming the problem, never a panic.

mod common;
use common::value_info;

use prost::Message;
use tract_onnx::pb;
use vouch_engine::{EngineConfig, EngineError, Model};
use vouch_types::{DType, Limits, NamedTensors, Tensor};

/// `y = op(x[, w])`, with `x` of `input_type` and `y` declared `output_type`, both `[2]`.
fn model(
    op: &str,
    input_type: i32,
    output_type: i32,
    initializer: Option<pb::TensorProto>,
) -> Vec<u8> {
    let mut inputs = vec!["x".to_string()];
    inputs.extend(initializer.as_ref().map(|w| w.name.clone()));
    let node = pb::NodeProto {
        input: inputs,
        output: vec!["y".into()],
        name: "n".into(),
        op_type: op.into(),
        ..Default::default()
    };
    pb::ModelProto {
        ir_version: 8,
        opset_import: vec![pb::OperatorSetIdProto {
            domain: String::new(),
            version: 17,
        }],
        graph: Some(pb::GraphProto {
            node: vec![node],
            name: "g".into(),
            input: vec![value_info("x", input_type, &[2])],
            output: vec![value_info("y", output_type, &[2])],
            initializer: initializer.into_iter().collect(),
            ..Default::default()
        }),
        ..Default::default()
    }
    .encode_to_vec()
}

/// ONNX's `TensorProto.DataType` code for a Vouch dtype.
fn onnx_type(d: DType) -> i32 {
    match d {
        DType::F32 => 1,
        DType::U8 => 2,
        DType::I8 => 3,
        DType::U16 => 4,
        DType::I16 => 5,
        DType::I32 => 6,
        DType::I64 => 7,
        DType::String => 8,
        DType::Bool => 9,
        DType::F16 => 10,
        DType::F64 => 11,
        DType::U32 => 12,
        DType::U64 => 13,
    }
}

/// Two values of each dtype, edge values where the type has them.
fn sample(d: DType) -> Tensor {
    let shape = vec![2];
    match d {
        DType::F32 => Tensor::from_vec(shape, vec![-0.0f32, f32::MAX]),
        DType::F64 => Tensor::from_vec(shape, vec![f64::MIN_POSITIVE, -1.5]),
        DType::F16 => Tensor::from_vec(shape, vec![half::f16::MAX, half::f16::from_f32(-2.5)]),
        DType::I8 => Tensor::from_vec(shape, vec![i8::MIN, i8::MAX]),
        DType::I16 => Tensor::from_vec(shape, vec![i16::MIN, i16::MAX]),
        DType::I32 => Tensor::from_vec(shape, vec![i32::MIN, i32::MAX]),
        DType::I64 => Tensor::from_vec(shape, vec![i64::MIN, i64::MAX]),
        DType::U8 => Tensor::from_vec(shape, vec![0u8, u8::MAX]),
        DType::U16 => Tensor::from_vec(shape, vec![0u16, u16::MAX]),
        DType::U32 => Tensor::from_vec(shape, vec![0u32, u32::MAX]),
        DType::U64 => Tensor::from_vec(shape, vec![0u64, u64::MAX]),
        DType::Bool => Tensor::from_vec(shape, vec![true, false]),
        DType::String => {
            Tensor::from_strings(shape, vec!["".into(), "é€".into()], &Limits::DEFAULT)
        }
    }
    .unwrap()
}

fn inputs(t: Tensor) -> NamedTensors {
    NamedTensors::from([("x".to_string(), t)])
}

#[test]
fn every_dtype_goes_through_a_model_unchanged() {
    for d in DType::ALL {
        let model = Model::load(
            &model("Identity", onnx_type(d), onnx_type(d), None),
            &EngineConfig::default(),
        )
        .unwrap_or_else(|e| panic!("{d}: {e}"));
        assert_eq!(model.input_dtype("x"), Some(d));
        let t = sample(d);
        let ex = model
            .run(&inputs(t.clone()))
            .unwrap_or_else(|e| panic!("{d}: {e}"));
        assert_eq!(ex.outputs["y"].encode(), t.encode(), "{d}");
        assert_eq!(
            ex.output_commitment,
            model.run(&inputs(t)).unwrap().output_commitment
        );
    }
}

#[test]
fn a_declared_output_type_the_graph_does_not_produce_is_an_error() {
    // Relu of floats declared to give int64s.
    let result = Model::load(&model("Relu", 1, 7, None), &EngineConfig::default())
        .and_then(|m| m.run(&inputs(sample(DType::F32))));
    let err = result.expect_err("float output declared int64");
    let msg = err.to_string();
    assert!(
        matches!(err, EngineError::Tract(_) | EngineError::Internal(_)),
        "{err:?}"
    );
    assert!(
        msg.contains("F32") || msg.contains("I64") || msg.contains("int64"),
        "{msg}"
    );
}

#[test]
fn an_initializer_whose_bytes_do_not_fit_its_type_is_an_error() {
    // float32[2] needs 8 bytes of raw data; give it 3.
    let w = pb::TensorProto {
        name: "w".into(),
        dims: vec![2],
        data_type: 1,
        raw_data: vec![0, 0, 128],
        ..Default::default()
    };
    let err = Model::load(&model("Add", 1, 1, Some(w)), &EngineConfig::default())
        .expect_err("3 bytes for two floats");
    assert!(
        matches!(err, EngineError::Tract(_) | EngineError::NotOnnx(_)),
        "{err:?}"
    );
}

#[test]
fn an_initializer_of_another_type_than_the_input_is_an_error() {
    // Add(float x, int64 w): ONNX requires one type.
    let w = pb::TensorProto {
        name: "w".into(),
        dims: vec![2],
        data_type: 7,
        int64_data: vec![1, 2],
        ..Default::default()
    };
    let result = Model::load(&model("Add", 1, 1, Some(w)), &EngineConfig::default())
        .and_then(|m| m.run(&inputs(sample(DType::F32))));
    assert!(result.is_err(), "{result:?}");
}

#[test]
fn types_vouch_lacks_are_named_at_load() {
    // bfloat16 (16), float8e4m3fn (17), int4 (22).
    for elem_type in [16, 17, 22] {
        let err = Model::load(
            &model("Identity", elem_type, elem_type, None),
            &EngineConfig::default(),
        )
        .expect_err("an unsupported type");
        assert!(
            matches!(err, EngineError::UnsupportedType { onnx_elem_type, .. } if onnx_elem_type == elem_type),
            "{elem_type}: {err:?}"
        );
    }
}

#[test]
fn inputs_of_another_dtype_than_declared_are_refused() {
    let model = Model::load(&model("Identity", 10, 10, None), &EngineConfig::default()).unwrap();
    for d in [DType::F32, DType::F64, DType::U16, DType::String] {
        let err = model.run(&inputs(sample(d))).expect_err("a float16 input");
        assert!(
            matches!(err, EngineError::InputDType { expected: DType::F16, got, .. } if got == d),
            "{d}: {err:?}"
        );
    }
}
