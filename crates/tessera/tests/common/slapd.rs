//! A real OpenLDAP `slapd` on loopback with a small tree, for the directory tests.

use super::{free_port, run_with_timeout};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const BASE: &str = "dc=example,dc=com";
pub const SERVICE_DN: &str = "uid=svc-tessera,ou=people,dc=example,dc=com";
pub const SERVICE_PASSWORD: &str = "svc-password-123";

/// The tree: alice (in vpn-users, with mail and mobile), bob (no groups), the service
/// account, and a user whose name holds filter metacharacters.
const TREE: &str = "\
dn: dc=example,dc=com
objectClass: dcObject
objectClass: organization
o: Example
dc: example

dn: ou=people,dc=example,dc=com
objectClass: organizationalUnit
ou: people

dn: ou=groups,dc=example,dc=com
objectClass: organizationalUnit
ou: groups

dn: uid=svc-tessera,ou=people,dc=example,dc=com
objectClass: inetOrgPerson
uid: svc-tessera
cn: tessera service
sn: service
userPassword: svc-password-123

dn: uid=alice,ou=people,dc=example,dc=com
objectClass: inetOrgPerson
uid: alice
cn: Alice Andersson
sn: Andersson
mail: alice@example.com
mobile: +46 70 123 45 12
userPassword: alice-password

dn: uid=bob,ou=people,dc=example,dc=com
objectClass: inetOrgPerson
uid: bob
cn: Bob Berg
sn: Berg
mail: bob@example.com
userPassword: bob-password

dn: uid=al*,ou=people,dc=example,dc=com
objectClass: inetOrgPerson
uid: al*
cn: Star
sn: Star
userPassword: star-password

dn: cn=vpn-users,ou=groups,dc=example,dc=com
objectClass: groupOfNames
cn: vpn-users
member: uid=alice,ou=people,dc=example,dc=com

dn: cn=staff,ou=groups,dc=example,dc=com
objectClass: groupOfNames
cn: staff
member: uid=alice,ou=people,dc=example,dc=com
member: uid=bob,ou=people,dc=example,dc=com
";

pub struct Slapd {
    pub dir: PathBuf,
    pub port: u16,
    /// The ldaps:// port, when started with TLS.
    pub tls_port: Option<u16>,
    child: Option<Child>,
}

/// A test CA and a server certificate it signed for 127.0.0.1 and localhost, written as
/// `ca.pem`, `cert.pem` and `key.pem` into `dir`.
pub fn make_tls_files(dir: &std::path::Path, ca_name: &str) {
    use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
    std::fs::create_dir_all(dir).unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, ca_name);
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
    let leaf_key = KeyPair::generate().unwrap();
    let mut leaf_params =
        CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()]).unwrap();
    leaf_params
        .distinguished_name
        .push(DnType::CommonName, "slapd test");
    let leaf = leaf_params.signed_by(&leaf_key, &ca).unwrap();
    std::fs::write(dir.join("ca.pem"), ca.pem()).unwrap();
    std::fs::write(dir.join("cert.pem"), leaf.pem()).unwrap();
    std::fs::write(dir.join("key.pem"), leaf_key.serialize_pem()).unwrap();
}

impl Slapd {
    /// Start slapd in `dir` and load the tree.
    pub fn start(dir: PathBuf) -> Slapd {
        Slapd::start_with(dir, false)
    }

    /// Start slapd with TLS (StartTLS on the ldap:// port, and an ldaps:// port) using a
    /// certificate from [`make_tls_files`] in `dir/tls`.
    pub fn start_tls(dir: PathBuf) -> Slapd {
        Slapd::start_with(dir, true)
    }

