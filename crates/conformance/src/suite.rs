//! Finding the test cases in ONNX's backend test data (`onnx/backend/test/data/` in the `onnx`
//! Python package), laid out as ONNX's loader (`onnx/backend/test/loader`) reads it.

use std::{
    fs,
    path::{Path, PathBuf},
};

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};

use crate::compare::Tolerance;

/// The categories, in report order.
pub const CATEGORIES: [&str; 5] = [
    "node",
    "simple",
    "pytorch-converted",
    "pytorch-operator",
    "light",
];

/// One test case: a model and the data to check it with.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Case {
    /// Category (one of [`CATEGORIES`]).
    pub category: String,
    /// Case name, e.g. `test_abs`.
    pub name: String,
    /// The model file.
    pub model: PathBuf,
    /// Inputs and reference outputs.
    pub data: CaseData,
    /// Tolerance for floating-point outputs.
    pub tolerance: Tolerance,
}

/// Where a case's inputs and reference outputs come from.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum CaseData {
    /// `test_data_set_N/` directories holding `input_K.pb` and `output_K.pb`.
    DataSets {
        /// The directories, in numeric order.
        dirs: Vec<PathBuf>,
    },
    /// ONNX's `light` models: float inputs are generated as ONNX's runner does
    /// (`arange(n) / n` in the declared shape, unknown dimensions 1), and the reference outputs
    /// lie beside the model as `<model>_output_K.pb`.
    Generated {
        /// Reference outputs, in output order.
        outputs: Vec<PathBuf>,
    },
}

impl Case {
    /// `category/name`, unique within a run.
    pub fn id(&self) -> String {
        format!("{}/{}", self.category, self.name)
    }
}

/// Every case of `categories` under `data_dir`, sorted by category order then name.
pub fn discover(data_dir: &Path, categories: &[String]) -> Result<Vec<Case>> {
    let mut cases = Vec::new();
    for category in categories {
        if !CATEGORIES.contains(&category.as_str()) {
            bail!(
                "unknown category {category:?}; the categories are {}",
                CATEGORIES.join(", ")
            );
        }
        let found = if category == "light" {
            light_cases(data_dir)?
        } else {
            data_set_cases(data_dir, category)?
        };
        cases.extend(found);
    }
    Ok(cases)
}

