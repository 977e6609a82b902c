# lit configuration for Smelt's FileCheck tests. Run through `cargo test --test lit`, which sets
# SMELT_BIN_DIR to the directory holding the freshly built smelt-opt and smelt binaries.
import os
import shutil

import lit.formats

config.name = "smelt"
config.test_format = lit.formats.ShTest(execute_external=True)
config.suffixes = [".mlir"]
config.test_source_root = os.path.dirname(__file__)
config.excludes = ["lit.cfg.py"]

bin_dir = os.environ.get("SMELT_BIN_DIR")
if not bin_dir:
    bin_dir = os.path.join(os.path.dirname(__file__), "..", "target", "debug")
llvm_bin = os.environ.get("LLVM_BIN_DIR", "/usr/lib/llvm-22/bin")

def tool(name, fallback):
    path = os.path.join(llvm_bin, name)
    if os.path.exists(path):
        return path
    found = shutil.which(fallback)
    if not found:
        lit_config.fatal(f"cannot find {name} (install llvm-22-tools / mlir-22-tools)")
    return found

shared = os.environ.get("SMELT_SHARED_DIR", os.path.join(os.path.dirname(__file__), "..", "..", "shared"))
config.substitutions.append(("%models", os.path.join(shared, "models")))
config.substitutions.append(("%onnx-tests", os.path.join(shared, "onnx-tests")))
config.substitutions.append(("%smelt-opt", os.path.join(bin_dir, "smelt-opt")))
config.substitutions.append(("%smelt", os.path.join(bin_dir, "smelt")))
config.substitutions.append(("FileCheck", tool("FileCheck", "FileCheck-22")))
config.substitutions.append(("not ", tool("not", "not") + " "))
config.environment["PATH"] = os.pathsep.join([bin_dir, config.environment.get("PATH", "")])
