//! What each `smelt` subcommand does, as library functions the binary calls with parsed
//! arguments: measured calibration (`calibrate`), ONNX conformance cases (`conformance`),
//! GPU target fitting (`fit_target`), launch plans (`plan`), characterization and fusion
//! reports (`report`), runs (`run`) and the tuning loop (`tune`).

pub mod calibrate;
pub mod conformance;
pub mod fit_target;
pub mod plan;
pub mod report;
pub mod run;
pub mod tune;
