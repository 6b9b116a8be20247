//! The parts of `ZKUtil` zkCli uses: depth-first and breadth-first tree walks and the
//! batched recursive delete.

use super::{CliError, CliResult};
use crate::client::zookeeper::ops;
use crate::client::{KeeperError, Watcher, ZooKeeper};
use crate::proto::Code;

/// A walk stops on a server error or on an error raised by the visitor.
#[derive(Debug)]
pub enum WalkError {
    Keeper(KeeperError),
    Cli(CliError),
}

impl From<KeeperError> for WalkError {
    fn from(e: KeeperError) -> Self {
        WalkError::Keeper(e)
    }
}

impl From<CliError> for WalkError {
    fn from(e: CliError) -> Self {
        WalkError::Cli(e)
    }
}

impl WalkError {
    /// How a command reports it: KeeperExceptions through `CliWrapperException`.
    pub fn into_cli(self) -> CliError {
        match self {
            WalkError::Keeper(e) => CliError::wrap(&e),
            WalkError::Cli(e) => e,
        }
    }
}

fn child_path(parent: &str, child: &str) -> String {
    if parent == "/" {
        format!("/{child}")
    } else {
        format!("{parent}/{child}")
    }
}

/// `visitSubTreeDFS`: reads the root (getData, so a missing root is NoNode), visits
/// it, then for each node visits all its sorted children before descending into
/// them. Nodes that vanish during the walk are skipped.
pub fn visit_sub_tree_dfs(
    zk: &ZooKeeper,
    path: &str,
    watch: Option<&Watcher>,
    visit: &mut dyn FnMut(&str) -> CliResult<()>,
) -> Result<(), WalkError> {
    super::validate_path(path)?;
    zk.get_data(path, watch.cloned())?;
    visit(path)?;
    dfs_helper(zk, path, watch, visit)
}

fn dfs_helper(zk: &ZooKeeper, path: &str, watch: Option<&Watcher>, visit: &mut dyn FnMut(&str) -> CliResult<()>) -> Result<(), WalkError> {
    let mut children = match zk.get_children(path, watch.cloned()) {
        Ok(c) => c,
        Err(e) if e.code == Code::NoNode => return Ok(()),
        Err(e) => return Err(e.into()),
    };
    children.sort();
    for c in &children {
        visit(&child_path(path, c))?;
    }
    for c in &children {
        dfs_helper(zk, &child_path(path, c), watch, visit)?;
    }
    Ok(())
}

/// `listSubTreeBFS`: the root and all descendants, breadth first (server order).
pub fn list_sub_tree_bfs(zk: &ZooKeeper, root: &str) -> Result<Vec<String>, KeeperError> {
    let mut tree = vec![root.to_owned()];
    let mut i = 0;
    while i < tree.len() {
        let node = tree[i].clone();
        for c in zk.get_children(&node, None)? {
            tree.push(child_path(&node, &c));
        }
        i += 1;
    }
    Ok(tree)
}

/// `deleteRecursive(zk, root, batchSize)`: deepest nodes first, in multi batches.
/// False when some batch failed (later batches are then not sent).
pub fn delete_recursive(zk: &ZooKeeper, root: &str, batch_size: i32) -> Result<bool, WalkError> {
    super::validate_path(root)?;
    let tree = list_sub_tree_bfs(zk, root)?;
    log::debug!("Deleting tree: {tree:?}");
    let mut success = true;
    let mut batch = Vec::new();
    for (i, p) in tree.iter().enumerate().rev() {
        batch.push(ops::delete(p, -1));
        if batch.len() as i64 == batch_size as i64 || i == 0 {
            if !success {
                break;
            }
            if zk.multi(std::mem::take(&mut batch)).is_err() {
                success = false;
            }
        }
    }
    Ok(success)
}
