//! `org.apache.zookeeper.server`.

pub mod auth;
pub mod command;
pub mod container_manager;
pub mod datadir_cleanup_manager;
pub mod data_node;
pub mod data_tree;
pub mod ephemeral_type;
pub mod expiry_queue;
pub mod final_request_processor;
pub mod persistence;
pub mod prep_request_processor;
pub mod purge_txn_log;
pub mod quorum;
pub mod quotas;
pub mod reference_counted_acl_cache;
pub mod request;
pub mod server_cnxn;
pub mod server_cnxn_factory;
pub mod server_stats;
pub mod session_tracker_impl;
pub mod snapshot_formatter;
pub mod sync_request_processor;
pub mod txn_record;
pub mod watch;
pub mod zookeeper_server;
pub mod zookeeper_server_main;
