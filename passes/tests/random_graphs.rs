//! Property tests on randomly built programs: the printer's output parses back to the same text,
//! the arena's invariants hold, and every generic pass keeps the program valid and never
//! changes what a constant program computes.

use proptest::prelude::*;
use smelt_compiler::attributes::{Attribute, DenseElements};
use smelt_compiler::builder::{add_function, Builder};
use smelt_compiler::ir::OpSpec;
use smelt_compiler::literal::Literal;
use smelt_compiler::parser::parse_module;
use smelt_compiler::printer::{print_module, PrintOptions};
use smelt_compiler::verifier::verify;
use smelt_compiler::{ElementType, Location, Module, TensorType, Type};
use smelt_passes::options::Options;
use smelt_passes::registry::create;

/// A recipe for one op: which op, and which earlier values it reads (indices modulo the count).
#[derive(Clone, Debug)]
enum Step {
    Unary(&'static str, usize),
    Binary(&'static str, usize, usize),
    Constant(Vec<i64>),
    Transpose(usize),
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        (prop::sample::select(vec!["smelt.neg", "smelt.abs", "smelt.relu"]), any::<usize>())
            .prop_map(|(o, a)| Step::Unary(o, a)),
        (
            prop::sample::select(vec!["smelt.add", "smelt.sub", "smelt.mul", "smelt.max", "smelt.min"]),
            any::<usize>(),
            any::<usize>()
        )
            .prop_map(|(o, a, b)| Step::Binary(o, a, b)),
        prop::collection::vec(-50i64..50, 6).prop_map(Step::Constant),
        any::<usize>().prop_map(Step::Transpose),
    ]
}

/// Builds `func.func @main() -> (i64 tensors)` from the steps: a constant program whose
/// results canonicalization can compute, so folding is checked against direct evaluation.
fn build(steps: &[Step], with_input: bool) -> Module {
    let mut m = Module::default();
    let ty = Type::tensor(&[2, 3], ElementType::I64);
    let inputs = if with_input { vec![ty.clone()] } else { vec![] };
    let (_, entry) = add_function(&mut m, "main", inputs, vec![], Location::Unknown);
    let mut b = Builder::at_end(&mut m, entry);
    let seed = DenseElements::from_i64(TensorType::of(&[2, 3], ElementType::I64), &[1, -2, 3, -4, 5, -6]);
    let seed_op = b.insert(OpSpec::new("smelt.constant").attr("value", Attribute::Dense(seed)).results([ty.clone()]));
    let mut vals = vec![b.module.op(seed_op).result()];
    vals.extend(b.module.block(entry).args().iter().copied());
    for s in steps {
        let pick = |i: usize| vals[i % vals.len()];
        let v = match s {
            Step::Unary(op, a) => b.value(op, &[pick(*a)], &[]),
            Step::Binary(op, x, y) => b.value(op, &[pick(*x), pick(*y)], &[]),
            Step::Constant(data) => {
                let d = DenseElements::from_i64(TensorType::of(&[2, 3], ElementType::I64), data);
                let op =
                    b.insert(OpSpec::new("smelt.constant").attr("value", Attribute::Dense(d)).results([ty.clone()]));
                Ok(b.module.op(op).result())
            }
            Step::Transpose(a) => {
                // Two transposes keep the [2, 3] shape so every value stays combinable.
                let t = b.value("smelt.transpose", &[pick(*a)], &[("perm", Attribute::I64Array(vec![1, 0]))]).unwrap();
                b.value("smelt.transpose", &[t], &[("perm", Attribute::I64Array(vec![1, 0]))])
            }
        };
        vals.push(v.expect("well-typed by construction"));
    }
    let last = *vals.last().unwrap();
    b.insert(OpSpec::new("func.return").operands([last]));
    // The signature returns what the body returns.
    let func = b.module.functions()[0];
    if let Some(Attribute::Type(Type::Function(ft))) = b.module.op(func).attr("function_type").cloned() {
        let mut ft = *ft;
        ft.results = vec![ty];
        b.module.op_mut(func).attributes.insert("function_type".into(), Attribute::Type(Type::Function(Box::new(ft))));
    }
    m
}

/// The value the function returns, by folding everything (the program is constant).
fn returned_constant(m: &Module) -> Option<Literal> {
    let func = m.functions()[0];
    let entry = m.body_of(func);
    let ret = m.block_terminator(entry)?;
    let v = m.op(ret).operands()[0];
    let def = m.defining_op(v)?;
    let d = m.op(def).attr("value")?.as_dense()?;
    Literal::from_dense(d, &m.resources)
}

/// Direct evaluation of the recipe, independent of the fold hooks' broadcasting machinery.
fn evaluate(steps: &[Step]) -> Vec<i64> {
    let mut vals: Vec<Vec<i64>> = vec![vec![1, -2, 3, -4, 5, -6]];
    for s in steps {
        let pick = |i: usize| vals[i % vals.len()].clone();
        let v: Vec<i64> = match s {
            Step::Unary(op, a) => pick(*a)
                .iter()
                .map(|&x| match *op {
                    "smelt.neg" => -x,
                    "smelt.abs" => x.abs(),
                    _ => x.max(0),
                })
                .collect(),
            Step::Binary(op, x, y) => pick(*x)
                .iter()
                .zip(pick(*y))
                .map(|(&a, b)| match *op {
                    "smelt.add" => a + b,
                    "smelt.sub" => a - b,
                    "smelt.mul" => a * b,
                    "smelt.max" => a.max(b),
                    _ => a.min(b),
                })
                .collect(),
            Step::Constant(d) => d.clone(),
            Step::Transpose(a) => pick(*a),
        };
        vals.push(v);
    }
    vals.pop().unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn printed_random_programs_round_trip(steps in prop::collection::vec(step(), 1..24)) {
        let m = build(&steps, true);
        prop_assert!(verify(&m).is_ok());
        m.check_invariants().unwrap();
        for options in [PrintOptions::default(), PrintOptions { debug_info: true }] {
            let text = print_module(&m, options);
            let reparsed = parse_module(&text, "random.mlir").unwrap();
            prop_assert_eq!(print_module(&reparsed, options), text);
        }
    }

    #[test]
    fn passes_keep_programs_valid_and_fold_to_the_right_value(steps in prop::collection::vec(step(), 1..24)) {
        // Small magnitudes keep products far from overflow, where folding rightly refuses.
        let expected = evaluate(&steps);
        prop_assume!(expected.iter().all(|v| v.abs() < 1 << 40));
        for pass in ["cse", "dce", "shape-inference", "fold", "canonicalize"] {
            let mut m = build(&steps, true);
            create(pass, &Options::default()).unwrap().run(&mut m).unwrap();
            prop_assert!(verify(&m).is_ok(), "{} broke the program", pass);
            m.check_invariants().unwrap();
        }
        let mut m = build(&steps, false);
        create("canonicalize", &Options::default()).unwrap().run(&mut m).unwrap();
        let folded = returned_constant(&m).expect("a constant program folds completely");
        prop_assert_eq!(folded.to_i64(), expected);
    }
}
