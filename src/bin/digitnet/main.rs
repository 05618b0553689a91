//! `digitnet`: the command-line front end: data (info, show, download), training, evaluation
//! and prediction.

mod augment_arg;
mod backend_arg;
mod backends_cmd;
mod cli;
mod data_args;
mod download;
mod eval_cmd;
mod export_cmd;
mod import_cmd;
mod info;
mod logits_csv;
mod model_source;
mod predict_cmd;
mod report;
#[cfg(feature = "serve")]
mod serve;
mod show;
mod train_cmd;

use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = cli::Cli::parse();
    let result = match cli.command {
        cli::Command::Info(args) => info::run(&args),
        cli::Command::Show(args) => show::run(&args),
        cli::Command::Download(args) => download::run(&args),
        cli::Command::Train(args) => train_cmd::run(&args),
        cli::Command::Eval(args) => eval_cmd::run(&args),
        cli::Command::Predict(args) => predict_cmd::run(&args),
        cli::Command::Import(args) => import_cmd::run(&args),
        cli::Command::Export(args) => export_cmd::run(&args),
        cli::Command::Backends => backends_cmd::run(),
        #[cfg(feature = "serve")]
        cli::Command::Serve(args) => serve::run(args),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        // `digitnet info | head` closes the pipe early: that is not an error worth reporting.
        Err(err) if is_broken_pipe(&err) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {}", error_message(&err));
            std::process::ExitCode::FAILURE
        }
    }
}

/// The error and its causes joined by ": ", leaving out a cause whose text the message already
/// holds (digitnet's errors quote their I/O cause, e.g. "x.png: open failed: No such file...").
fn error_message(err: &anyhow::Error) -> String {
    let mut message = String::new();
    for cause in err.chain() {
        let text = cause.to_string();
        if message.contains(&text) {
            continue;
        }
        if !message.is_empty() {
            message.push_str(": ");
        }
        message.push_str(&text);
    }
    message
}

fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
    })
}
