//! Hostile input and hostile surroundings: every case ends in a clear error or a correct
//! result, never a panic, a signal or a silent success.

use std::io::Read;
use std::process::{Command, Stdio};

fn model(name: &str) -> String {
    format!("{}/../shared/models/{name}", env!("CARGO_MANIFEST_DIR"))
}

fn no_panic(stderr: &[u8]) {
    let text = String::from_utf8_lossy(stderr);
    assert!(!text.contains("panicked"), "{text}");
}

#[test]
fn output_into_a_full_disk_is_an_error_naming_the_output() {
    let runs: [(&str, Vec<String>); 3] = [
        ("smelt-opt", vec![model("mobilenet_v2.onnx")]),
        ("smelt", vec!["ops".into()]),
        ("smelt", vec!["report".into(), model("mobilenet_v2.onnx"), "--json".into()]),
    ];
    for (bin, args) in runs {
        let exe = if bin == "smelt" { env!("CARGO_BIN_EXE_smelt") } else { env!("CARGO_BIN_EXE_smelt-opt") };
        let full = std::fs::OpenOptions::new().write(true).open("/dev/full").unwrap();
        let out = Command::new(exe).args(&args).stdout(full).output().unwrap();
        assert_eq!(out.status.code(), Some(1), "{bin} {args:?}");
        no_panic(&out.stderr);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("standard output: error: cannot write"), "{bin} {args:?}: {stderr}");
    }
    let out = Command::new(env!("CARGO_BIN_EXE_smelt-opt"))
        .args([&model("mobilenet_v2.onnx"), "-o", "/dev/full"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/dev/full: error: cannot write"));
}

#[test]
fn a_closed_pipe_ends_the_output_quietly() {
    // More output than a pipe holds, so the writer meets the closed end whatever the timing.
    let mut child = Command::new(env!("CARGO_BIN_EXE_smelt-opt"))
        .arg(model("mobilenet_v2.onnx"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let mut stderr = Vec::new();
    child.stderr.take().unwrap().read_to_end(&mut stderr).unwrap();
    let status = child.wait().unwrap();
    assert!(status.success(), "{status:?}: {}", String::from_utf8_lossy(&stderr));
    assert!(stderr.is_empty(), "{}", String::from_utf8_lossy(&stderr));
}