fn sorted_dir(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut entries = fs::read_dir(dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("reading {}", dir.display()))?;
    entries.sort();
    Ok(entries)
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// The `N` of names like `test_data_set_N` or `output_N.pb`.
fn numbered(name: &str, prefix: &str, suffix: &str) -> Option<usize> {
    name.strip_prefix(prefix)?
        .strip_suffix(suffix)?
        .parse()
        .ok()
}

/// `path_N.pb`-style files for N = 0, 1, … while they exist (how ONNX's runner counts them).
pub fn numbered_files(dir: &Path, prefix: &str) -> Vec<PathBuf> {
    (0..)
        .map(|i| dir.join(format!("{prefix}{i}.pb")))
        .take_while(|p| p.is_file())
        .collect()
}

/// The tolerance a case's optional `data.json` sets, else ONNX's default.
fn tolerance_of(data_json: &Path) -> Result<Tolerance> {
    let mut tolerance = Tolerance::ONNX_DEFAULT;
    if data_json.is_file() {
        let text = fs::read_to_string(data_json)
            .with_context(|| format!("reading {}", data_json.display()))?;
        let value: serde_json::Value = serde_json::from_str(&text)
            .with_context(|| format!("parsing {}", data_json.display()))?;
        if let Some(rtol) = value.get("rtol").and_then(serde_json::Value::as_f64) {
            tolerance.rtol = rtol;
        }
        if let Some(atol) = value.get("atol").and_then(serde_json::Value::as_f64) {
            tolerance.atol = atol;
        }
    }
    Ok(tolerance)
}

fn data_set_cases(data_dir: &Path, category: &str) -> Result<Vec<Case>> {
    let dir = data_dir.join(category);
    let mut cases = Vec::new();
    for case_dir in sorted_dir(&dir)? {
        let model = case_dir.join("model.onnx");
        if !case_dir.is_dir() || !model.is_file() {
            continue;
        }
        let mut dirs: Vec<(usize, PathBuf)> = sorted_dir(&case_dir)?
            .into_iter()
            .filter(|p| p.is_dir())
            .filter_map(|p| numbered(&file_name(&p), "test_data_set_", "").map(|n| (n, p)))
            .collect();
        dirs.sort();
        cases.push(Case {
            category: category.to_string(),
            name: file_name(&case_dir),
            tolerance: tolerance_of(&case_dir.join("data.json"))?,
            model,
            data: CaseData::DataSets {
                dirs: dirs.into_iter().map(|(_, p)| p).collect(),
            },
        });
    }
    Ok(cases)
}

/// The `light` models. ONNX's loader finds them through `real/<case>/data.json`, whose `url`
/// names the model file and which carries the case's tolerance (densenet121 has rtol 2e-3);
/// without `real/`, every `light/*.onnx` is a case with the default tolerance.
fn light_cases(data_dir: &Path) -> Result<Vec<Case>> {
    let light = data_dir.join("light");
    let real = data_dir.join("real");
    let mut cases = Vec::new();
    let case = |name: String, model: PathBuf, tolerance: Tolerance| {
        let stem = model
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let outputs = numbered_files(&light, &format!("{stem}_output_"));
        Case {
            category: "light".into(),
            name,
            model,
            data: CaseData::Generated { outputs },
            tolerance,
        }
    };
    if real.is_dir() {
        for case_dir in sorted_dir(&real)? {
            let data_json = case_dir.join("data.json");
            if !data_json.is_file() {
                continue;
            }
            let text = fs::read_to_string(&data_json)
                .with_context(|| format!("reading {}", data_json.display()))?;
            let value: serde_json::Value = serde_json::from_str(&text)
                .with_context(|| format!("parsing {}", data_json.display()))?;
            let Some(url) = value.get("url").and_then(serde_json::Value::as_str) else {
                continue;
            };
            let Some(file) = url.strip_prefix("onnx/backend/test/data/light/") else {
                continue; // a model ONNX's runner would download: not in the package
            };
            cases.push(case(
                file_name(&case_dir),
                light.join(file),
                tolerance_of(&data_json)?,
            ));
        }
    } else if light.is_dir() {
        for model in sorted_dir(&light)? {
            let name = file_name(&model);
            if let Some(stem) = name.strip_suffix(".onnx") {
                let short = stem.strip_prefix("light_").unwrap_or(stem);
                cases.push(case(
                    format!("test_{short}"),
                    model.clone(),
                    Tolerance::ONNX_DEFAULT,
                ));
            }
        }
    } else {
        bail!("{} has neither real/ nor light/", data_dir.display());
    }
    Ok(cases)
}

/// The `onnx` package version, when `data_dir` is inside an installed package
/// (`site-packages/onnx/backend/test/data` beside `onnx-X.Y.Z.dist-info`).
pub fn onnx_version(data_dir: &Path) -> Option<String> {
    let site_packages = data_dir.ancestors().nth(4)?;
    fs::read_dir(site_packages).ok()?.find_map(|e| {
        let name = e.ok()?.file_name().to_string_lossy().into_owned();
        let version = name.strip_prefix("onnx-")?.strip_suffix(".dist-info")?;
        Some(version.to_string())
    })
}

/// The data directory of an `onnx` package installed in `./.venv`, if there is one.
pub fn default_data_dir() -> Option<PathBuf> {
    let lib = Path::new(".venv/lib");
    fs::read_dir(lib).ok()?.find_map(|e| {
        let dir = e.ok()?.path().join("site-packages/onnx/backend/test/data");
        dir.is_dir().then_some(dir)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_in_names() {
        assert_eq!(numbered("test_data_set_12", "test_data_set_", ""), Some(12));
        assert_eq!(numbered("output_3.pb", "output_", ".pb"), Some(3));
        assert_eq!(numbered("output_x.pb", "output_", ".pb"), None);
    }

    #[test]
    fn finds_cases_tolerances_and_light_models() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let case = root.join("node/test_a");
        fs::create_dir_all(case.join("test_data_set_10")).unwrap();
        fs::create_dir_all(case.join("test_data_set_2")).unwrap();
        fs::write(case.join("model.onnx"), b"").unwrap();
        fs::write(case.join("data.json"), br#"{"rtol": 0.01}"#).unwrap();
        fs::create_dir_all(root.join("node/not_a_case")).unwrap();
        fs::create_dir_all(root.join("real/test_m")).unwrap();
        fs::write(
            root.join("real/test_m/data.json"),
            br#"{"atol": 1e-5, "url": "onnx/backend/test/data/light/light_m.onnx"}"#,
        )
        .unwrap();
        fs::create_dir_all(root.join("light")).unwrap();
        fs::write(root.join("light/light_m.onnx"), b"").unwrap();
        fs::write(root.join("light/light_m_output_0.pb"), b"").unwrap();

        let cases = discover(root, &["node".into(), "light".into()]).unwrap();
        assert_eq!(cases.len(), 2);
        assert_eq!(cases[0].id(), "node/test_a");
        assert_eq!(
            cases[0].tolerance,
            Tolerance {
                rtol: 0.01,
                atol: 1e-7
            }
        );
        assert_eq!(
            cases[0].data,
            CaseData::DataSets {
                dirs: vec![case.join("test_data_set_2"), case.join("test_data_set_10")]
            }
        );
        assert_eq!(cases[1].id(), "light/test_m");
        assert_eq!(cases[1].model, root.join("light/light_m.onnx"));
        assert_eq!(cases[1].tolerance.atol, 1e-5);
        assert_eq!(
            cases[1].data,
            CaseData::Generated {
                outputs: vec![root.join("light/light_m_output_0.pb")]
            }
        );
        assert!(discover(root, &["nodes".into()]).is_err());
    }
}
