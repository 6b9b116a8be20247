//! `org.apache.zookeeper.common`: helpers shared by server and client.

pub mod path_utils;
pub mod split_mix;
pub mod java_hash;
pub mod java_random;
pub mod circular_blocking_queue;
pub mod digest_md5;
pub mod ephemeral_type;
pub mod jaas_configuration;
pub mod memory;
pub mod quotas;
pub mod signals;
pub mod time;
pub mod tls_stream;
pub mod x509_util;
