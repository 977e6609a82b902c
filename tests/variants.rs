//! Kernel variants: measured once, then remembered; taken from a profile; measured again for
//! calibration; forced for tests. One test, since the choices are the process's.

use smelt_runtime::variants::{adopt, choose, chosen, force, remeasure, remeasured};
use std::cell::Cell;
use std::collections::BTreeMap;

#[test]
fn variants_are_measured_once_adopted_from_a_profile_remeasured_and_forced() {
    std::env::set_var("SMELT_CACHE_DIR", "off");
    let probes = Cell::new(0);
    let pick = |key: &str| {
        choose("test-kind", key, &["slow", "fast"], |v| {
            probes.set(probes.get() + 1);
            if v == "slow" {
                2.0
            } else {
                1.0
            }
        })
    };
    assert_eq!(pick("a"), "fast");
    let first = probes.get();
    assert!(first >= 2, "every candidate is timed");
    assert_eq!(pick("a"), "fast");
    assert_eq!(probes.get(), first, "a choice made is not measured again");

    adopt(&BTreeMap::from([
        ("test-kind/b among slow|fast".to_string(), "slow".to_string()),
        ("test-kind/c among slow|fast".to_string(), "gone".to_string()),
    ]));
    assert_eq!(pick("b"), "slow", "a profile's choice wins over probing");
    assert_eq!(probes.get(), first);
    assert_eq!(pick("c"), "fast", "a choice naming no candidate is measured instead");
    assert_eq!(probes.get(), 2 * first);

    remeasure();
    assert_eq!(pick("b"), "fast", "calibration measures again");
    assert_eq!(probes.get(), 3 * first);
    assert_eq!(pick("b"), "fast");
    assert_eq!(probes.get(), 3 * first, "and then remembers");

    force("test-kind", Some("slow"));
    assert_eq!(pick("a"), "slow");
    force("test-kind", None);
    assert_eq!(pick("a"), "fast");
    assert_eq!(chosen().get("test-kind/b among slow|fast").map(String::as_str), Some("fast"));
    assert_eq!(
        remeasured().into_iter().collect::<Vec<_>>(),
        [
            ("test-kind/a among slow|fast".to_string(), "fast".to_string()),
            ("test-kind/b among slow|fast".to_string(), "fast".to_string())
        ],
        "what calibration stores: the choices measured since"
    );
}
