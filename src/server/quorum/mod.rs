//! `org.apache.zookeeper.server.quorum`: configuration, membership, and the election
//! layer of a replicated server.

pub mod auth;
pub mod commit_processor;
pub mod fast_leader_election;
pub mod flexible;
pub mod follower;
pub mod leader;
pub mod leader_session_tracker;
pub mod learner;
pub mod learner_handler;
pub mod learner_session_tracker;
pub mod learner_zookeeper_server;
pub mod local_session_tracker;
pub mod observer;
pub mod quorum_cnx_manager;
pub mod quorum_peer;
pub mod quorum_peer_config;
pub mod quorum_packet;
pub mod quorum_peer_main;
pub mod quorum_server;
pub mod quorum_x509_util;
pub mod read_only_zookeeper_server;
pub mod reconfig;
pub mod synced_learner_tracker;
pub mod vote;
