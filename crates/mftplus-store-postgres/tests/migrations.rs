//! Both backends must ship the same migration names, in the same order: the cloud reports them,
//! and a schema change made on one backend only would be a bug.

use std::path::{Path, PathBuf};

use mftplus_store_postgres::MIGRATIONS;

fn names_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap_or_else(|err| panic!("{}: {err}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "sql"))
        .map(|path| path.file_stem().unwrap().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

fn crate_dir(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(name)
}

#[test]
fn both_backends_have_the_same_migrations() {
    let postgres = names_in(&crate_dir("mftplus-store-postgres").join("migrations"));
    let sqlite = names_in(&crate_dir("mftplus-store-sqlite").join("migrations"));
    assert!(!postgres.is_empty());
    assert_eq!(postgres, sqlite, "migrations/ of the two backends differ");
}

#[test]
fn embedded_migrations_match_the_directory() {
    let on_disk = names_in(&crate_dir("mftplus-store-postgres").join("migrations"));
    let embedded: Vec<&str> = MIGRATIONS.iter().map(|(name, _)| *name).collect();
    assert_eq!(
        embedded, on_disk,
        "every file under migrations/ must be in MIGRATIONS, in order"
    );
}

#[test]
fn names_are_numbered_and_ordered() {
    let embedded: Vec<&str> = MIGRATIONS.iter().map(|(name, _)| *name).collect();
    for (index, name) in embedded.iter().enumerate() {
        let number = format!("{:04}_", index + 1);
        assert!(
            name.starts_with(&number),
            "{name} should start with {number}"
        );
    }
}
