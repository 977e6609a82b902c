"""The Python package against ONNX Runtime's stored (and, where installed, live) outputs, the
CLI's report, and the ways a feed can be wrong."""

import json
import os
import pathlib
import shutil
import subprocess
import sys
import threading

import numpy as np
import pytest

import smelt

ROOT = pathlib.Path(__file__).resolve().parents[2]
SHARED = ROOT.parent / "shared" / "models"
MODELS = ROOT / "tests" / "models"


def tensor(path):
    onnx = pytest.importorskip("onnx")
    from onnx import numpy_helper

    t = onnx.TensorProto()
    t.ParseFromString(pathlib.Path(path).read_bytes())
    return numpy_helper.to_array(t)


def rel_error(got, want):
    return float(np.abs(got.astype(np.float64) - want).max() / np.abs(want).max())


def smelt_cli():
    found = os.environ.get("SMELT_BIN") or shutil.which("smelt")
    for build in ("release", "debug"):
        candidate = ROOT / "target" / build / "smelt"
        if not found and candidate.exists():
            found = str(candidate)
    return found


def test_resnet18_matches_onnxruntime():
    model = SHARED / "resnet18.onnx"
    session = smelt.Session(model)
    (inp,) = session.get_inputs()
    assert (inp.name, inp.shape, inp.type) == ("input", [1, 3, 224, 224], "tensor(float)")
    x = tensor(SHARED / "resnet18.test_data_set_0" / "input_0.pb")
    (y,) = session.run(None, {inp.name: x})
    assert y.dtype == np.float32 and y.shape == (1, 1000)
    assert rel_error(y, tensor(SHARED / "resnet18.test_data_set_0" / "output_0.pb")) < 1e-4
    ort = pytest.importorskip("onnxruntime")
    reference = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    (want,) = reference.run(None, {inp.name: x})
    assert rel_error(y, want) < 1e-4


def test_report_matches_the_cli():
    model = SHARED / "resnet18.onnx"
    report = smelt.report(model)
    assert report["flops_conv_matmul"] > 3_000_000_000
    cli = smelt_cli()
    if cli is None:
        pytest.skip("the smelt binary is not built")
    out = subprocess.run([cli, "report", str(model), "--json"], capture_output=True, check=True)
    assert json.loads(out.stdout)["flops_conv_matmul"] == report["flops_conv_matmul"]


def test_plan_has_kernels_for_a_gpu():
    plan = smelt.plan(MODELS / "symbolic_batch_cnn" / "model.onnx", target="h100-sxm")
    assert plan["target"] == "h100-sxm" and plan["kernels"]


def test_symbolic_batch_runs_at_two_batches_like_the_reference():
    path = MODELS / "symbolic_batch_cnn" / "model.onnx"
    fused = smelt.Session(path, threads=1)
    reference = smelt.Session(path, mode="reference")
    # Symbolic dimensions by the model's names, as ONNX Runtime shows them.
    assert fused.get_inputs()[0].shape == ["N", 3, 16, 16]
    assert fused.get_outputs()[0].shape == ["N", 10]
    ort = pytest.importorskip("onnxruntime")
    theirs = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert [i.shape for i in fused.get_inputs()] == [i.shape for i in theirs.get_inputs()]
    assert [o.shape for o in fused.get_outputs()] == [o.shape for o in theirs.get_outputs()]
    rng = np.random.default_rng(0)
    for batch in (2, 5):
        x = rng.standard_normal((batch, 3, 16, 16), dtype=np.float32)
        (got,) = fused.run(None, {"x": x})
        (want,) = reference.run(None, {"x": x})
        assert got.shape[0] == batch
        assert rel_error(got, want) < 1e-5


