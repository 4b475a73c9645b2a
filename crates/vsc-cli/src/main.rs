//! `vsc`: the one binary — server, operator commands, benchmarks, the authenticator and the card client.

mod admin;
mod authenticator;
mod bench;
mod bench_abuse;
mod bench_import;
mod bench_login;
mod bench_search;
mod bench_sign;
mod card;
mod card_sign;
mod cli;

use std::process::ExitCode;

use clap::Parser;

use cli::{Cli, Command, ConfigCommand};

fn init_tracing(default: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("VSC_LOG")
        .or_else(|_| tracing_subscriber::EnvFilter::try_from_default_env())
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).try_init();
}

/// A command-line usage error as one line (`error: …; see --help`), like every other failure;
/// help and version go to stdout as clap prints them.
fn parse_args() -> Result<Cli, ExitCode> {
    use clap::error::ErrorKind;
    match Cli::try_parse() {
        Ok(cli) => Ok(cli),
        Err(e) if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) => {
            let _ = e.print();
            Err(ExitCode::SUCCESS)
        }
        Err(e) if e.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            let _ = e.print();
            Err(ExitCode::from(2))
        }
        Err(e) => {
            let text = e.render().to_string();
            let message = text.split("\n\nUsage:").next().unwrap_or_default();
            let message = message.split("\n\nFor more information").next().unwrap_or_default();
            let message = message.strip_prefix("error: ").unwrap_or(message);
            eprintln!("error: {}; see --help", message.split_whitespace().collect::<Vec<_>>().join(" "));
            Err(ExitCode::from(2))
        }
    }
}

fn main() -> ExitCode {
    let cli = match parse_args() {
        Ok(cli) => cli,
        Err(code) => return code,
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(run(cli));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // One line, no backtrace: the message already names what to fix.
            eprintln!("error: {}", format!("{e:#}").replace('\n', " "));
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve => {
            init_tracing("info,sqlx=warn,tower_http=info");
            let config = cli.global.load()?;
            let server = vsc_server::serve::Server::bind(config).await?;
            server.run(vsc_server::serve::shutdown_signal()).await?;
            Ok(())
        }
        Command::Admin(cmd) => {
            init_tracing("warn");
            admin::run(&cli.global, cmd).await
        }
        Command::Bench(cmd) => {
            // Bulk loads are slow statements by design: no multi-megabyte statement in the log.
            init_tracing("warn,sqlx::query=error");
            bench::run(cmd).await
        }
        Command::Authenticator(args) => {
            init_tracing("warn");
            authenticator::run(args).await
        }
        Command::Card(args) => {
            init_tracing("warn");
            card::run(args).await
        }
        Command::Config(ConfigCommand::Example) => {
            print!("{}", vsc_server::Config::example());
            Ok(())
        }
        Command::Config(ConfigCommand::Check { file, json }) => {
            let c = vsc_server::Config::load(Some(&file), &Default::default()).map_err(anyhow::Error::msg)?;
            if json {
                let out = serde_json::json!({
                    "file": file.display().to_string(), "valid": true,
                    "listen": c.listen.to_string(), "data_dir": c.data_dir.display().to_string(),
                });
                println!("{out}");
            } else {
                println!("{} is valid (listen {}, data dir {})", file.display(), c.listen, c.data_dir.display());
            }
            Ok(())
        }
    }
}
