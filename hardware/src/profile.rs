//! The calibration profile: measured performance of one machine, as a versioned JSON document.
//!
//! It follows the seeds' `HardwareCalibration` design: metadata, peak rates, per-op profiles,
//! per-pattern fusion profiles (the seeds' `FusionCalibration` field names), plus records of
//! individual kernels keyed by a stable signature (pattern, shapes, element type). Cost models
//! read it; `smelt calibrate`, `smelt run --record` and `smelt tune` write it.
//!
//! Compatibility: every field has a default, so older and hand-written documents load; fields
//! this version does not know are kept (`unknown`) and written back; a document from a newer
//! schema is refused. Writes are atomic (a temporary file renamed over the target).

use crate::stats::Interval;
use crate::HardwareError;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

pub const SCHEMA_VERSION: u32 = 1;

type Unknown = BTreeMap<String, serde_json::Value>;

/// Fields an updated entry had that this version does not know, kept beside the new ones:
/// tools that write a profile alongside Smelt lose nothing when Smelt re-measures.
fn keep_unknown(new: &mut Unknown, old: Unknown) {
    for (k, v) in old {
        new.entry(k).or_insert(v);
    }
}

/// This machine's CPU model as the OS names it (`/proc/cpuinfo`'s `model name`; empty where
/// it does not say): what a host profile's `metadata.cpu_model` must match.
pub fn this_cpu_model() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo.lines().find(|l| l.starts_with("model name")).and_then(|l| l.split(':').nth(1));
    model.map(|m| m.trim().to_string()).unwrap_or_default()
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Profile {
    /// 0 for documents written before versioning.
    #[serde(default)]
    pub schema_version: u32,
    #[serde(default)]
    pub metadata: Metadata,
    #[serde(default)]
    pub peaks: Peaks,
    #[serde(default)]
    pub operation_profiles: Vec<OperationProfile>,
    #[serde(default)]
    pub fusion_profiles: Vec<FusionProfile>,
    #[serde(default)]
    pub kernel_records: Vec<KernelRecord>,
    /// Kernel variants `smelt calibrate` chose by measurement: by CPU (its model name and
    /// widest vector ISA), then by `kind/shape among candidates`
    /// (`conv3x3/1x64x56x56->64 threads=1 among winograd|im2col`), the
    /// variant's name (`winograd`). A run on that CPU takes them instead of probing.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub kernel_variants: BTreeMap<String, BTreeMap<String, String>>,
    /// Fusion decisions `smelt tune` measured in context; the calibrated cost model keeps the
    /// roofline's kernels where a decision did not flip.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fusion_decisions: Vec<FusionDecision>,
    #[serde(flatten)]
    pub unknown: Unknown,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Metadata {
    pub machine: String,
    pub cpu_model: String,
    pub cores: u32,
    pub isa_features: Vec<String>,
    /// ISO 8601.
    pub date: String,
    pub smelt_version: String,
    /// The target description the measurements belong to (`host`).
    pub target: String,
    /// How the numbers were obtained (`smelt calibrate`, or where they were copied from).
    pub source: String,
    #[serde(flatten)]
    pub unknown: Unknown,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Peaks {
    pub theoretical_gflops: Option<f64>,
    pub measured_gflops: Option<f64>,
    pub theoretical_bandwidth_gbs: Option<f64>,
    pub measured_bandwidth_gbs: Option<f64>,
    #[serde(flatten)]
    pub unknown: Unknown,
}

/// One op kind at one shape.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct OperationProfile {
    /// The op without its dialect prefix (`conv2d`, `relu`).
    pub op: String,
    pub signature: String,
    pub flops: u64,
    pub bytes: u64,
    pub latency_ms: f64,
    pub achieved_gflops: f64,
    /// Achieved over peak (compute or bandwidth, whichever bounds the op).
    pub efficiency: f64,
    pub trials: u32,
    #[serde(flatten)]
    pub unknown: Unknown,
}

/// A fusion pattern measured fused and unfused: the seeds' `FusionCalibration`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct FusionProfile {
    /// Smelt's kernel pattern name (`conv_bn_relu`).
    pub fusion_pattern: String,
    pub operators: Vec<String>,
    pub num_operators: u32,
    pub unfused_latency_ms: f64,
    pub unfused_gflops: f64,
    pub unfused_memory_bytes: u64,
    pub fused_latency_ms: f64,
    pub fused_gflops: f64,
    pub fused_memory_bytes: u64,
    /// unfused / fused latency.
    pub speedup_factor: f64,
    /// 1 - fused bytes / unfused bytes.
    pub memory_reduction: f64,
    pub gflops_improvement: f64,
    pub input_shape: Vec<u64>,
    /// FLOPs of one run, where known: the size interpolation between shapes uses it.
    pub flops: Option<u64>,
    pub extra_params: BTreeMap<String, serde_json::Value>,
    pub num_trials: u32,
    #[serde(flatten)]
    pub unknown: Unknown,
}

