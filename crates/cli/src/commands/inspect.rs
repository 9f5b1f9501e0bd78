//! `vouch model inspect`.

use std::path::PathBuf;

use clap::Args;

use crate::{
    exit::{CliError, engine},
    inputs::read_bounded,
    print::json_out,
};

/// Arguments of `vouch model inspect`.
#[derive(Args)]
pub struct InspectArgs {
    /// The ONNX model file.
    file: PathBuf,
    /// Largest model file, in bytes.
    #[arg(long, env = "VOUCH_MAX_MODEL_BYTES", default_value_t = 1 << 30)]
    max_model_bytes: usize,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

/// Runs `vouch model inspect`.
pub fn run(a: InspectArgs) -> Result<(), CliError> {
    let bytes = read_bounded(&a.file, a.max_model_bytes as u64)?;
    let info = engine(vouch_engine::inspect(&bytes, a.max_model_bytes), || {
        format!("inspecting {}", a.file.display())
    })?;
    if a.json {
        json_out(&serde_json::to_value(&info).expect("model info serializes"));
        return Ok(());
    }
    println!("id          {}", info.id);
    println!("size        {} bytes", info.size_bytes);
    if !info.producer.is_empty() {
        println!("producer    {}", info.producer);
    }
    let opsets: Vec<String> = info
        .opsets
        .iter()
        .map(|(d, v)| format!("{}={v}", if d.is_empty() { "ai.onnx" } else { d }))
        .collect();
    println!("ir version  {}", info.ir_version);
    println!("opsets      {}", opsets.join(", "));
    println!("parameters  {}", info.parameter_count);
    println!("inputs");
    for i in &info.inputs {
        println!("  {:<20} {}", i.name, i.signature());
    }
    println!("outputs");
    for o in &info.outputs {
        println!("  {:<20} {}", o.name, o.signature());
    }
    println!("operators   ({} nodes)", info.node_count);
    for op in &info.ops {
        let mark = if op.supported { "" } else { "  UNSUPPORTED" };
        println!("  {:<34} {:>5}{mark}", op.op.to_string(), op.count);
    }
    if info.all_ops_supported {
        println!("supported   yes: every operator can run");
    } else {
        let missing: Vec<String> = info
            .ops
            .iter()
            .filter(|o| !o.supported)
            .map(|o| o.op.to_string())
            .collect();
        println!("supported   no: {}", missing.join(", "));
    }
    Ok(())
}
