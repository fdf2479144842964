//! A private Postfix instance (see `spec/postfix-loopback.md` in the shared notes).

use std::fs::{self, File, FileTimes};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime};

use crate::{
    ReceivedMessage, StartError, Watchdog, angle_address, failed, files_in, find_program, is_root, localhost,
    poll_messages, read_log, set_mode, split_line, temp_dir, user_ids, wait_for_port, with_free_port,
};

/// A private Postfix `smtpd` on 127.0.0.1, delivering into Maildirs under its own temporary
/// folder. Needs root.
///
/// It is Debian's Postfix 3.7 started with `postfix -c DIR/etc start` from a generated
/// configuration: no chroot, no DNS, nothing can leave the host, and the system's mail setup is
/// untouched. Several instances can run at once.
///
/// EHLO offers `PIPELINING`, `SIZE 10240000`, `VRFY`, `ETRN`, `ENHANCEDSTATUSCODES`,
/// `8BITMIME`, `DSN`, `SMTPUTF8` and `CHUNKING` (no STARTTLS, no AUTH: use
/// [`Aiosmtpd`](crate::Aiosmtpd) for those). `strict_smtputf8 = yes`: a UTF-8 address without
/// the `SMTPUTF8` parameter gets `553 5.6.7`.
///
/// Recipients (only `@example.org` is local; any sender is accepted):
///
/// | recipient | outcome |
/// | --- | --- |
/// | `alice`, `bob`, `carol`, `jörg` `@example.org` | delivered to that user's Maildir |
/// | `unknown*@example.org` | `550 5.1.1 ... Recipient address rejected: no such user` at RCPT |
/// | `tempfail*@example.org` | `450 4.2.0 ... Recipient address rejected: try again later` at RCPT |
/// | `bounce*@example.org` | accepted, then bounced (5.1.1): a DSN goes to the sender if local |
/// | `defer*@example.org` | accepted, then deferred (4.3.0) and left in the queue |
/// | any other `@example.org` | delivered to the catch-all Maildir [`Postfix::CATCH_ALL`] |
/// | another domain | `554 5.7.1 ... Relay access denied` |
///
/// Delivery status notifications (DSN `NOTIFY=SUCCESS`, bounces) for a local sender arrive in
/// the sender's Maildir, e.g. `alice`'s; for other senders they are discarded.
pub struct Postfix {
    // Field order is drop order: `drop` stops Postfix, then the watchdog goes, then the folder.
    _watchdog: Watchdog,
    program: PathBuf,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Postfix {
    /// The users with a Maildir of their own.
    pub const USERS: [&'static str; 4] = ["alice", "bob", "carol", "jörg"];
    /// The Maildir name for every other `@example.org` recipient: `postfix.mailbox(CATCH_ALL)`.
    pub const CATCH_ALL: &'static str = "_catchall";
    /// The one local domain.
    pub const DOMAIN: &'static str = "example.org";

    /// Starts a private Postfix on a free port and waits until it accepts connections.
    ///
    /// Takes about half a second. Needs root ([`StartError::Failed`] otherwise); fails with
    /// [`StartError::Missing`]`("postfix")` if Postfix is not installed.
    pub fn start() -> Result<Postfix, StartError> {
        Postfix::start_with(&[])
    }

    /// Like [`start`](Postfix::start), with `main.cf` settings added (or overriding the defaults), e.g.
    /// `&[("smtpd_recipient_limit", "100")]`: at most 100 recipients a transaction, `452 4.5.3` for
    /// the others.
    pub fn start_with(settings: &[(&str, &str)]) -> Result<Postfix, StartError> {
        let program = find_program("postfix").ok_or(StartError::Missing("postfix"))?;
        if !is_root() {
            return Err(StartError::Failed(
                "a private Postfix needs root (postfix start, and reading Maildirs owned by nobody)".into(),
            ));
        }
        let owner =
            user_ids("postfix").ok_or_else(|| StartError::Failed("no user postfix in /etc/passwd".into()))?;
        let nobody =
            user_ids("nobody").ok_or_else(|| StartError::Failed("no user nobody in /etc/passwd".into()))?;
        with_free_port(|port| Self::start_on(&program, port, owner, nobody, settings))
    }

    fn start_on(
        program: &Path,
        port: u16,
        owner: (u32, u32),
        nobody: (u32, u32),
        settings: &[(&str, &str)],
    ) -> Result<Postfix, StartError> {
        let dir = temp_dir("postfix")?;
        let root = &dir.path().to_path_buf();
        for sub in ["etc", "queue", "data", "log", "mail"] {
            fs::create_dir(root.join(sub)).map_err(|e| failed(&format!("mkdir {sub}"), e))?;
        }
        let chown = |sub: &str, (uid, gid): (u32, u32)| {
            std::os::unix::fs::chown(root.join(sub), Some(uid), Some(gid))
                .map_err(|e| failed(&format!("chown {sub}"), e))
        };
        chown("data", owner)?;
        set_mode(&root.join("data"), 0o700)?;
        chown("mail", nobody)?;
        write_config(root, port, nobody, settings)?;

        let watchdog = Watchdog::spawn(
            r#""$1" -c "$2/etc" stop; rm -rf "$2""#,
            &[program.as_os_str(), root.as_os_str()],
        )?;
        let postfix = Postfix { _watchdog: watchdog, program: program.to_path_buf(), port, _dir: dir };
        let log = root.join("log/start.log");
        let out = File::create(&log).map_err(|e| failed("create the start log", e))?;
        let err = out.try_clone().map_err(|e| failed("dup the start log", e))?;
        // Files, not pipes: the daemon it leaves behind would hold a pipe open.
        let status = Command::new(program)
            .arg("-c")
            .arg(root.join("etc"))
            .arg("start")
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .status()
            .map_err(|e| failed("run postfix start", e))?;
        if !status.success() {
            return Err(StartError::Failed(format!(
                "postfix start exited with {status}: {}\nmaillog: {}",
                read_log(&log),
                read_log(&root.join("log/maillog"))
            )));
        }
        wait_for_port(port, || {
            (!postfix.master_alive())
                .then(|| format!("postfix master is gone: {}", read_log(&root.join("log/maillog"))))
        })?;
        Ok(postfix)
    }

    fn root(&self) -> &Path {
        self._dir.path()
    }

    fn master_pid(&self) -> Option<i32> {
        let text = fs::read_to_string(self.root().join("queue/pid/master.pid")).ok()?;
        text.trim().parse().ok()
    }

    fn master_alive(&self) -> bool {
        self.master_pid()
            .and_then(|pid| fs::read_to_string(format!("/proc/{pid}/stat")).ok())
            // "pid (comm) S ...": a zombie (Z) or dead (X) master is gone.
            .and_then(|stat| stat.rsplit(')').next().map(|s| s.trim_start().to_string()))
            .is_some_and(|state| !state.starts_with(['Z', 'X']))
    }

    /// The port `smtpd` listens on (at 127.0.0.1).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `127.0.0.1:port`.
    pub fn addr(&self) -> SocketAddr {
        localhost(self.port)
    }

    /// Messages delivered to this user's Maildir (e.g. `"bob"`, `"jörg"`, or
    /// [`Postfix::CATCH_ALL`]), in delivery order (to the microsecond, from the Maildir file
    /// names); empty for a user with no mail yet. Postfix may deliver messages accepted close
    /// together in a different order than they were sent.
    ///
    /// Delivery is asynchronous (a few tens of milliseconds after the 250): use
    /// [`wait_for_mailbox`](Self::wait_for_mailbox) after sending. One copy is stored per
    /// recipient.
    ///
    /// - `raw` is the Maildir file: the headers Postfix prepends (`Return-Path`,
    ///   `X-Original-To`, `Delivered-To`, a folded `Received`), then the message.
    /// - `body` is `raw` without those prepended headers: the message with CRLF turned into LF,
    ///   a bare CR turned into a space (also a CR left at the very end: `x\r` → `x \n`), a bare
    ///   LF kept as a line break, and a final line ending added if it was missing. If the
    ///   message does not start with a header line (e.g. just `Hi`), Postfix inserts an empty
    ///   line before it. Postfix adds no other header (no `Message-ID` or `Date`) for these
    ///   clients. So for a correct client sending a message that starts with headers, `body`
    ///   equals the message before dot-stuffing with CRLF replaced by LF; BDAT content is
    ///   stored the same way.
    /// - `from` is the `Return-Path` address (empty for a bounce), `recipients` is this copy's
    ///   recipient as the client gave it (`X-Original-To`).
    pub fn mailbox(&self, user: &str) -> Vec<ReceivedMessage> {
        if user.contains('/') {
            return Vec::new();
        }
        let maildir = self.root().join("mail").join(Self::DOMAIN).join(user);
        let mut files = files_in(&maildir.join("new"));
        files.extend(files_in(&maildir.join("cur")));
        files.sort_by_cached_key(|f| delivery_time(f));
        files.into_iter().filter_map(|f| fs::read(f).ok()).map(parse_delivered).collect()
    }

    /// Waits up to `timeout` until `user`'s Maildir holds at least `n` messages, then returns
    /// [`mailbox`](Self::mailbox) (which may hold fewer than `n` on timeout).
    pub fn wait_for_mailbox(&self, user: &str, n: usize, timeout: Duration) -> Vec<ReceivedMessage> {
        poll_messages(n, timeout, || self.mailbox(user))
    }
}

impl Drop for Postfix {
    fn drop(&mut self) {
        let etc = self.root().join("etc");
        let stopped = Command::new(&self.program)
            .arg("-c")
            .arg(etc)
            .arg("stop")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !stopped && self.master_alive() {
            if let Some(pid) = self.master_pid() {
                // SAFETY: kill has no memory-safety preconditions; pid is our master's.
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
        }
    }
}

/// When virtual(8) delivered a Maildir file, from its name `SECONDS.VdevIinodeMmicros.host`
/// (file times are too coarse to order quick deliveries).
fn delivery_time(file: &Path) -> (u64, u64) {
    let name = file.file_name().unwrap_or_default().to_string_lossy();
    let mut parts = name.split('.');
    let secs = parts.next().and_then(|s| s.parse().ok());
    let micros = parts.next().and_then(|unique| unique.rsplit_once('M')).and_then(|(_, us)| us.parse().ok());
    (secs.unwrap_or(u64::MAX), micros.unwrap_or(0))
}

/// Splits off Postfix's prepended headers.
fn parse_delivered(raw: Vec<u8>) -> ReceivedMessage {
    let mut rest = &raw[..];
    let mut fields: [Option<String>; 3] = Default::default();
    for (i, name) in ["Return-Path:", "X-Original-To:", "Delivered-To:"].iter().enumerate() {
        if let Some((line, after)) = split_line(rest) {
            if let Some(value) = line.strip_prefix(name.as_bytes()) {
                fields[i] = Some(String::from_utf8_lossy(value).trim().to_string());
                rest = after;
            }
        }
    }
    if let Some((line, mut after)) = split_line(rest) {
        if line.starts_with(b"Received:") {
            while let Some((next, tail)) = split_line(after) {
                if !next.starts_with(b" ") && !next.starts_with(b"\t") {
                    break;
                }
                after = tail;
            }
            rest = after;
        }
    }
    let [return_path, original_to, delivered_to] = fields;
    ReceivedMessage {
        from: return_path.map(|r| angle_address(&r)).unwrap_or_default(),
        recipients: original_to.or(delivered_to).into_iter().collect(),
        body: rest.to_vec(),
        raw,
    }
}

/// Writes `DIR/etc/*` and backdates the files: Postfix waits for a `main.cf` younger than about
/// a second to settle ("file is being edited"), which costs 1.5 s.
fn write_config(
    root: &Path,
    port: u16,
    (uid, gid): (u32, u32),
    settings: &[(&str, &str)],
) -> Result<(), StartError> {
    let dir = root.display();
    let mut main_cf = format!(
        "\
compatibility_level = 3.6
queue_directory = {dir}/queue
data_directory = {dir}/data
mail_owner = postfix
setgid_group = postdrop
syslog_name = postfix-lb{port}
maillog_file = {dir}/log/maillog
maillog_file_prefixes = {dir}/log
myhostname = mx.example.org
myorigin = example.org
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
smtpd_peername_lookup = no
disable_dns_lookups = yes
smtp_dns_support_level = disabled
mydestination =
relay_domains =
local_recipient_maps =
alias_maps =
local_transport = error:5.1.1 local delivery disabled in this test instance
default_transport = error:5.7.1 outbound delivery disabled in this test instance
relay_transport = error:5.7.1 relay disabled in this test instance
smtpd_relay_restrictions = reject_unauth_destination
smtpd_recipient_restrictions = check_recipient_access regexp:{dir}/etc/rcpt_access
virtual_mailbox_domains = example.org
virtual_mailbox_base = {dir}/mail
virtual_mailbox_maps = texthash:{dir}/etc/vmailbox, regexp:{dir}/etc/vmailbox_catchall
virtual_uid_maps = static:{uid}
virtual_gid_maps = static:{gid}
transport_maps = regexp:{dir}/etc/transport
smtputf8_enable = yes
strict_smtputf8 = yes
local_header_rewrite_clients =
"
    );
    // The last setting of a name wins.
    for (name, value) in settings {
        main_cf.push_str(&format!("{name} = {value}\n"));
    }
    // Every service unchrooted; no smtp, relay, lmtp or local client: nothing can leave.
    let master_cf = format!(
        "\
127.0.0.1:{port} inet n - n - - smtpd
pickup     unix n - n 60 1 pickup
cleanup    unix n - n - 0 cleanup
qmgr       unix n - n 300 1 qmgr
rewrite    unix - - n - - trivial-rewrite
bounce     unix - - n - 0 bounce
defer      unix - - n - 0 bounce
trace      unix - - n - 0 bounce
verify     unix - - n - 1 verify
flush      unix n - n 1000? 0 flush
proxymap   unix - - n - - proxymap
proxywrite unix - - n - 1 proxymap
showq      unix n - n - - showq
error      unix - - n - - error
retry      unix - - n - - error
discard    unix - - n - - discard
virtual    unix - n n - - virtual
anvil      unix - - n - 1 anvil
scache     unix - - n - 1 scache
postlog    unix-dgram n - n - 1 postlogd
bouncer    unix - n n - - pipe
  flags=q user=nobody argv=/bin/sh -c {{exit 67}}
deferrer   unix - n n - - pipe
  flags=q user=nobody argv=/bin/sh -c {{exit 75}}
"
    );
    let mut vmailbox = String::new();
    for user in Postfix::USERS {
        vmailbox.push_str(&format!("{user}@example.org example.org/{user}/\n"));
    }
    let files = [
        ("main.cf", main_cf),
        ("master.cf", master_cf),
        (
            "rcpt_access",
            "/^unknown[^@]*@example\\.org$/ 550 5.1.1 no such user\n\
             /^tempfail[^@]*@example\\.org$/ 450 4.2.0 try again later\n"
                .to_string(),
        ),
        ("vmailbox", vmailbox),
        ("vmailbox_catchall", format!("/@example\\.org$/ example.org/{}/\n", Postfix::CATCH_ALL)),
        (
            "transport",
            "/^bounce[^@]*@example\\.org$/ bouncer:\n/^defer[^@]*@example\\.org$/ deferrer:\n".to_string(),
        ),
    ];
    let past = SystemTime::now() - Duration::from_secs(5);
    for (name, text) in files {
        let path = root.join("etc").join(name);
        let file = File::create(&path).map_err(|e| failed(&format!("write {name}"), e))?;
        std::io::Write::write_all(&mut &file, text.as_bytes())
            .and_then(|()| file.set_times(FileTimes::new().set_accessed(past).set_modified(past)))
            .map_err(|e| failed(&format!("write {name}"), e))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maildir_names_give_the_delivery_order() {
        let early = Path::new("new/1795623721.Vfe00I98ecc7M93620.vm");
        let late = Path::new("new/1795623721.Vfe00I98e082M286817.vm");
        assert_eq!(delivery_time(late), (1795623721, 286817));
        assert!(delivery_time(early) < delivery_time(late));
    }

    #[test]
    fn strips_prepended_headers() {
        let raw = "Return-Path: <alice@example.org>\nX-Original-To: bob@example.org\n\
            Delivered-To: bob@example.org\nReceived: from x (unknown [127.0.0.1])\n\
            \tby mx.example.org (Postfix) with ESMTP id 4356698E023;\n\
            \tWed, 25 Nov 2026 16:22:01 +0000 (UTC)\nReceived: kept\nSubject: hi\n\nbody\n"
            .as_bytes()
            .to_vec();
        let m = parse_delivered(raw.clone());
        assert_eq!(m.from, "alice@example.org");
        assert_eq!(m.recipients, ["bob@example.org"]);
        assert_eq!(m.body, b"Received: kept\nSubject: hi\n\nbody\n");
        assert_eq!(m.raw, raw);
    }
}
