//! Every example file in the repository parses and compiles (hickory's test_reject_unknown_fields).

use std::path::Path;

#[test]
fn example_files_are_valid() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples");
    let node = std::fs::read_to_string(dir.join("node.toml")).unwrap();
    tessera_config::parse_toml::<tessera_config::NodeConfig>(&node, "node.toml").unwrap();
    let sys = std::fs::read_to_string(dir.join("system.toml")).unwrap();
    let cfg: tessera_config::SystemConfig =
        tessera_config::parse_toml(&sys, "system.toml").unwrap();
    let published = tessera_engine::compile(&cfg, 1).unwrap();
    assert_eq!(published.clients().len(), 2);
    let branch = published
        .tls_client_for(
            "198.51.100.20".parse().unwrap(),
            &["fw1.branch.example.com".into()],
        )
        .expect("the example's RadSec client");
    assert_eq!(branch.name, "branch-fortigate");
    assert_eq!(
        published.method("truid").unwrap().accept_attributes.len(),
        3
    );
}
