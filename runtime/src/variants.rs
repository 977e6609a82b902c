//! Kernel variants chosen by measurement on the machine that runs them.
//!
//! Where more than one way computes the same thing (a 3x3 convolution by Winograd or by
//! im2col, ...), which is faster depends on the CPU, the shape and the threads. [`choose`]
//! asks, in order:
//! 1. an override: the environment variable `SMELT_VARIANT_<KIND>` (`SMELT_VARIANT_CONV3X3=im2col`),
//!    or [`force`] from code (tests compare every variant against the reference this way);
//! 2. what this process already chose for the same kind and key, or adopted from a
//!    calibration profile ([`adopt`]: `smelt calibrate` stores its choices per CPU);
//! 3. the cache of this CPU's earlier choices: `$SMELT_CACHE_DIR` (else
//!    `$XDG_CACHE_HOME/smelt`, else `~/.cache/smelt`), file `variants-<cpu>.json`, keyed by
//!    the CPU model and the widest vector ISA, so no machine's measurement decides for
//!    another's (`SMELT_CACHE_DIR=off` keeps choices in memory only);
//! 4. a probe: the candidates timed in alternation on the real shape, decided by
//!    [`smelt_hardware::stats`]: the first candidate is the default, and another replaces it only when it
//!    measured faster in every round; the choice is kept in memory and in the cache.
//!
//! Every choice made is reported ([`chosen`]), so `smelt run --json` says which ran.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Mutex, OnceLock};

/// Choices by `kind/key among candidates` (forced ones by kind), made or loaded in this process.
#[derive(Default)]
struct Choices {
    forced: BTreeMap<String, String>,
    made: BTreeMap<String, String>,
    loaded: bool,
    /// Set by [`remeasure`]: only choices measured since count.
    fresh: Option<std::collections::BTreeSet<String>>,
}

fn choices() -> &'static Mutex<Choices> {
    static CHOICES: OnceLock<Mutex<Choices>> = OnceLock::new();
    CHOICES.get_or_init(Mutex::default)
}

/// The CPU as the cache names it: its model name and widest vector ISA.
pub fn cpu_id() -> String {
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|text| {
            text.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_string())
        })
        .unwrap_or_else(|| std::env::consts::ARCH.to_string());
    format!("{model} [{}]", crate::vmath::isa())
}

fn cache_file() -> Option<PathBuf> {
    let dir = match std::env::var_os("SMELT_CACHE_DIR") {
        Some(d) if d == "off" => return None,
        Some(d) => PathBuf::from(d),
        None => match (std::env::var_os("XDG_CACHE_HOME"), std::env::var_os("HOME")) {
            (Some(x), _) => PathBuf::from(x).join("smelt"),
            (None, Some(h)) => PathBuf::from(h).join(".cache").join("smelt"),
            _ => return None,
        },
    };
    let id: String = cpu_id().chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '-' }).collect();
    Some(dir.join(format!("variants-{id}.json")))
}

fn load(c: &mut Choices) {
    if c.loaded {
        return;
    }
    c.loaded = true;
    let Some(path) = cache_file() else { return };
    let Ok(text) = std::fs::read_to_string(&path) else { return };
    // A cache this version cannot read is ignored (and rewritten on the next probe).
    if let Ok(made) = serde_json::from_str::<BTreeMap<String, String>>(&text) {
        c.made.extend(made);
    }
}

/// Best effort: a cache that cannot be written costs a probe in the next process, no more.
fn save(made: &BTreeMap<String, String>) {
    let Some(path) = cache_file() else { return };
    let Some(dir) = path.parent() else { return };
    if std::fs::create_dir_all(dir).is_err() {
        return;
    }
    if let Ok(mut tmp) = tempfile::NamedTempFile::new_in(dir) {
        let ok = serde_json::to_writer_pretty(&mut tmp, made).is_ok();
        if ok {
            let _ = tmp.persist(&path);
        }
    }
}

fn env_override(kind: &str) -> Option<String> {
    let var = format!("SMELT_VARIANT_{}", kind.to_ascii_uppercase().replace(['-', '.'], "_"));
    std::env::var(var).ok().filter(|v| !v.is_empty())
}

