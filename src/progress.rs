//! Progress of long commands (`calibrate`, `tune`, `conformance`): one bar on stderr, drawn
//! only when stderr is a terminal, so logs and pipes stay clean.

#![deny(missing_docs)]

/// A bar of `len` steps in the commands' one style.
pub fn bar(len: u64) -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::new(len);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{elapsed:>4} [{bar:30}] {pos}/{len} {msg}")
            .expect("a valid template")
            .progress_chars("=> "),
    );
    bar
}
