//! `smelt`: user commands around the compiler.

use clap::{Parser, Subcommand};
use std::process::ExitCode;

#[derive(Parser)]
#[command(name = "smelt", version, about = "Smelt: a deep-learning graph compiler with measured fusion costs")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// List the operations of the smelt dialect with their operands, attributes and summaries.
    Ops,
    /// Write the dialect as IRDL, for `mlir-opt --irdl-file=...`.
    Irdl {
        /// output file ('-' for stdout)
        #[arg(short, default_value = "-")]
        o: String,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Ops => {
            for def in smelt_compiler::dialect::all_ops() {
                let operands: Vec<String> = def.operands.iter().map(slot).collect();
                let attrs: Vec<String> =
                    def.attributes.iter().map(|a| format!("{}{}", a.name, if a.required { "" } else { "?" })).collect();
                println!("{:<26} ({}) {{{}}}", def.name, operands.join(", "), attrs.join(", "));
                println!("{:<26} {}", "", def.summary);
            }
            ExitCode::SUCCESS
        }
        Command::Irdl { o } => {
            let text = smelt_compiler::irdl::generate();
            if o == "-" {
                print!("{text}");
            } else if let Err(e) = std::fs::write(&o, text) {
                eprintln!("{o}: error: cannot write: {e}");
                return ExitCode::FAILURE;
            }
            ExitCode::SUCCESS
        }
    }
}

fn slot(s: &smelt_compiler::dialect::SlotDef) -> String {
    use smelt_compiler::dialect::Arity;
    match s.arity {
        Arity::One => s.name.to_string(),
        Arity::Optional => format!("{}?", s.name),
        Arity::Variadic => format!("{}...", s.name),
    }
}