def test_model_bytes_output_selection_and_dtypes(tmp_path):
    mlir = tmp_path / "two.mlir"
    mlir.write_text(
        'func.func @main(%a: tensor<3xi64>, %m: tensor<3xi1>) -> (tensor<3xi64>, tensor<3xi1>)'
        ' attributes {input_names = ["a", "m"], output_names = ["twice", "not"]} {\n'
        '  %0 = "smelt.add"(%a, %a) : (tensor<3xi64>, tensor<3xi64>) -> tensor<3xi64>\n'
        '  %1 = "smelt.not"(%m) : (tensor<3xi1>) -> tensor<3xi1>\n'
        "  return %0, %1 : tensor<3xi64>, tensor<3xi1>\n}\n"
    )
    session = smelt.Session(mlir)
    assert [o.type for o in session.get_outputs()] == ["tensor(int64)", "tensor(bool)"]
    feed = {"a": np.array([1, -2, 2**40]), "m": np.array([True, False, True])}
    flags, twice = session.run(["not", "twice"], feed)
    assert flags.dtype == np.bool_ and flags.tolist() == [False, True, False]
    assert twice.dtype == np.int64 and twice.tolist() == [2, -4, 2**41]
    # A non-contiguous view is read as the values it shows.
    (twice,) = session.run(["twice"], {"a": np.arange(6)[::2], "m": feed["m"]})
    assert twice.tolist() == [0, 4, 8]
    onnx_bytes = (MODELS / "symbolic_batch_cnn" / "model.onnx").read_bytes()
    from_bytes = smelt.Session(onnx_bytes)
    assert from_bytes.get_inputs()[0].name == "x"


def test_bad_feeds_name_the_input():
    session = smelt.Session(MODELS / "symbolic_batch_cnn" / "model.onnx")
    good = np.zeros((1, 3, 16, 16), np.float32)
    with pytest.raises(smelt.InputError, match="'y': the model has no such input"):
        session.run(None, {"y": good})
    with pytest.raises(smelt.InputError, match="'x': not given"):
        session.run(None, {})
    with pytest.raises(smelt.InputError, match="dimension 1 is 3 in the model"):
        session.run(None, {"x": np.zeros((1, 4, 16, 16), np.float32)})
    with pytest.raises(smelt.InputError, match="is f32 in the model"):
        session.run(None, {"x": good.astype(np.float64)})
    with pytest.raises(smelt.InputError, match="complex128 is not one Smelt takes"):
        session.run(None, {"x": good.astype(np.complex128)})
    with pytest.raises(smelt.InputError, match="'nope': the model has no such output"):
        session.run(["nope"], {"x": good})
    with pytest.raises(smelt.SmeltError, match="missing.onnx"):
        smelt.Session("missing.onnx")


def test_the_gil_is_released_while_a_model_runs():
    session = smelt.Session(SHARED / "resnet18.onnx", threads=1)
    x = np.zeros((1, 3, 224, 224), np.float32)
    ticks = [0]
    done = threading.Event()

    def count():
        # Each wait lets go of the GIL; taking it back needs the main thread to let go too.
        while not done.wait(0.0001):
            ticks[0] += 1

    previous = sys.getswitchinterval()
    # The main thread never yields the GIL on its own now: the counter only runs while a
    # native call has released it.
    sys.setswitchinterval(100.0)
    counter = threading.Thread(target=count)
    try:
        counter.start()
        before = ticks[0]
        for _ in range(3):
            session.run(None, {"input": x})
        during = ticks[0] - before
    finally:
        done.set()
        sys.setswitchinterval(previous)
        counter.join()
    assert during > 0


def test_tune_records_a_profile_and_options_are_checked(tmp_path):
    model = MODELS / "symbolic_batch_cnn" / "model.onnx"
    profile = tmp_path / "profile.json"
    tuned = smelt.tune(model, profile, max_rounds=2)
    assert tuned["rounds"] >= 1 and tuned["kernels"] and profile.exists()
    with pytest.raises(smelt.SmeltError, match="mode 'fast': expected fused, unfused or reference"):
        smelt.Session(model, mode="fast")
    with pytest.raises(smelt.SmeltError, match="weights 'zeros'"):
        smelt.Session(model, weights="zeros")
