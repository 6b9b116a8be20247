//! `setquota -n|-b|-N|-B val path` (`SetQuotaCommand`).

use super::command_line::{self, opt, Options};
use super::stats_track::{self as q, StatsTrack};
use super::{zk_util, CliError, CliResult, Ctx};
use crate::client::{KeeperError, ZooKeeper};
use crate::proto::data::ACL;
use crate::proto::{perms, Code, CreateMode};

pub const NAME: &str = "setquota";
pub const OPTION_STR: &str = "-n|-b|-N|-B val path";

const OPTIONS: Options = Options {
    opts: &[opt("n", true, "num soft quota"), opt("b", true, "bytes soft quota"), opt("N", true, "num hard quota"), opt("B", true, "bytes hard quota")],
    group: &["n", "b", "N", "B"],
    group_required: true,
};

fn open_acl() -> Vec<ACL> {
    vec![ACL::new(perms::ALL, "world", "anyone")]
}

fn wrap(e: KeeperError) -> CliError {
    CliError::wrap(&e)
}

pub fn run(ctx: &Ctx, args: &[String]) -> CliResult<bool> {
    let cl = command_line::parse(&OPTIONS, args).map_err(CliError::new)?;
    if cl.args.len() < 2 {
        return Err(CliError::new(format!("{NAME} {OPTION_STR}")));
    }
    let path = &cl.args[1];
    if path.starts_with(q::QUOTA_ZOOKEEPER) {
        super::err(&format!("cannot set a quota under the path: {}", q::QUOTA_ZOOKEEPER));
        return Ok(false);
    }
    let mut quota = StatsTrack::default();
    for k in [q::COUNT, q::BYTES, q::COUNT_HARD_LIMIT, q::BYTE_HARD_LIMIT] {
        quota.set(k, -1);
    }
    // checkOptionValue
    for (flag, key, is_count) in [("n", q::COUNT, true), ("b", q::BYTES, false), ("N", q::COUNT_HARD_LIMIT, true), ("B", q::BYTE_HARD_LIMIT, false)] {
        if !cl.has(flag) {
            continue;
        }
        let v = cl.value(flag).unwrap_or("");
        let parsed = if is_count { super::parse_java_int(v).map(i64::from) } else { super::parse_java_long(v) };
        let Some(n) = parsed else {
            super::err("NumberFormatException happens when parsing the option value");
            return Ok(false);
        };
        if is_count && n <= 0 {
            super::err("the num quota must be greater than zero");
            return Ok(false);
        }
        if !is_count && n < 0 {
            super::err("the bytes quota must be greater than or equal to zero");
            return Ok(false);
        }
        quota.set(key, n);
    }
    create_quota(ctx.zk, path, &quota)?;
    Ok(false)
}

fn create_if_missing(zk: &ZooKeeper, p: &str) -> CliResult<()> {
    if zk.exists(p, None).map_err(wrap)?.is_none() {
        match zk.create(p, None, &open_acl(), CreateMode::Persistent) {
            Ok(_) => {}
            Err(e) if e.code == Code::NodeExists => {}
            Err(e) => return Err(wrap(e)),
        }
    }
    Ok(())
}

fn read_track(zk: &ZooKeeper, p: &str) -> CliResult<StatsTrack> {
    let (data, _) = zk.get_data(p, None).map_err(wrap)?;
    let text = String::from_utf8_lossy(data.as_deref().unwrap_or(b"")).into_owned();
    StatsTrack::parse(&text).ok_or_else(|| CliError::uncaught(format!("java.lang.NumberFormatException: {}", super::number_format_message(&text))))
}