/// One kernel measured inside a model run.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct KernelRecord {
    /// `pattern(input shapes)->output shapes:element`.
    pub signature: String,
    pub pattern: String,
    pub target: String,
    pub flops: u64,
    pub bytes: u64,
    pub predicted_us: f64,
    /// Median of the measured runs.
    pub measured_us: f64,
    pub trials: u32,
    /// A fused kernel's body ops as they would run alone, by signature.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub parts: Vec<String>,
    #[serde(flatten)]
    pub unknown: Unknown,
}

/// A place where the roofline chose some kernels and the measurements others, decided by
/// running both choices in alternation inside the same program (`smelt tune`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct FusionDecision {
    pub target: String,
    /// What the roofline chose there.
    pub roofline: Vec<DecidedKernel>,
    /// What the measurements chose there.
    pub tuned: Vec<DecidedKernel>,
    /// Whether the tuned kernels replace the roofline's: only when they measured faster
    /// beyond the noise floor.
    pub flipped: bool,
    /// Each side's time in microseconds, and tuned over roofline per round.
    pub roofline_us: Option<Interval>,
    pub tuned_us: Option<Interval>,
    pub ratio: Option<Interval>,
    pub noise_floor: f64,
    pub rounds: u32,
    #[serde(flatten)]
    pub unknown: Unknown,
}

/// One kernel, or one op left unfused (`fused` false), of a [`FusionDecision`].
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct DecidedKernel {
    pub pattern: String,
    pub signature: String,
    pub fused: bool,
}

impl FusionDecision {
    /// The same place and choices as `other` (whatever was measured).
    pub fn same_choice(&self, other: &FusionDecision) -> bool {
        self.target == other.target && self.roofline == other.roofline && self.tuned == other.tuned
    }
}

impl FusionProfile {
    /// Fused over unfused latency: below 1 when fusion pays.
    pub fn fused_ratio(&self) -> Option<f64> {
        if self.fused_latency_ms > 0.0 && self.unfused_latency_ms > 0.0 {
            Some(self.fused_latency_ms / self.unfused_latency_ms)
        } else if self.speedup_factor > 0.0 {
            Some(1.0 / self.speedup_factor)
        } else {
            None
        }
    }
}

impl Profile {
    pub fn new() -> Profile {
        Profile { schema_version: SCHEMA_VERSION, ..Profile::default() }
    }

    pub fn parse(text: &str, path: &str) -> Result<Profile, HardwareError> {
        let mut p: Profile = serde_json::from_str(text).map_err(|e| HardwareError::Syntax {
            origin: path.to_string(),
            what: if e.is_eof() { "truncated" } else { "not a valid calibration profile" },
            reason: e.to_string(),
        })?;
        if p.schema_version > SCHEMA_VERSION {
            return Err(HardwareError::invalid(
                path,
                format!(
                    "schema version {} is newer than this Smelt reads ({SCHEMA_VERSION}); upgrade Smelt",
                    p.schema_version
                ),
            ));
        }
        // Version 0 (unversioned) documents have the same fields; loading upgrades them.
        p.schema_version = SCHEMA_VERSION;
        for (i, f) in p.fusion_profiles.iter().enumerate() {
            if f.fusion_pattern.is_empty() || f.fused_ratio().is_none() {
                return Err(HardwareError::invalid(
                    path,
                    format!("fusion_profiles[{i}] needs `fusion_pattern` and fused/unfused latencies or a speedup"),
                ));
            }
        }
        Ok(p)
    }

    /// Refuses to price `target` with measurements of another machine: a profile labelled for
    /// another target, or (for `host`) measured on another CPU model. Unlabelled documents
    /// (hand-written, older) are taken as they are.
    pub fn check_prices(&self, target: &str, origin: &str) -> Result<(), HardwareError> {
        let measured_for = &self.metadata.target;
        if !measured_for.is_empty() && measured_for != target {
            return Err(HardwareError::invalid(
                origin,
                format!("measured for target '{measured_for}'; it cannot price target '{target}'"),
            ));
        }
        let cpu = &self.metadata.cpu_model;
        if target == "host" && !cpu.is_empty() && *cpu != this_cpu_model() {
            return Err(HardwareError::invalid(
                origin,
                format!(
                    "measured on a '{cpu}', not this machine's '{}'; calibrate here (`smelt calibrate`)",
                    this_cpu_model()
                ),
            ));
        }
        Ok(())
    }

