//! `create [-s] [-e] [-c] [-t ttl] path [data] [acl]` (`CreateCommand`).

use super::command_line::{self, opt, Options};
use super::{acl_parser, CliError, CliResult, Ctx};
use crate::client::KeeperError;
use crate::proto::data::ACL;
use crate::proto::{perms, Code, CreateMode};
use crate::common::ephemeral_type;

pub const NAME: &str = "create";
pub const OPTION_STR: &str = "[-s] [-e] [-c] [-t ttl] path [data] [acl]";

const OPTIONS: Options = Options::new(&[opt("e", false, "ephemeral"), opt("s", false, "sequential"), opt("c", false, "container"), opt("t", true, "ttl")]);

pub fn run(ctx: &Ctx, args: &[String]) -> CliResult<bool> {
    let cl = command_line::parse(&OPTIONS, args).map_err(CliError::new)?;
    if cl.args.len() < 2 {
        return Err(CliError::new(format!("{NAME} {OPTION_STR}")));
    }
    let (has_e, has_s, has_c, has_t) = (cl.has("e"), cl.has("s"), cl.has("c"), cl.has("t"));
    if has_c && (has_e || has_s) {
        return Err(CliError::new("-c cannot be combined with -s or -e. Containers cannot be ephemeral or sequential."));
    }
    let ttl = if has_t {
        super::parse_java_long(cl.value("t").unwrap_or("")).ok_or_else(|| CliError::new("-t argument must be a long value"))?
    } else {
        0
    };
    if has_t && has_e {
        return Err(CliError::new("TTLs cannot be used with Ephemeral znodes"));
    }
    if has_t && has_c {
        return Err(CliError::new("TTLs cannot be used with Container znodes"));
    }
    let mode = match (has_e, has_s) {
        (true, true) => CreateMode::EphemeralSequential,
        (true, false) => CreateMode::Ephemeral,
        (false, true) if has_t => CreateMode::PersistentSequentialWithTtl,
        (false, true) => CreateMode::PersistentSequential,
        _ if has_c => CreateMode::Container,
        _ if has_t => CreateMode::PersistentWithTtl,
        _ => CreateMode::Persistent,
    };
    if has_t && ephemeral_type::ttl_to_ephemeral_owner(ttl).is_none() {
        return Err(CliError::new(format!("ttl must be positive and cannot be larger than: {}", ephemeral_type::MAX_TTL)));
    }
    let path = &cl.args[1];
    let data = cl.args.get(2).map(|d| d.as_bytes().to_vec());
    let acl = match cl.args.get(3) {
        Some(a) => acl_parser::parse(a),
        None => vec![ACL::new(perms::ALL, "world", "anyone")],
    };
    // ZooKeeper.create checks the path (with a digit appended for sequential nodes),
    // then that the ACL list is not empty, before anything goes to the server.
    super::validate_path(&if mode.is_sequential() { format!("{path}1") } else { path.clone() })?;
    let result = if acl.is_empty() {
        Err(KeeperError::new(Code::InvalidAcl))
    } else {
        ctx.zk.create2(path, data.as_deref(), &acl, mode, if has_t { ttl } else { -1 }).map(|(p, _)| p)
    };
    match result {
        Ok(p) => {
            super::err(&format!("Created {p}"));
            Ok(true)
        }
        Err(e) => {
            if e.code == Code::EphemeralOnLocalSession {
                super::err("Unable to create ephemeral node on a local session");
            } else if e.code == Code::InvalidAcl {
                super::err(&e.to_string());
            }
            Err(CliError::wrap(&e))
        }
    }
}