/// `SetQuotaCommand.createQuota`.
pub fn create_quota(zk: &ZooKeeper, path: &str, quota: &StatsTrack) -> CliResult<()> {
    super::validate_path(path)?;
    if zk.exists(path, None).map_err(wrap)?.is_none() {
        return Err(CliError::new(format!("{path} does not exist.")));
    }
    check_if_child_quota(zk, path)?;
    check_if_parent_quota(zk, path)?;
    if zk.exists(q::QUOTA_ZOOKEEPER, None).map_err(wrap)?.is_none() {
        for p in [q::PROC_ZOOKEEPER, q::QUOTA_ZOOKEEPER] {
            match zk.create(p, None, &open_acl(), CreateMode::Persistent) {
                Ok(_) => {}
                Err(e) if e.code == Code::NodeExists => break,
                Err(e) => return Err(wrap(e)),
            }
        }
    }
    let mut quota_path = q::QUOTA_ZOOKEEPER.to_owned();
    for part in path.split('/').skip(1) {
        quota_path.push('/');
        quota_path.push_str(part);
        create_if_missing(zk, &quota_path)?;
    }
    let stat_path = format!("{quota_path}/{}", q::STAT_NODE);
    let limit_path = format!("{quota_path}/{}", q::LIMIT_NODE);
    if zk.exists(&limit_path, None).map_err(wrap)?.is_none() {
        zk.create(&limit_path, Some(quota.to_string().as_bytes()), &open_acl(), CreateMode::Persistent).map_err(wrap)?;
        let mut stats = StatsTrack::default();
        stats.set(q::COUNT, 0);
        stats.set(q::BYTES, 0);
        zk.create(&stat_path, Some(stats.to_string().as_bytes()), &open_acl(), CreateMode::Persistent).map_err(wrap)?;
        let limits = read_track(zk, &limit_path)?;
        let stats = read_track(zk, &stat_path)?;
        check_quota(&limits, &stats);
    } else {
        let mut limits = read_track(zk, &limit_path)?;
        for k in [q::COUNT, q::BYTES, q::COUNT_HARD_LIMIT, q::BYTE_HARD_LIMIT] {
            if quota.get(k) > -1 {
                limits.set(k, quota.get(k));
            }
        }
        let stats = read_track(zk, &stat_path)?;
        check_quota(&limits, &stats);
        zk.set_data(&limit_path, Some(limits.to_string().as_bytes()), -1).map_err(wrap)?;
    }
    Ok(())
}

fn check_quota(limits: &StatsTrack, stats: &StatsTrack) {
    let count = stats.get(q::COUNT);
    let bytes = stats.get(q::BYTES);
    let over = |limit: i64, have: i64| limit > -1 && limit < have;
    if over(limits.get(q::COUNT), count) || over(limits.get(q::COUNT_HARD_LIMIT), count) {
        super::out(&format!("[Warning]: the count quota you create is less than the existing count:{count}"));
    }
    if over(limits.get(q::BYTES), bytes) || over(limits.get(q::BYTE_HARD_LIMIT), bytes) {
        super::out(&format!("[Warning]: the bytes quota you create is less than the existing bytes:{bytes}"));
    }
}

fn check_if_child_quota(zk: &ZooKeeper, path: &str) -> CliResult<()> {
    let real = q::quota_path(path);
    let own = format!("{}{path}", q::QUOTA_ZOOKEEPER);
    let r = zk_util::visit_sub_tree_dfs(zk, &real, None, &mut |qp| {
        let children = match zk.get_children(qp, None) {
            Ok(c) => c,
            Err(_) => return Ok(()),
        };
        if qp != own && children.iter().any(|c| c == q::LIMIT_NODE) {
            return Err(CliError::new(format!("{path} has a child {} which has a quota", q::trim_quota_path(qp))));
        }
        Ok(())
    });
    match r {
        Ok(()) => Ok(()),
        Err(zk_util::WalkError::Keeper(e)) if e.code == Code::NoNode => Ok(()),
        Err(e) => Err(e.into_cli()),
    }
}

fn check_if_parent_quota(zk: &ZooKeeper, path: &str) -> CliResult<()> {
    let parts: Vec<&str> = super::acl_parser::java_split(path, '/');
    let mut quota_path = q::QUOTA_ZOOKEEPER.to_owned();
    for part in parts.iter().take(parts.len().saturating_sub(1)).skip(1) {
        quota_path.push('/');
        quota_path.push_str(part);
        let children = match zk.get_children(&quota_path, None) {
            Ok(c) => c,
            Err(e) if e.code == Code::NoNode => return Ok(()),
            Err(e) => return Err(wrap(e)),
        };
        if children.is_empty() {
            return Ok(());
        }
        if quota_path != q::quota_path(path) && children.iter().any(|c| c == q::LIMIT_NODE) {
            return Err(CliError::new(format!("{path} has a parent {} which has a quota", q::trim_quota_path(&quota_path))));
        }
    }
    Ok(())
}