    fn start_with(dir: PathBuf, tls: bool) -> Slapd {
        std::fs::create_dir_all(dir.join("db")).expect("slapd directory");
        let tls_conf = if tls {
            make_tls_files(&dir.join("tls"), "test CA");
            format!(
                "TLSCertificateFile {d}/tls/cert.pem\nTLSCertificateKeyFile {d}/tls/key.pem\n",
                d = dir.display()
            )
        } else {
            String::new()
        };
        let conf = format!(
            "{tls_conf}include /etc/ldap/schema/core.schema\n\
             include /etc/ldap/schema/cosine.schema\n\
             include /etc/ldap/schema/inetorgperson.schema\n\
             modulepath /usr/lib/ldap\n\
             moduleload back_mdb\n\
             moduleload memberof\n\
             pidfile {dir}/slapd.pid\n\
             database mdb\n\
             maxsize 10485760\n\
             suffix \"{BASE}\"\n\
             rootdn \"cn=admin,{BASE}\"\n\
             rootpw admin-password\n\
             directory {dir}/db\n\
             overlay memberof\n",
            dir = dir.display()
        );
        std::fs::write(dir.join("slapd.conf"), conf).expect("slapd.conf");
        std::fs::write(dir.join("tree.ldif"), TREE).expect("tree.ldif");
        let mut s = Slapd {
            dir,
            port: free_port(),
            tls_port: tls.then(free_port),
            child: None,
        };
        // Another test may have drawn the same port: then this slapd exits, and we draw again.
        let mut tries = 0;
        while let Err(e) = s.try_run() {
            tries += 1;
            assert!(tries < 5, "slapd did not start: {e}");
            s.port = free_port();
            s.tls_port = tls.then(free_port);
        }
        let mut add = Command::new("ldapadd");
        add.args(["-x", "-H", &s.url(), "-D", &format!("cn=admin,{BASE}")])
            .args(["-w", "admin-password", "-f"])
            .arg(s.dir.join("tree.ldif"));
        let out = run_with_timeout(add, None);
        assert!(
            out.status.success(),
            "ldapadd failed: {}\nslapd alive: {:?}\nslapd log:\n{}",
            String::from_utf8_lossy(&out.stderr),
            s.child.as_mut().map(|c| c.try_wait()),
            std::fs::read_to_string(s.dir.join("slapd.log")).unwrap_or_default()
        );
        s
    }

    /// (Re)start the process on the same port and database.
    pub fn run(&mut self) {
        if let Err(e) = self.try_run() {
            panic!("slapd did not start again on port {}: {e}", self.port);
        }
    }

    fn try_run(&mut self) -> Result<(), String> {
        assert!(self.child.is_none(), "slapd already running");
        let urls = match self.tls_port {
            Some(p) => format!("{} ldaps://127.0.0.1:{p}", self.url()),
            None => self.url(),
        };
        let child = Command::new("/usr/sbin/slapd")
            .arg("-f")
            .arg(self.dir.join("slapd.conf"))
            .arg("-h")
            .arg(urls)
            .args(["-d", "stats"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(
                std::fs::File::create(self.dir.join("slapd.log"))
                    .map(Stdio::from)
                    .unwrap_or_else(|_| Stdio::null()),
            )
            .spawn()
            .expect("starting /usr/sbin/slapd (scripts/install-test-deps.sh installs it)");
        self.child = Some(child);
        let until = Instant::now() + Duration::from_secs(10);
        let ports: Vec<u16> = std::iter::once(self.port).chain(self.tls_port).collect();
        loop {
            // Our slapd must be the one listening: it exits when a port is taken.
            if let Some(c) = self.child.as_mut()
                && let Ok(Some(status)) = c.try_wait()
            {
                self.child = None;
                return Err(format!("slapd exited ({status}); port taken?"));
            }
            // The listeners are open before the backends are ready; "slapd starting" is logged
            // when it serves. Connecting earlier sometimes ends in "Can't contact LDAP server".
            let serving = std::fs::read_to_string(self.dir.join("slapd.log"))
                .is_ok_and(|l| l.contains("slapd starting"));
            if serving
                && ports
                    .iter()
                    .all(|p| TcpStream::connect(("127.0.0.1", *p)).is_ok())
            {
                return Ok(());
            }
            if Instant::now() > until {
                return Err("slapd did not listen within 10 s".into());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn url(&self) -> String {
        format!("ldap://127.0.0.1:{}", self.port)
    }

    /// Freeze (SIGSTOP) or thaw (SIGCONT) the process: a directory that accepts connections
    /// and never answers.
    pub fn signal(&self, sig: &str) {
        let pid = self.child.as_ref().expect("slapd running").id();
        let ok = Command::new("kill")
            .args([sig, &pid.to_string()])
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "kill {sig} {pid}");
    }

    /// Stop the process (the database stays).
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = Command::new("kill")
                .args(["-CONT", &c.id().to_string()])
                .status();
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// A `[[directory]]` block for this server.
    pub fn directory_toml(&self, name: &str, timeout: &str) -> String {
        format!(
            "[[directory]]\nname = \"{name}\"\nkind = \"ldap\"\nurl = \"{url}\"\n\
             bind_dn = \"{SERVICE_DN}\"\nbind_password = \"{SERVICE_PASSWORD}\"\n\
             base_dn = \"{BASE}\"\nuser_filter = \"(uid={{user}})\"\ntimeout = \"{timeout}\"\n",
            url = self.url()
        )
    }
}

impl Drop for Slapd {
    fn drop(&mut self) {
        self.stop();
    }
}
