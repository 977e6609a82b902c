//! Classifies an image tensor with an ONNX model through the library API and prints the five
//! most likely classes, timing the first (compiling) and a second run.
//!
//! ```text
//! cargo run --release --example classify -- ../shared/models/resnet18.onnx \
//!     ../shared/models/resnet18.test_data_set_0/input_0.pb
//! ```
//! Without an input file the image is seeded noise of the model's input shape.

use smelt::{Session, Tensor};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let model = args.next().ok_or("usage: classify MODEL.onnx [INPUT.npy|INPUT.pb]")?;
    let mut session = Session::new(&model)?;
    let input = session.inputs().first().ok_or("the model takes no input")?.clone();
    let x = match args.next() {
        Some(path) => Tensor::read(path)?,
        None => {
            let shape: Vec<u64> = input.shape.iter().map(|d| d.unwrap_or(1)).collect();
            let n = shape.iter().product::<u64>() as usize;
            let mut state = 1u32;
            let noise = (0..n)
                .map(|_| {
                    state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                    (state >> 8) as f32 / (1u32 << 24) as f32 - 0.5
                })
                .collect();
            Tensor::from_vec(shape, noise)?
        }
    };
    for run in ["first run (compiles)", "second run"] {
        let start = std::time::Instant::now();
        let outputs = session.run(&[(&input.name, &x)])?;
        println!("{run}: {:.1} ms", start.elapsed().as_secs_f64() * 1e3);
        let (name, logits) = &outputs[0];
        let scores = logits.as_slice::<f32>().ok_or("expected f32 scores")?;
        let mut ranked: Vec<(usize, f32)> = scores.iter().copied().enumerate().collect();
        ranked.sort_by(|a, b| b.1.total_cmp(&a.1));
        let top: Vec<String> = ranked.iter().take(5).map(|(class, score)| format!("{class} ({score:.3})")).collect();
        println!("  {name}: top-5 classes {}", top.join(", "));
    }
    Ok(())
}