/// Forces every later choice of `kind` in this process to `variant` (`None`: measure again).
pub fn force(kind: &str, variant: Option<&str>) {
    let mut c = choices().lock().unwrap_or_else(|e| e.into_inner());
    match variant {
        Some(v) => {
            c.forced.insert(kind.to_string(), v.to_string());
        }
        None => {
            c.forced.remove(kind);
        }
    }
}

/// Timed rounds of a probe: the fewest whose range is a 95% interval of the median ratio.
const PROBE_ROUNDS: usize = 6;

/// The variant of `kind` for `key` among `candidates` (see the module documentation);
/// `seconds(candidate)` times one run of a candidate on the real shape.
pub fn choose(kind: &str, key: &str, candidates: &[&str], mut seconds: impl FnMut(&str) -> f64) -> String {
    let forced = env_override(kind).or_else(|| {
        let c = choices().lock().unwrap_or_else(|e| e.into_inner());
        c.forced.get(kind).cloned()
    });
    if let Some(v) = forced.filter(|v| candidates.contains(&v.as_str())) {
        return v;
    }
    // The candidates are part of the key: a choice made among fewer does not stand for more.
    let full = format!("{kind}/{key} among {}", candidates.join("|"));
    {
        let mut c = choices().lock().unwrap_or_else(|e| e.into_inner());
        load(&mut c);
        let earlier = c.fresh.as_ref().is_none_or(|measured| measured.contains(&full));
        if let Some(v) = c.made.get(&full).filter(|v| earlier && candidates.contains(&v.as_str())) {
            return v.clone();
        }
    }
    // One warm-up round, then timed rounds decided as `stats` decides: another candidate
    // replaces the first only when it is faster in every way the rounds can tell.
    let mut samples = vec![Vec::with_capacity(PROBE_ROUNDS); candidates.len()];
    for round in 0..=PROBE_ROUNDS {
        for (i, c) in candidates.iter().enumerate() {
            let t = seconds(c);
            if round > 0 {
                samples[i].push(t);
            }
        }
    }
    let winner = (1..candidates.len())
        .map(|i| (i, smelt_hardware::stats::Comparison::of(&samples[0], &samples[i])))
        .filter(|(_, c)| c.replaces_default(0.0))
        .min_by(|a, b| a.1.ratio.median.total_cmp(&b.1.ratio.median))
        .map_or(0, |(i, _)| i);
    let v = candidates[winner].to_string();
    let mut c = choices().lock().unwrap_or_else(|e| e.into_inner());
    c.made.insert(full.clone(), v.clone());
    if let Some(measured) = &mut c.fresh {
        measured.insert(full);
    }
    save(&c.made);
    v
}

/// From now on this process measures every choice again instead of taking an earlier one
/// (forced variants still win); what it measures replaces the cache's entries. For
/// `smelt calibrate`.
pub fn remeasure() {
    let mut c = choices().lock().unwrap_or_else(|e| e.into_inner());
    load(&mut c);
    c.fresh = Some(Default::default());
}

/// Takes `choices` (keyed as [`chosen`] lists them) ahead of the cache: a calibration
/// profile's choices for this CPU.
pub fn adopt(choices_by_key: &BTreeMap<String, String>) {
    let mut c = choices().lock().unwrap_or_else(|e| e.into_inner());
    load(&mut c);
    c.made.extend(choices_by_key.iter().map(|(k, v)| (k.clone(), v.clone())));
}

/// The choices measured since [`remeasure`], by `kind/key among candidates`.
pub fn remeasured() -> BTreeMap<String, String> {
    let c = choices().lock().unwrap_or_else(|e| e.into_inner());
    let Some(measured) = &c.fresh else { return BTreeMap::new() };
    c.made.iter().filter(|(k, _)| measured.contains(*k)).map(|(k, v)| (k.clone(), v.clone())).collect()
}

/// Every choice this process made or loaded, by `kind/key among candidates`.
pub fn chosen() -> BTreeMap<String, String> {
    choices().lock().unwrap_or_else(|e| e.into_inner()).made.clone()
}
