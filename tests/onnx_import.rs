//! ONNX import and cleanup on the real exporter output in `../shared/models`, and bad input.

use smelt_compiler::onnx::{import_bytes, import_file, ImportOptions, Weights};
use smelt_compiler::verifier::verify;
use smelt_compiler::Module;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

fn models() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/models")
}

fn random() -> ImportOptions {
    ImportOptions { weights: Weights::Random { seed: 7 }, ..Default::default() }
}

fn cleaned(file: &str, options: &ImportOptions) -> Module {
    let mut m = import_file(&models().join(file), options).unwrap_or_else(|d| panic!("{file}: {d}"));
    verify(&m).unwrap_or_else(|e| panic!("{file}: imported module does not verify: {e:?}"));
    smelt_passes::run_pipeline(&mut m, smelt_passes::CLEANUP_PIPELINE).unwrap();
    verify(&m).unwrap();
    m
}

/// Op counts without constants and the function/module scaffolding.
fn op_counts(m: &Module) -> BTreeMap<&'static str, usize> {
    let mut counts = BTreeMap::new();
    for op in m.walk_pre_order(m.root()) {
        let name = m.op(op).name();
        if name.starts_with("smelt.") && name != "smelt.constant" {
            *counts.entry(name).or_default() += 1;
        }
    }
    counts
}

fn expect(counts: &[(&'static str, usize)]) -> BTreeMap<&'static str, usize> {
    counts.iter().copied().collect()
}

#[test]
fn resnet18_cleans_to_its_layers() {
    let m = cleaned("resnet18.onnx", &ImportOptions::default());
    assert_eq!(
        op_counts(&m),
        expect(&[
            ("smelt.add", 8),
            ("smelt.batch_norm", 20),
            ("smelt.conv2d", 20),
            ("smelt.gemm", 1),
            ("smelt.max_pool", 1),
            ("smelt.global_avg_pool", 1),
            ("smelt.relu", 17),
            ("smelt.reshape", 1),
        ])
    );
}

#[test]
fn mobilenet_v2_cleans_to_its_layers() {
    let m = cleaned("mobilenet_v2.onnx", &ImportOptions::default());
    assert_eq!(
        op_counts(&m),
        expect(&[
            ("smelt.add", 10),
            ("smelt.batch_norm", 52),
            ("smelt.clip", 35),
            ("smelt.conv2d", 52),
            ("smelt.gemm", 1),
            ("smelt.global_avg_pool", 1),
            ("smelt.reshape", 1),
        ])
    );
}

#[test]
fn vit_b_16_imports_with_random_weights() {
    let m = cleaned("vit_b_16.graph-only.onnx", &random());
    let counts = op_counts(&m);
    assert_eq!(counts["smelt.conv2d"], 1);
    assert_eq!(counts["smelt.layer_norm"], 25);
    assert_eq!(counts["smelt.softmax"], 12);
    assert_eq!(counts["smelt.gelu"], 12);
    assert_eq!(counts["smelt.matmul"], 60);
    assert!(!counts.contains_key("smelt.shape"));
}

#[test]
fn bert_base_imports_with_random_weights() {
    let m = cleaned("bert_base.graph-only.onnx", &random());
    let counts = op_counts(&m);
    assert_eq!(counts["smelt.matmul"], 96);
    assert_eq!(counts["smelt.layer_norm"], 25);
    assert_eq!(counts["smelt.softmax"], 12);
    assert_eq!(counts["smelt.gelu"], 12);
}

#[test]
fn random_weights_are_deterministic() {
    let print = |seed| {
        let m = import_file(
            &models().join("bert_base.graph-only.onnx"),
            &ImportOptions { weights: Weights::Random { seed }, ..Default::default() },
        )
        .unwrap();
        let blob = m
            .resources
            .get(&smelt_compiler::attributes::ResourceHandle("embeddings.word_embeddings.weight".into()))
            .unwrap();
        blob.bytes()[..64].to_vec()
    };
    assert_eq!(print(1), print(1));
    assert_ne!(print(1), print(2));
}

#[test]
fn missing_external_weights_name_the_file() {
    let err = import_file(&models().join("vit_b_16.graph-only.onnx"), &ImportOptions::default()).unwrap_err();
    let text = err.to_string();
    assert!(text.contains("vit_b_16.dynamo.weights"), "{text}");
    assert!(text.contains("--weights=random"), "{text}");
}

#[test]
fn pinned_shapes_must_agree_with_the_model() {
    let mut options = ImportOptions::default();
    options.shapes.insert("input".into(), vec![2, 3, 224, 224]);
    let text = import_file(&models().join("resnet18.onnx"), &options).unwrap_err().to_string();
    assert!(text.contains("--shape input=2x3x224x224 contradicts the model's tensor<1x3x224x224xf32>"), "{text}");
}

#[test]
fn truncated_and_corrupted_models_are_errors() {
    let bytes = std::fs::read(models().join("mobilenet_v2.onnx")).unwrap();
    for cut in [0, 1, 7, 100, 1000, bytes.len() / 2, bytes.len() - 1] {
        let r = import_bytes(bytes[..cut].to_vec().into(), "cut.onnx", None, &ImportOptions::default());
        if let Ok(m) = r {
            // A prefix can be a valid (smaller) message; then it must still verify or be reported.
            let _ = verify(&m);
        }
    }
    let mut flipped = bytes.clone();
    for i in (0..flipped.len()).step_by(997) {
        flipped[i] ^= 0x5a;
    }
    let r = import_bytes(flipped.into(), "flipped.onnx", None, &ImportOptions::default());
    if let Ok(m) = r {
        let _ = verify(&m);
    }
    let text = import_bytes(b"not a model at all".to_vec().into(), "text.onnx", None, &ImportOptions::default())
        .unwrap_err()
        .to_string();
    assert!(text.contains("text.onnx"), "{text}");
}

#[test]
fn fuzzer_regressions_import_without_panicking() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/regressions");
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "onnx") {
            let bytes = std::fs::read(&path).unwrap();
            if let Ok(m) = import_bytes(bytes.into(), "regression.onnx", None, &ImportOptions::default()) {
                let _ = verify(&m);
            }
        }
    }
}

/// A QOperator node with inputs missing, or with a layout the rewrite does not take, is an
/// error naming the node and the reason, not a panic or a silently different program.
#[test]
fn malformed_qoperator_nodes_name_the_node() {
    use prost::Message;
    use smelt_compiler::onnx::proto::ModelProto;
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/models/qoperator_cnn/model.onnx");
    let model = ModelProto::decode(std::fs::read(path).unwrap().as_slice()).unwrap();
    let damage = |op: &str, change: &dyn Fn(&mut smelt_compiler::onnx::proto::NodeProto)| {
        let mut m = model.clone();
        let graph = m.graph.as_mut().unwrap();
        let node = graph.node.iter_mut().find(|n| n.op_type() == op).unwrap();
        node.name = Some("victim".into());
        change(node);
        import_bytes(m.encode_to_vec().into(), "q.onnx", None, &ImportOptions::default()).unwrap_err().to_string()
    };
    let text = damage("QLinearConv", &|n| n.input.truncate(5));
    assert!(text.contains("'QLinearConv' node 'victim': needs at least 8 inputs, has 5"), "{text}");
    let text = damage("QLinearGlobalAveragePool", &|n| {
        n.attribute.iter_mut().filter(|a| a.name() == "channels_last").for_each(|a| a.i = Some(1))
    });
    assert!(text.contains("'com.microsoft.QLinearGlobalAveragePool' node 'victim': channels_last = 1"), "{text}");
}
