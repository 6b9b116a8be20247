//! The txn record a request carries (upstream: `Request.txn`, a jute `Record` whose class
//! follows the TxnHeader type). One enum instead of a class hierarchy.

use crate::jute::{InputArchive, OutputArchive, Record, Result as JuteResult, JuteError};
use crate::proto::op_code;
use crate::proto::txn::*;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TxnRecord {
    Create(CreateTxn),
    CreateTtl(CreateTTLTxn),
    CreateContainer(CreateContainerTxn),
    Delete(DeleteTxn),
    SetData(SetDataTxn),
    SetAcl(SetACLTxn),
    Check(CheckVersionTxn),
    CreateSession(CreateSessionTxn),
    CloseSession(CloseSessionTxn),
    Error(ErrorTxn),
    Multi(MultiTxn),
}

impl TxnRecord {
    pub fn serialize(&self, out: &mut OutputArchive) {
        match self {
            TxnRecord::Create(t) => t.serialize(out),
            TxnRecord::CreateTtl(t) => t.serialize(out),
            TxnRecord::CreateContainer(t) => t.serialize(out),
            TxnRecord::Delete(t) => t.serialize(out),
            TxnRecord::SetData(t) => t.serialize(out),
            TxnRecord::SetAcl(t) => t.serialize(out),
            TxnRecord::Check(t) => t.serialize(out),
            TxnRecord::CreateSession(t) => t.serialize(out),
            TxnRecord::CloseSession(t) => t.serialize(out),
            TxnRecord::Error(t) => t.serialize(out),
            TxnRecord::Multi(t) => t.serialize(out),
        }
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = OutputArchive::new();
        self.serialize(&mut out);
        out.into_inner()
    }

    /// Decodes the record that follows a TxnHeader of type `op` (`SerializeUtils.deserializeTxn`).
    /// None for types that carry no record.
    pub fn deserialize(op: i32, inp: &mut InputArchive<'_>) -> JuteResult<Option<TxnRecord>> {
        Ok(Some(match op {
            op_code::CREATE_SESSION => TxnRecord::CreateSession(CreateSessionTxn::deserialize(inp)?),
            op_code::CLOSE_SESSION => {
                // Older logs have no body for closeSession.
                if inp.remaining() == 0 {
                    return Ok(None);
                }
                TxnRecord::CloseSession(CloseSessionTxn::deserialize(inp)?)
            }
            op_code::CREATE | op_code::CREATE2 => TxnRecord::Create(CreateTxn::deserialize(inp)?),
            op_code::CREATE_TTL => TxnRecord::CreateTtl(CreateTTLTxn::deserialize(inp)?),
            op_code::CREATE_CONTAINER => TxnRecord::CreateContainer(CreateContainerTxn::deserialize(inp)?),
            op_code::DELETE | op_code::DELETE_CONTAINER => TxnRecord::Delete(DeleteTxn::deserialize(inp)?),
            op_code::RECONFIG | op_code::SET_DATA => TxnRecord::SetData(SetDataTxn::deserialize(inp)?),
            op_code::SET_ACL => TxnRecord::SetAcl(SetACLTxn::deserialize(inp)?),
            op_code::ERROR => TxnRecord::Error(ErrorTxn::deserialize(inp)?),
            op_code::MULTI => TxnRecord::Multi(MultiTxn::deserialize(inp)?),
            op_code::CHECK => TxnRecord::Check(CheckVersionTxn::deserialize(inp)?),
            _ => return Err(JuteError::Invalid(format!("Unsupported Txn with type={op}"))),
        }))
    }

    /// Wraps this record as one element of a MultiTxn.
    pub fn to_sub_txn(&self, op: i32) -> Txn {
        Txn { r#type: op, data: Some(self.to_bytes()) }
    }
}
