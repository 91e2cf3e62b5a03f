//! The corpus of broken files in `tests/data/broken/` (SPEC §8 commit check): each file starts
//! with one `# expect: LINE:COL: FRAGMENT` comment per error it must give, and the check must
//! give exactly those errors, each at that line and column with that text in its message.

use std::path::Path;

use tessera_connector::{Diagnostic, check, parse};

struct Expect {
    line: usize,
    col: usize,
    fragment: String,
}

fn expectations(name: &str, text: &str) -> Vec<Expect> {
    let mut out = Vec::new();
    for line in text.lines() {
        let Some(rest) = line.strip_prefix("# expect: ") else {
            break;
        };
        let mut parts = rest.splitn(3, ':');
        let (Some(l), Some(c), Some(fragment)) = (parts.next(), parts.next(), parts.next()) else {
            panic!("{name}: malformed expectation {line:?}");
        };
        out.push(Expect {
            line: l
                .parse()
                .unwrap_or_else(|_| panic!("{name}: bad line in {line:?}")),
            col: c
                .parse()
                .unwrap_or_else(|_| panic!("{name}: bad column in {line:?}")),
            fragment: fragment.trim_start().to_owned(),
        });
    }
    assert!(!out.is_empty(), "{name}: no `# expect:` line");
    out
}

fn matches(d: &Diagnostic, e: &Expect) -> bool {
    d.line == e.line && d.col == e.col && d.problem.to_string().contains(&e.fragment)
}

#[test]
fn every_broken_file_gives_its_errors() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/broken");
    let mut entries: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "conf"))
        .collect();
    entries.sort();
    assert!(entries.len() >= 50, "the corpus shrank: {}", entries.len());
    let mut failures = Vec::new();
    for path in &entries {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let text = std::fs::read_to_string(path).unwrap();
        let expected = expectations(&name, &text);
        let report = check(&text);
        let errors: Vec<&Diagnostic> = report.errors().collect();
        let all_found = expected
            .iter()
            .all(|e| errors.iter().any(|d| matches(d, e)));
        if !all_found || errors.len() != expected.len() {
            failures.push(format!(
                "{name}:\n  expected:\n{}\n  got:\n{}",
                expected
                    .iter()
                    .map(|e| format!("    {}:{}: {}", e.line, e.col, e.fragment))
                    .collect::<Vec<_>>()
                    .join("\n"),
                report
                    .diagnostics
                    .iter()
                    .map(|d| format!("    {d}"))
                    .collect::<Vec<_>>()
                    .join("\n"),
            ));
        }
        // `parse` refuses the same file with the same errors.
        match parse(&text) {
            Ok(_) => failures.push(format!("{name}: parse accepted it")),
            Err(e) => assert_eq!(e.errors, errors.into_iter().cloned().collect::<Vec<_>>()),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}
