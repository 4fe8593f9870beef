//! `mftctl completions SHELL` and the hidden `mftctl man --out DIR`: shell completion scripts
//! and man pages generated from the same clap grammar the parser uses (`cli.rs`), so they
//! cannot drift from it. Neither needs a server, a config file or credentials: they answer
//! before any context is loaded. `packaging/build-deb.sh` calls both to put the files in the
//! `mftctl` package (docs/packages.md).

use std::path::{Path, PathBuf};

use clap::{Args, CommandFactory};
use clap_complete::Shell;

use crate::cli::{Cli, Command};
use crate::error::CliError;
use crate::output;

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell to print the completion script for
    #[arg(value_enum)]
    pub shell: Shell,
}

#[derive(Debug, Args)]
pub struct ManArgs {
    /// Directory to write mftctl.1 and one page per subcommand (mftctl-users-create.1, …)
    /// into; created when missing
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
}

/// Answers the commands that need nothing but the grammar; `None` for every other command.
pub(crate) fn run_local(command: &Command) -> Option<Result<u8, CliError>> {
    match command {
        Command::Completions(args) => Some(print(args)),
        Command::Man(args) => Some(man(args)),
        _ => None,
    }
}

pub(crate) fn print(args: &CompletionsArgs) -> Result<u8, CliError> {
    output::emit_raw(&script(args.shell))?;
    Ok(0)
}

pub(crate) fn man(args: &ManArgs) -> Result<u8, CliError> {
    let written = write_man_pages(&args.out)?;
    output::note(&format!(
        "wrote {} man pages to {}",
        written.len(),
        args.out.display()
    ));
    Ok(0)
}

/// The completion script for `shell`, as the shell's completion directory expects it.
pub fn script(shell: Shell) -> Vec<u8> {
    let mut command = Cli::command();
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut command, "mftctl", &mut out);
    out
}

/// Writes `mftctl.1` and a page for every visible subcommand at any depth
/// (`mftctl-hubs-deploy-keys-create.1`) into `dir`; returns the files written.
pub fn write_man_pages(dir: &Path) -> Result<Vec<PathBuf>, CliError> {
    std::fs::create_dir_all(dir)
        .map_err(|e| CliError::io(format!("cannot create {}", dir.display()), e))?;
    let mut command = Cli::command().disable_help_subcommand(true);
    // Building names every subcommand after its path (`mftctl-users-create`).
    command.build();
    let date = page_date(std::env::var("SOURCE_DATE_EPOCH").ok().as_deref());
    let mut written = Vec::new();
    write_page(command, dir, &date, &mut written)?;
    Ok(written)
}

/// The date in the pages' footer: `SOURCE_DATE_EPOCH` when set (reproducible packages, set
/// by `packaging/build-deb.sh`), else today.
fn page_date(source_date_epoch: Option<&str>) -> String {
    let at = source_date_epoch
        .and_then(|s| s.trim().parse::<i64>().ok())
        .and_then(|secs| chrono::DateTime::from_timestamp(secs, 0))
        .unwrap_or_else(chrono::Utc::now);
    at.format("%Y-%m-%d").to_string()
}

fn write_page(
    command: clap::Command,
    dir: &Path,
    date: &str,
    written: &mut Vec<PathBuf>,
) -> Result<(), CliError> {
    for sub in command.get_subcommands().filter(|s| !s.is_hide_set()) {
        write_page(sub.clone(), dir, date, written)?;
    }
    // An empty date would shift the .TH arguments (the manual's name would land in the footer).
    let page = clap_mangen::Man::new(command).date(date).manual("MFTPlus");
    let path = page
        .generate_to(dir)
        .map_err(|e| CliError::io(format!("cannot write a man page into {}", dir.display()), e))?;
    written.push(path);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn visible_subcommands() -> Vec<String> {
        Cli::command()
            .get_subcommands()
            .filter(|s| !s.is_hide_set())
            .map(|s| s.get_name().to_string())
            .collect()
    }

    #[test]
    fn every_shell_script_names_the_real_subcommands() {
        let names = visible_subcommands();
        assert!(names.len() > 20, "{names:?}");
        for shell in [Shell::Bash, Shell::Zsh, Shell::Fish] {
            let text = String::from_utf8(script(shell)).unwrap();
            for name in names.iter().chain(&["deploy-keys".to_string()]) {
                assert!(text.contains(name.as_str()), "{shell}: no {name}");
            }
            assert!(text.contains("server"), "{shell}: no --server");
        }
        let bash = String::from_utf8(script(Shell::Bash)).unwrap();
        assert!(
            bash.contains("complete -F _mftctl"),
            "not a bash completion"
        );
    }

    #[test]
    fn the_pages_are_dated_from_source_date_epoch() {
        assert_eq!(page_date(Some("1700000000")), "2023-11-14");
        assert_eq!(page_date(Some("junk")).len(), 10);
    }

    #[test]
    fn man_pages_cover_every_visible_subcommand_and_render() {
        let dir = tempfile::tempdir().unwrap();
        let written = write_man_pages(dir.path()).unwrap();
        for page in [
            "mftctl.1",
            "mftctl-users.1",
            "mftctl-users-create.1",
            "mftctl-hubs-deploy-keys-create.1",
            "mftctl-completions.1",
        ] {
            assert!(dir.path().join(page).is_file(), "no {page}");
        }
        assert!(
            !dir.path().join("mftctl-man.1").exists(),
            "hidden page written"
        );
        assert_eq!(
            written.len(),
            std::fs::read_dir(dir.path()).unwrap().count()
        );
        let top = std::fs::read_to_string(dir.path().join("mftctl.1")).unwrap();
        assert!(
            top.starts_with(".ie") || top.contains(".TH mftctl 1"),
            "{top}"
        );
        for name in visible_subcommands() {
            assert!(top.contains(&name), "mftctl.1 does not list {name}");
        }
        render(&dir.path().join("mftctl.1"));
        render(&dir.path().join("mftctl-send.1"));
    }

    /// Renders with groff as man(1) would (UTF-8 through preconv), refusing any warning;
    /// skipped loudly without groff.
    fn render(page: &Path) {
        let out = match std::process::Command::new("groff")
            .args(["-k", "-man", "-Tutf8", "-ww", "-P-cbou"])
            .arg(page)
            .output()
        {
            Ok(out) => out,
            Err(_) => {
                eprintln!(
                    "\n!!!!! SKIPPED: no groff, {} NOT rendered !!!!!\n",
                    page.display()
                );
                return;
            }
        };
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success() && stderr.trim().is_empty(),
            "{}: {stderr}",
            page.display()
        );
        let text = String::from_utf8_lossy(&out.stdout);
        let header = text.lines().next().unwrap_or_default();
        assert!(header.contains("MFTPlus"), "{header}");
        assert!(
            text.contains("SYNOPSIS") && text.contains("mftctl"),
            "{text}"
        );
    }
}