    /// Labels an unlabelled profile as measured for `target` (on this CPU, for `host`), so
    /// [`Profile::check_prices`] keeps its measurements to that machine.
    pub fn label(&mut self, target: &str) {
        if self.metadata.target.is_empty() {
            self.metadata.target = target.to_string();
            if target == "host" {
                self.metadata.cpu_model = this_cpu_model();
            }
        }
    }

    pub fn load(path: &Path) -> Result<Profile, HardwareError> {
        let text = std::fs::read_to_string(path).map_err(|e| HardwareError::io(path, "read", e))?;
        Profile::parse(&text, &path.display().to_string())
    }

    /// Changes the profile at `path` (created when missing) under an exclusive lock on a
    /// sibling `.lock` file: concurrent writers (two `smelt run --record` at once) take turns,
    /// each re-reading what the other wrote, so no record is lost.
    pub fn update<T>(path: &Path, change: impl FnOnce(&mut Profile) -> T) -> Result<T, HardwareError> {
        let mut lock_path = path.as_os_str().to_owned();
        lock_path.push(".lock");
        let lock = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|e| HardwareError::io(&lock_path, "create the lock file", e))?;
        lock.lock().map_err(|e| HardwareError::io(&lock_path, "lock", e))?;
        let mut profile = if path.exists() { Profile::load(path)? } else { Profile::new() };
        let result = change(&mut profile);
        profile.save(path)?;
        Ok(result)
    }

    /// Adds `record`; a kernel measured before on the same target keeps the trial-weighted mean
    /// of the old and the new median, so repeated measurements (`smelt tune` rounds) average
    /// out noise instead of letting the last run decide.
    pub fn record_kernel(&mut self, record: KernelRecord) {
        match self.kernel_records.iter_mut().find(|r| r.signature == record.signature && r.target == record.target) {
            Some(old) => {
                let (a, b) = (old.trials.max(1) as f64, record.trials.max(1) as f64);
                let measured_us = (old.measured_us * a + record.measured_us * b) / (a + b);
                let trials = old.trials.max(1) + record.trials.max(1);
                let kept = std::mem::take(&mut old.unknown);
                *old = KernelRecord { trials, measured_us, ..record };
                keep_unknown(&mut old.unknown, kept);
            }
            None => self.kernel_records.push(record),
        }
    }

    /// Adds `decision`, replacing an earlier one between the same choices.
    pub fn record_decision(&mut self, decision: FusionDecision) {
        match self.fusion_decisions.iter_mut().find(|d| d.same_choice(&decision)) {
            Some(old) => {
                let kept = std::mem::take(&mut old.unknown);
                *old = decision;
                keep_unknown(&mut old.unknown, kept);
            }
            None => self.fusion_decisions.push(decision),
        }
    }

    /// Adds `profile`, replacing an earlier one of the same op and signature.
    pub fn record_operation(&mut self, profile: OperationProfile) {
        match self.operation_profiles.iter_mut().find(|o| o.op == profile.op && o.signature == profile.signature) {
            Some(old) => {
                let kept = std::mem::take(&mut old.unknown);
                *old = profile;
                keep_unknown(&mut old.unknown, kept);
            }
            None => self.operation_profiles.push(profile),
        }
    }

    /// Adds `profile`, replacing an earlier one of the same pattern, operators, input shape and
    /// size.
    pub fn record_fusion(&mut self, profile: FusionProfile) {
        let same = |f: &FusionProfile| {
            f.fusion_pattern == profile.fusion_pattern
                && f.operators == profile.operators
                && f.input_shape == profile.input_shape
                && f.flops == profile.flops
        };
        match self.fusion_profiles.iter_mut().find(|f| same(f)) {
            Some(old) => {
                let kept = std::mem::take(&mut old.unknown);
                *old = profile;
                keep_unknown(&mut old.unknown, kept);
            }
            None => self.fusion_profiles.push(profile),
        }
    }

    /// Writes atomically: readers see the old or the new document, never a partial one.
    pub fn save(&self, path: &Path) -> Result<(), HardwareError> {
        let err = |e: std::io::Error| HardwareError::io(path, "write", e);
        let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
        let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(err)?;
        serde_json::to_writer_pretty(&mut tmp, self).map_err(|e| err(e.into()))?;
        std::io::Write::write_all(&mut tmp, b"\n").map_err(err)?;
        tmp.persist(path).map_err(|e| err(e.error))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unversioned_hand_written_documents_load_and_keep_unknown_fields() {
        let text = r#"{"fusion_profiles": [{"fusion_pattern": "conv_bn_relu", "speedup_factor": 1.13,
                       "my_note": "x"}], "lab": {"room": 4}}"#;
        let p = Profile::parse(text, "p.json").unwrap();
        assert_eq!(p.schema_version, SCHEMA_VERSION);
        assert!((p.fusion_profiles[0].fused_ratio().unwrap() - 1.0 / 1.13).abs() < 1e-12);
        assert!(p.unknown.contains_key("lab"));
        let again = serde_json::to_string(&p).unwrap();
        assert!(again.contains("my_note") && again.contains("room"));
    }

    #[test]
    fn truncated_corrupt_and_newer_documents_are_refused_with_the_path() {
        let full = serde_json::to_string(&Profile::new()).unwrap();
        let error = |text: &str, path: &str| Profile::parse(text, path).unwrap_err();
        let truncated = error(&full[..full.len() / 2], "a.json");
        assert!(matches!(truncated, HardwareError::Syntax { what: "truncated", .. }), "{truncated}");
        assert!(truncated.to_string().starts_with("a.json: truncated"), "{truncated}");
        let corrupt = error(r#"{"fusion_profiles": 7}"#, "b.json").to_string();
        assert!(corrupt.starts_with("b.json: not a valid"), "{corrupt}");
        let newer = error(r#"{"schema_version": 99}"#, "c.json");
        assert!(matches!(newer, HardwareError::Invalid { .. }) && newer.to_string().contains("newer"), "{newer}");
        let incomplete = error(r#"{"fusion_profiles": [{"fusion_pattern": "x"}]}"#, "d.json").to_string();
        assert!(incomplete.contains("fusion_profiles[0]"), "{incomplete}");
    }

    #[test]
    fn concurrent_writers_lose_no_record() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.json");
        std::thread::scope(|s| {
            for writer in 0..4 {
                let path = &path;
                s.spawn(move || {
                    for i in 0..25 {
                        Profile::update(path, |p| {
                            p.record_kernel(KernelRecord {
                                signature: format!("w{writer}k{i}"),
                                measured_us: 1.0,
                                trials: 1,
                                ..Default::default()
                            })
                        })
                        .unwrap();
                    }
                });
            }
        });
        assert_eq!(Profile::load(&path).unwrap().kernel_records.len(), 100);
    }

    #[test]
    fn repeated_measurements_average_by_trials() {
        let mut p = Profile::new();
        let record = |us| KernelRecord { signature: "s".into(), measured_us: us, trials: 10, ..Default::default() };
        p.record_kernel(record(2.0));
        p.record_kernel(record(3.0));
        assert_eq!(p.kernel_records.len(), 1);
        assert_eq!((p.kernel_records[0].measured_us, p.kernel_records[0].trials), (2.5, 20));
    }

    #[test]
    fn re_measured_entries_keep_the_fields_other_tools_added() {
        let text = r#"{"kernel_records": [{"signature": "s", "measured_us": 2.0, "trials": 1, "owner": "lab"}],
                       "fusion_profiles": [{"fusion_pattern": "f", "speedup_factor": 1.5, "note": "x"}]}"#;
        let mut p = Profile::parse(text, "p.json").unwrap();
        p.record_kernel(KernelRecord { signature: "s".into(), measured_us: 4.0, trials: 1, ..Default::default() });
        p.record_fusion(FusionProfile { fusion_pattern: "f".into(), speedup_factor: 2.0, ..Default::default() });
        assert_eq!((p.kernel_records[0].measured_us, &p.kernel_records[0].unknown["owner"]), (3.0, &"lab".into()));
        assert_eq!((p.fusion_profiles[0].speedup_factor, &p.fusion_profiles[0].unknown["note"]), (2.0, &"x".into()));
    }

    #[test]
    fn a_profile_prices_only_the_machine_it_was_measured_on() {
        let mut p = Profile::new();
        assert!(p.check_prices("h100-sxm", "p.json").is_ok(), "unlabelled profiles are taken as they are");
        p.label("host");
        assert_eq!(p.metadata.cpu_model, this_cpu_model());
        assert!(p.check_prices("host", "p.json").is_ok());
        let other = p.check_prices("h100-sxm", "p.json").unwrap_err().to_string();
        assert!(other.starts_with("p.json: measured for target 'host'"), "{other}");
        p.metadata.cpu_model = "another CPU".into();
        let cpu = p.check_prices("host", "p.json").unwrap_err().to_string();
        assert!(cpu.contains("measured on a 'another CPU'"), "{cpu}");
    }

    #[test]
    fn save_then_load_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.json");
        let mut p = Profile::new();
        p.kernel_records.push(KernelRecord {
            signature: "relu(4)->4:f32".into(),
            measured_us: 1.5,
            ..Default::default()
        });
        p.save(&path).unwrap();
        assert_eq!(Profile::load(&path).unwrap(), p);
    }
}
